#!/usr/bin/env bash
# tests/trust/caps/run.sh NNCC REPO_ROOT — what an untrusted model or data
# file may make nncc build or allocate (issue 13: D11, D13, D14, D16).
#
# From the repository root, with the files of this folder (the audit's
# reproducers repeat_1e5.yaml, conv_filters_huge.yaml and
# huge_header_small_file.npy among them):
#   caps      each --max-* cap refuses with a located message naming the
#             option, quickly and in little memory (under ulimit -v), and a
#             raised cap lets the same small model through;
#   int       size arguments, tensors, batch sizes and cond arithmetic beyond
#             what the generated C's int holds are located errors;
#   headers   .npy headers declaring more data than the file holds are
#             "truncated", before any allocation (and through predict);
#   nonfinite predict/evaluate name the file, sample and element of a NaN or
#             Inf input, exit 1, and --allow-nonfinite lets it through.
# Every bad input must exit 1 (not 0, not 2, not a signal) within $limit s.
# Needs /usr/bin/python3 with numpy. Prints one line per case and
# `N passed, N failed`; exits 1 on any failure.
set -u
export LC_ALL=C NO_COLOR=1

if [ $# -ne 2 ]; then
    echo "usage: $0 PATH/TO/nncc REPO_ROOT" >&2
    exit 2
fi
nncc=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$2" || exit 2
here=tests/trust/caps
python=/usr/bin/python3
limit=30      # seconds per compile-only run: more is a hang
memory=1500000 # KiB of address space for compile-only runs: the reproducers once took 4-6 GB

# An AddressSanitizer build cannot start under an address-space limit (its
# shadow memory): then the runs go unbounded in memory, and the note says so.
if ! (ulimit -v "$memory" && exec "$nncc" --version) >/dev/null 2>&1; then
    echo "note: $nncc does not start under ulimit -v $memory (a sanitizer build?): memory not bounded"
    memory=unlimited
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nncc-caps.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

pass=0 fail=0 why=""
problem() { why+=" [$*]"; }
finish() {
    if [ -z "$why" ]; then
        pass=$((pass + 1))
        echo "ok    $1"
    else
        fail=$((fail + 1))
        echo "FAIL  $1:$why"
    fi
    why=""
}
# run NAME ARGS...: nncc ARGS, bounded in time and memory; stdout/stderr in $tmp/NAME.out/.err
run() {
    local name=$1
    shift
    (ulimit -v "$memory" && exec timeout "$limit" "$nncc" "$@") >"$tmp/$name.out" 2>"$tmp/$name.err"
    status=$?
    out=$tmp/$name.out err=$tmp/$name.err
}
# run_program NAME ARGS...: as run, for commands that build and run a program (no memory bound:
# the C compiler needs its own)
run_program() {
    local name=$1
    shift
    timeout 300 "$nncc" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
    status=$?
    out=$tmp/$name.out err=$tmp/$name.err
}
expect_status() {
    [ "$status" -eq "$1" ] || problem "exit status $status, want $1; stderr: $(head -c 400 "$err" | tr '\n' ' ')"
}
has() {
    grep -qF -- "$2" "$1" || problem "$(basename "$1") lacks '$2': $(head -c 300 "$1" | tr '\n' ' ')"
}
lacks() {
    grep -qF -- "$2" "$1" && problem "$(basename "$1") has '$2'"
    return 0
}
# refused NAME FIRST_LINE ARGS...: exit 1, the first stderr line exactly, nothing on stdout
refused() {
    local name=$1 first=$2
    shift 2
    run "$name" "$@"
    expect_status 1
    [ "$(head -n 1 "$err")" = "$first" ] || problem "first line '$(head -n 1 "$err")', want '$first'"
    [ -s "$out" ] && problem "writes to stdout"
    lacks "$err" "out of memory"
    lacks "$err" "internal error"
}

# ---- D11: caps on the expanded model -----------------------------------------------------
refused repeat_1e5 "$here/repeat_1e5.yaml:5:39: error: the model expands to more than 10000 layers" \
    summary "$here/repeat_1e5.yaml"
has "$err" "--max-layers N"
finish "repeat: 100000 (the audit's reproducer) stops at 10000 layers, in little memory"

refused fan_out "$here/fan_out.yaml:6:18: error: the model expands to more than 10000 layers" summary "$here/fan_out.yaml"
finish "blocks fanning out 30 deep (2^30 layers) stop at the cap"

refused repeat_nothing \
    "$here/repeat_nothing.yaml:7:39: error: expanding the layers visits more than 640000 items (repeats of nothing, or of ifs not taken?)" \
    summary "$here/repeat_nothing.yaml"
has "$err" "--max-layers N"
finish "10^10 repeats of nothing stop at 64 items per allowed layer"

refused layers_10 "$here/repeat_20.yaml:6:35: error: the model expands to more than 10 layers" \
    summary "$here/repeat_20.yaml" --max-layers 10
run layers_30 summary "$here/repeat_20.yaml" --max-layers 30
expect_status 0
has "$out" "Total params: 132"
finish "--max-layers 10 refuses 20 layers; --max-layers 30 compiles them"

refused weights_50 "$here/repeat_20.yaml:6:35: error: Dense 'dense_6' brings the model's weights to 52 values, more than 50" \
    summary "$here/repeat_20.yaml" --max-weights 50
has "$err" "--max-weights N"
run weights_58 summary "$here/repeat_20.yaml" --max-weights 132
expect_status 0
finish "--max-weights: refused one past the cap as the layer adds it, accepted at the model's 132"

refused arena "nncc: error: $here/tiny.yaml: the inference graph's planned arena is 1152 bytes at batch 32, more than 1000 (--max-arena-bytes)" \
    summary "$here/tiny.yaml" --max-arena-bytes 1000 --inference-only
has "$err" "--max-batch"
run arena_ok summary "$here/tiny.yaml" --max-arena-bytes 1000 --inference-only --max-batch 8
expect_status 0
finish "--max-arena-bytes refuses the planned arena; a smaller --max-batch fits it"

mkdir -p "$tmp/c"
refused code "nncc: error: $here/tiny.yaml: the generated $tmp/c/tiny.c would be larger than 4096 bytes (--max-code-bytes)" \
    "$here/tiny.yaml" -o "$tmp/c/tiny.c" --max-code-bytes 4096
has "$err" "--max-code-bytes N"
[ -e "$tmp/c/tiny.c" ] && problem "wrote tiny.c"
run code_ok "$here/tiny.yaml" -o "$tmp/c/tiny.c" --max-code-bytes 10000000
expect_status 0
[ -s "$tmp/c/tiny.c" ] || problem "did not write tiny.c with the cap raised"
finish "--max-code-bytes refuses a generated file over the cap and writes nothing"

{
    printf 'name: big\ninputs: [{name: x, shape: [4]}]\nlayers:\n  - Dense: {units: 2}\n'
    yes '# filler to make the file big' | head -n 40000
} >"$tmp/big.yaml"
refused model_bytes "nncc: error: model file '$tmp/big.yaml' is larger than 100000 bytes (--max-model-bytes)" \
    summary "$tmp/big.yaml" --max-model-bytes 100000
run model_bytes_ok summary "$tmp/big.yaml"
expect_status 0
finish "--max-model-bytes refuses a file over the cap as it is read; the default takes it"

run bad_cap summary "$here/tiny.yaml" --max-layers 0
expect_status 1
has "$err" "--max-layers needs an integer of at least 1, not '0'"
finish "a cap of 0 is a usage error"

# ---- D13: sizes against the generated C's int -------------------------------------------------
refused filters "$here/conv_filters_huge.yaml:5:23: error: filters 100000000000 is out of range: the generated C holds it in an int (at most 2147483647)" \
    summary "$here/conv_filters_huge.yaml"
finish "Conv2D filters 1e11 (the audit's reproducer) is refused at the argument"

refused kernel_dim "$here/kernel_dim_huge.yaml:5:43: error: kernel_size: dimension 99999999999 is out of range: the generated C holds it in an int (at most 2147483647)" \
    summary "$here/kernel_dim_huge.yaml"
finish "a kernel_size dimension beyond int is refused at that dimension"

refused window "$here/window_span_huge.yaml:5:5: error: Conv1D 'conv1d': the window (70000 with dilation 70000) over an input of 100 spans more than the generated C's int holds" \
    summary "$here/window_span_huge.yaml"
finish "a dilated window whose span overflows int is refused at its layer"

refused tensor "$here/tensor_too_big.yaml:6:5: error: Dense 'dense' makes a tensor (B,100000000) of more values than the generated C's int holds (2147483647) at batch 32" \
    summary "$here/tensor_too_big.yaml"
run tensor_batch_1 summary "$here/tensor_too_big.yaml" --max-batch 1 --inference-only
expect_status 0
finish "a tensor beyond int at batch 32 is refused at its layer; at batch 1 it fits"

refused batch_size "$here/batch_size_huge.yaml:9:15: error: batch_size must be at most 2147483647, not 10000000000" \
    summary "$here/batch_size_huge.yaml"
refused max_batch "nncc: error: --max-batch must be at most 2147483647, not 3000000000" \
    summary "$here/tiny.yaml" --max-batch 3000000000
finish "fit.batch_size and --max-batch beyond int are refused"

refused cond "$here/cond_overflow.yaml:9:25: error: in cond: integer out of range" summary "$here/cond_overflow.yaml"
finish "a repeat count whose arithmetic overflows is an error, not undefined behaviour"

# ---- D14 and D16: the program's data -----------------------------------------------------------
cp "$here/tiny.yaml" "$here/huge_header_small_file.npy" "$tmp/"
"$python" - "$tmp" <<'EOF' || problem "numpy could not make the data"
import sys
import numpy as np
d = sys.argv[1]
rng = np.random.default_rng(3)
x = rng.random((6, 4, 4)).astype("<f4")
np.save(d + "/x.npy", x)
x[3, 1, 2] = np.nan
np.save(d + "/x_nan.npy", x)
x[3, 1, 2] = 0.5
x[5, 0, 0] = -np.inf
np.save(d + "/x_inf.npy", x)
np.save(d + "/y.npy", np.array([0, 1, 2, 0, 1, 2], dtype="<i4"))
with open(d + "/x.npy", "rb") as f:
    whole = f.read()
open(d + "/x_cut.npy", "wb").write(whole[:-10])
open(d + "/x_long.npy", "wb").write(whole + b"\0\0\0\0")
EOF
finish "numpy makes the data"

run_program npy_huge predict "$tmp/tiny.yaml" --input "$tmp/huge_header_small_file.npy" --out "$tmp/run"
expect_status 1
has "$err" "huge_header_small_file.npy: truncated .npy file: the header declares 3136000000000 bytes of data, the file has 64"
lacks "$err" "out of memory"
finish "a 192-byte .npy declaring 3 TB (the audit's reproducer) is truncated, not out of memory"

run_program npy_cut predict "$tmp/tiny.yaml" --input "$tmp/x_cut.npy" --out "$tmp/run"
expect_status 1
has "$err" "x_cut.npy: truncated .npy file: the header declares 384 bytes of data, the file has 374"
run_program npy_long predict "$tmp/tiny.yaml" --input "$tmp/x_long.npy" --out "$tmp/run"
expect_status 1
has "$err" "x_long.npy: .npy file is longer than its header declares (384 bytes of data, the file has 388)"
run_program npy_pipe predict "$tmp/tiny.yaml" --input /dev/stdin --out "$tmp/run" <"$tmp/x_cut.npy"
expect_status 1
has "$err" "truncated .npy file: the header declares 384 bytes of data, the file has 374"
finish "a cut or padded .npy is refused with both lengths, from a file or a pipe"

run_program nan predict "$tmp/tiny.yaml" --input "$tmp/x_nan.npy" --out "$tmp/run"
expect_status 1
has "$err" "error: $tmp/x_nan.npy: sample 3, element 6 (input 1 of 1) is NaN"
has "$err" "--allow-nonfinite"
[ -s "$out" ] && problem "printed predictions"
run_program nan_allowed predict "$tmp/tiny.yaml" --input "$tmp/x_nan.npy" --out "$tmp/run" --allow-nonfinite
expect_status 0
[ "$(wc -l <"$out")" -eq 6 ] || problem "printed $(wc -l <"$out") rows, want 6"
finish "predict refuses a NaN input with file, sample and element; --allow-nonfinite runs it"

run_program inf evaluate "$tmp/tiny.yaml" --data "$tmp/x_inf.npy" --targets "$tmp/y.npy" --out "$tmp/run"
expect_status 1
has "$err" "error: $tmp/x_inf.npy: sample 5, element 0 (input 1 of 1) is -Inf"
run_program finite evaluate "$tmp/tiny.yaml" --data "$tmp/x.npy" --targets "$tmp/y.npy" --out "$tmp/run"
expect_status 0
has "$out" "loss:"
finish "evaluate refuses an -Inf input; finite data evaluates"

run allow_check check "$here/tiny.yaml" --allow-nonfinite
expect_status 1
has "$err" "--allow-nonfinite goes with the weights it lets through: train, evaluate, predict"
finish "--allow-nonfinite is refused where it means nothing"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
