#!/usr/bin/env bash
# tests/cli/run.sh NNCC REPO_ROOT — nncc's command line, as a user types it.
#
# From the repository root: --version, --help, no arguments, an unknown
# option; `nncc summary` against the committed Keras table; compiling the
# seed model (the .c and .h build warning-free with gcc and clang, the header
# stands alone with the contract's signatures, checked by api_check.c);
# --prefix, --max-batch, --emit-ir, --report; then the tiny_mlp.yaml model
# on NumPy data made here: train (weights, history.csv, learning curves),
# predict (.npy and CSV), evaluate (checked against the predictions) and
# check; and a few mistakes a user makes on the command line. Everything is
# written to a temporary folder. Needs gcc, clang, and /usr/bin/python3 with
# numpy (and h5py for the weights file's layout).
# Prints one line per case and `N passed, N failed`; exits 1 on any failure.
set -u
export LC_ALL=C NO_COLOR=1

if [ $# -ne 2 ]; then
    echo "usage: $0 PATH/TO/nncc REPO_ROOT" >&2
    exit 2
fi
nncc=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$2" || exit 2
root=$(pwd)
here=tests/cli
python=/usr/bin/python3
limit=300 # seconds per command

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nncc-cli.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

pass=0 fail=0 why=""
problem() { why+=" [$*]"; }
finish() { # finish NAME: report the case and reset
    if [ -z "$why" ]; then
        pass=$((pass + 1))
        echo "ok    $1"
    else
        fail=$((fail + 1))
        echo "FAIL  $1:$why"
    fi
    why=""
}
# run NAME ARGS...: nncc ARGS with stdout in $tmp/NAME.out, stderr in $tmp/NAME.err; sets $status
run() {
    local name=$1
    shift
    timeout "$limit" "$nncc" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
    status=$?
    out=$tmp/$name.out err=$tmp/$name.err
}
expect_status() { # expect_status N
    [ "$status" -eq "$1" ] || problem "exit status $status, want $1; stderr: $(head -c 300 "$err" | tr '\n' ' ')"
}
has() { # has FILE TEXT: FILE contains the fixed string TEXT
    grep -qF -- "$2" "$1" || problem "$(basename "$1") lacks '$2'"
}
py() { "$python" - "$@"; }

version=$(sed -nE 's/^project\(nncc VERSION ([0-9.]+).*/\1/p' CMakeLists.txt)

# ---- the program itself ----------------------------------------------------------
run version --version
expect_status 0
[ "$(cat "$out")" = "nncc $version" ] || problem "prints '$(head -c 80 "$out")', want 'nncc $version'"
[ -s "$err" ] && problem "writes to stderr"
finish "nncc --version prints 'nncc $version'"

for flag in --help -h; do
    run help "$flag"
    expect_status 0
    for cmd in summary train evaluate predict check; do
        grep -qE "nncc $cmd " "$out" || problem "does not list '$cmd'"
    done
    has "$out" "-o OUT.c"
    [ -s "$err" ] && problem "writes to stderr"
    finish "nncc $flag lists every command on stdout"
done

run noargs
expect_status 1
[ -s "$out" ] && problem "writes to stdout"
has "$err" "usage: nncc"
finish "nncc without arguments: usage on stderr, exit 1"

run badopt summary models/fashion_mlp.yaml --frobnicate
expect_status 1
[ "$(head -n 1 "$err")" = "nncc: error: unknown option '--frobnicate'" ] ||
    problem "first line '$(head -n 1 "$err")'"
grep -q '^hint: .*--help' "$err" || problem "no hint pointing at --help"
[ -s "$out" ] && problem "writes to stdout"
finish "an unknown option: exit 1 and a hint"

# ---- summary -------------------------------------------------------------------------
run summary summary models/fashion_mlp.yaml
expect_status 0
grep -qx 'Total params: 266,610' "$here/fashion_mlp.summary.txt" || problem "the expected file lost its total"
diff -u "$here/fashion_mlp.summary.txt" "$out" >"$tmp/summary.diff" || problem "differs: $(head -c 600 "$tmp/summary.diff")"
finish "nncc summary models/fashion_mlp.yaml is Keras's table"

# ---- compiling ------------------------------------------------------------------------
# api NAME DIR PREFIX MAX_BATCH: DIR/PREFIX.h against the contract, with gcc and clang
api() {
    local name=$1 dir=$2 prefix=$3 batch=$4 cc
    for cc in gcc clang; do
        $cc -std=c11 -Wall -Wextra -Werror -pedantic -I"$dir" -DP="$prefix" -DHEADER="\"$prefix.h\"" \
            -DINPUT0=784 -DOUTPUT0=10 -DMAX_BATCH="$batch" -c "$here/api_check.c" -o "$tmp/$name.api.$cc.o" \
            2>"$tmp/$name.api.$cc.err" || problem "$cc: the header fails api_check.c: $(grep -m2 error "$tmp/$name.api.$cc.err" | tr '\n' ' ')"
    done
}
# builds NAME FILE.c: FILE.c compiles warning-free with gcc and clang against the runtime's header
builds() {
    local name=$1 c=$2 cc
    for cc in gcc clang; do
        $cc -std=c11 -Wall -Wextra -Werror -I"$root/runtime" -c "$c" -o "$tmp/$name.$cc.o" 2>"$tmp/$name.$cc.err" ||
            problem "$cc: $(basename "$c") does not compile: $(grep -m2 -E 'error|warning' "$tmp/$name.$cc.err" | tr '\n' ' ')"
    done
}

mkdir -p "$tmp/c"
run compile models/fashion_mlp.yaml -o "$tmp/c/fashion_mlp.c"
expect_status 0
if [ -s "$tmp/c/fashion_mlp.c" ] && [ -s "$tmp/c/fashion_mlp.h" ]; then
    builds compile "$tmp/c/fashion_mlp.c"
    includes=$(grep -E '^[[:space:]]*#[[:space:]]*include' "$tmp/c/fashion_mlp.h" | tr -d ' ' | sort | tr '\n' ' ')
    [ "$includes" = "#include<stddef.h> #include<stdint.h> " ] || problem "the header includes: $includes"
    api compile "$tmp/c" fashion_mlp 32
    [ "$(ls "$tmp/c" | tr '\n' ' ')" = "fashion_mlp.c fashion_mlp.h " ] || problem "wrote $(ls "$tmp/c" | tr '\n' ' ')"
else
    problem "did not write fashion_mlp.c and fashion_mlp.h"
fi
finish "nncc MODEL -o DIR/fashion_mlp.c: .c and .h build with gcc and clang -Werror"

mkdir -p "$tmp/p"
run prefix models/fashion_mlp.yaml -o "$tmp/p/foo.c" --prefix foo
expect_status 0
if [ -s "$tmp/p/foo.h" ]; then
    grep -qE '\bfoo_new\(' "$tmp/p/foo.h" || problem "foo.h declares no foo_new"
    grep -q 'fashion_mlp_' "$tmp/p/foo.h" "$tmp/p/foo.c" && problem "the old prefix remains"
    api prefix "$tmp/p" foo 32
    builds prefix "$tmp/p/foo.c"
else
    problem "did not write foo.h"
fi
finish "--prefix foo renames the API"

mkdir -p "$tmp/b"
run batch models/fashion_mlp.yaml -o "$tmp/b/fashion_mlp.c" --max-batch 8
expect_status 0
grep -qE '^#define fashion_mlp_MAX_BATCH +8\b' "$tmp/b/fashion_mlp.h" 2>/dev/null || problem "no '#define fashion_mlp_MAX_BATCH 8'"
api batch "$tmp/b" fashion_mlp 8
builds batch "$tmp/b/fashion_mlp.c"
finish "--max-batch 8 shows in the header"

mkdir -p "$tmp/ir"
run ir models/fashion_mlp.yaml -o "$tmp/ir/fashion_mlp.c" --emit-ir
expect_status 0
has "$out" "graph infer"
has "$out" "graph train"
for layer in flatten dense dense_1 dense_2; do grep -qw "$layer" "$out" || problem "the IR never names $layer"; done
has "$out" "matmul"
[ -s "$tmp/ir/fashion_mlp.c" ] || problem "did not write the .c"
finish "--emit-ir prints the inference and training graphs"

mkdir -p "$tmp/r"
run report models/fashion_mlp.yaml -o "$tmp/r/fashion_mlp.c" --report
expect_status 0
has "$out" "memory plan (infer graph"
has "$out" "memory plan (train graph"
grep -qE 'arena [0-9]+ bytes' "$out" || problem "no arena size"
finish "--report prints the memory plan"

# ---- a tiny model, trained and run ------------------------------------------------------
d=$tmp/tiny
mkdir -p "$d"
cp "$here/tiny_mlp.yaml" "$d/"
if ! py "$d" <<'EOF'; then
import sys, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 4)).astype(np.float32)
np.save(d + "/tiny_x.npy", x)
np.save(d + "/tiny_y.npy", np.argmax(x[:, :3], axis=1).astype(np.int32))
EOF
    problem "$python with numpy could not make the data"
fi
finish "the tiny model's data (numpy)"

run train train "$d/tiny_mlp.yaml" --epochs 2 --out "$d/out"
expect_status 0
has "$out" "Epoch 2/2"
grep -q "Epoch 3" "$out" && problem "ran more than 2 epochs"
[ -s "$d/out/tiny_mlp.h5" ] || problem "no tiny_mlp.h5"
if [ -f "$d/out/history.csv" ]; then
    [ "$(head -n 1 "$d/out/history.csv")" = "epoch,loss,accuracy,val_loss,val_accuracy" ] ||
        problem "history.csv header '$(head -n 1 "$d/out/history.csv")'"
    [ "$(wc -l <"$d/out/history.csv")" -eq 3 ] || problem "history.csv has $(wc -l <"$d/out/history.csv") lines, want 3"
    grep -qE '^0,[0-9.e+-]+,[0-9.e+-]+,[0-9.e+-]+,[0-9.e+-]+$' "$d/out/history.csv" || problem "no row for epoch 0"
    grep -qE '^1,[0-9.e+-]+,[0-9.e+-]+,[0-9.e+-]+,[0-9.e+-]+$' "$d/out/history.csv" || problem "no row for epoch 1"
else
    problem "no history.csv"
fi
grep -q '<svg' "$d/out/learning_curves.svg" 2>/dev/null && grep -q '</svg>' "$d/out/learning_curves.svg" ||
    problem "learning_curves.svg is missing or not SVG"
finish "nncc train --epochs 2 --out DIR: NAME.h5, history.csv, learning_curves.svg"

if ! py "$d/out/tiny_mlp.h5" >"$tmp/h5.err" 2>&1 <<'EOF'; then
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    g = f["model_weights"] if "model_weights" in f else f
    shapes = {n: g[n].shape for n in ("dense/dense/kernel:0", "dense/dense/bias:0",
                                      "dense_1/dense_1/kernel:0", "dense_1/dense_1/bias:0")}
    want = {"dense/dense/kernel:0": (4, 8), "dense/dense/bias:0": (8,),
            "dense_1/dense_1/kernel:0": (8, 3), "dense_1/dense_1/bias:0": (3,)}
    assert shapes == want, shapes
EOF
    problem "tiny_mlp.h5 is not in the Keras layout: $(tail -n 1 "$tmp/h5.err")"
fi
finish "the trained weights are Keras-layout HDF5 (h5py)"

run predict_npy predict "$d/tiny_mlp.yaml" --out "$d/out" --input "$d/tiny_x.npy" --output "$d/pred.npy"
expect_status 0
if ! py "$d/pred.npy" >"$tmp/pred.err" 2>&1 <<'EOF'; then
import sys, numpy as np
p = np.load(sys.argv[1])
assert p.shape == (64, 3) and p.dtype == np.float32, (p.shape, p.dtype)
assert np.allclose(p.sum(axis=1), 1, atol=1e-5), "rows of a softmax sum to 1"
assert p.std(axis=0).max() > 0, "the same prediction for every sample"
EOF
    problem "$(tail -n 1 "$tmp/pred.err")"
fi
finish "nncc predict --input X.npy --output Y.npy writes (64, 3) float32"

run predict_csv predict "$d/tiny_mlp.yaml" --out "$d/out" --input "$d/tiny_x.npy"
expect_status 0
if ! py "$out" "$d/pred.npy" >"$tmp/csv.err" 2>&1 <<'EOF'; then
import sys, numpy as np
rows = [line.split(",") for line in open(sys.argv[1]).read().splitlines()]
assert len(rows) == 64 and all(len(r) == 3 for r in rows), "want 64 rows of 3 values, got %d" % len(rows)
csv = np.array(rows, dtype=np.float64)
assert np.abs(csv - np.load(sys.argv[2])).max() < 1e-5, "the CSV rows differ from the .npy output"
EOF
    problem "$(tail -n 1 "$tmp/csv.err")"
fi
finish "nncc predict without --output prints CSV rows (the same values)"

run evaluate evaluate "$d/tiny_mlp.yaml" --out "$d/out" --data "$d/tiny_x.npy" --targets "$d/tiny_y.npy"
expect_status 0
grep -qE '^loss: [0-9.]+$' "$out" || problem "no 'loss: N' line"
grep -qE '^accuracy: [0-9.]+$' "$out" || problem "no 'accuracy: N' line"
if ! py "$out" "$d/pred.npy" "$d/tiny_y.npy" >"$tmp/eval.err" 2>&1 <<'EOF'; then
import sys, numpy as np
got = dict(line.split(": ") for line in open(sys.argv[1]).read().splitlines() if ": " in line)
p, y = np.load(sys.argv[2]).astype(np.float64), np.load(sys.argv[3])
loss = -np.log(p[np.arange(len(y)), y]).mean()
acc = (p.argmax(axis=1) == y).mean()
assert abs(float(got["loss"]) - loss) < 2e-3, "loss %s, the predictions give %.4f" % (got["loss"], loss)
assert abs(float(got["accuracy"]) - acc) < 1e-3, "accuracy %s, the predictions give %.4f" % (got["accuracy"], acc)
EOF
    problem "$(tail -n 1 "$tmp/eval.err")"
fi
finish "nncc evaluate --data --targets prints loss and accuracy (agreeing with predict)"

run check check "$d/tiny_mlp.yaml" --out "$d/check"
expect_status 0
finish "nncc check passes on the tiny model"

# ---- mistakes on the command line ------------------------------------------------------
# mistake NAME FIRST-LINE-PREFIX ARGS...: exit 1, stderr starts with the prefix, nothing on stdout
mistake() {
    local name=$1 want=$2
    shift 2
    run "$name" "$@"
    expect_status 1
    case $(head -n 1 "$err") in "$want"*) ;; *) problem "first line '$(head -n 1 "$err")', want '$want...'" ;; esac
    [ -s "$out" ] && problem "writes to stdout"
    finish "$name: nncc $*"
}
mistake "no model" "nncc: error: no model file given" summary
mistake "nothing to do" "nncc: error: nothing to do" models/fashion_mlp.yaml
mistake "bad --max-batch" "nncc: error: --max-batch needs an integer of at least 1, not '0'" \
    models/fashion_mlp.yaml -o "$tmp/m.c" --max-batch 0
mistake "option without value" "nncc: error: option -o needs a value" models/fashion_mlp.yaml -o
sed '/^fit:/,$d' "$d/tiny_mlp.yaml" >"$d/nofit.yaml"
mistake "train without fit" "$d/nofit.yaml:1:1: error: 'nncc train' needs a fit section" train "$d/nofit.yaml" --out "$tmp/m"
[ -e "$tmp/m.c" ] && problem "wrote $tmp/m.c after an error"
[ -e "$tmp/m" ] && problem "made the --out folder after an error"
finish "nothing written after these mistakes"

run wrong_input predict "$d/tiny_mlp.yaml" --out "$d/out" --input "$d/pred.npy"
expect_status 1
grep -q "pred.npy.*takes 4" "$err" || problem "the message does not name the file and the width: $(tr '\n' ' ' <"$err")"
[ -s "$out" ] && problem "writes to stdout"
finish "predict with (64, 3) data for a 4-feature input: exit 1, names the file"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
