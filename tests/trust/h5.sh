#!/usr/bin/env bash
# tests/trust/h5.sh NNCC REPO_ROOT — weights files from elsewhere (issue 13,
# docs/security.md), as a user meets them on the command line:
#   D5   a file that drives libhdf5 into a segfault (libhdf5_segv.h5, found by
#        tests/trust/h5_mutate.py; it passes the pre-checks) and the audit's
#        truncated reproducer: exit 1, "the file is damaged", in seconds;
#   D15  NaN weights refused, naming the weight and index; --allow-nonfinite;
#   D17  every saved dataset carries nncc_crc32; a changed value is refused;
#        the same file without the attributes (as Keras writes) loads;
#   D18  a save removes a dead process's temporary, keeps a live one's;
#   D19  no HDF5-DIAG lines on stderr, ever;
#   D20  train/predict --weights with a file of which nothing matches.
# Needs /usr/bin/python3 with numpy and h5py. Prints one line per case and
# `N passed, N failed`; exits 1 on any failure.
set -u
export LC_ALL=C NO_COLOR=1
nncc=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
here=$(cd "$2/tests/trust" && pwd)
python=/usr/bin/python3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nncc-trust.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 2

pass=0 fail=0 why=""
problem() { why+=" [$*]"; }
finish() {
    if [ -z "$why" ]; then pass=$((pass + 1)); echo "ok    $1"; else fail=$((fail + 1)); echo "FAIL  $1:$why"; fi
    why=""
}
# run NAME ARGS...: nncc ARGS (60 s at most), output in NAME.out/.err, $status and $seconds set
run() {
    local name=$1
    shift
    local start=$SECONDS
    timeout 60 "$nncc" "$@" >"$name.out" 2>"$name.err"
    status=$? seconds=$((SECONDS - start)) err=$name.err
}
expect_status() { [ "$status" -eq "$1" ] || problem "exit status $status, want $1; stderr: $(head -c 400 "$err" | tr '\n' ' ')"; }
has() { grep -qF -- "$2" "$1" || problem "$(basename "$1") lacks '$2': $(head -c 300 "$1" | tr '\n' ' ')"; }
quiet_hdf5() { ! grep -q "HDF5-DIAG" "$err" || problem "HDF5's own error stack on stderr"; }

# a trained tiny_mlp: its weights file is nncc's own, with checksums
cp "$here/../cli/tiny_mlp.yaml" "$here/tiny.yaml" "$here/x_tiny.npy" .
"$python" - <<'EOF' || exit 2
import numpy as np
r = np.random.RandomState(1)
x = r.rand(64, 4).astype("float32")
np.save("tiny_x.npy", x)
np.save("tiny_y.npy", (x.sum(1) * 0.75).astype("int32").clip(0, 2))
EOF
run setup train tiny_mlp.yaml --epochs 1 --out out --quiet
[ "$status" -eq 0 ] && [ -f out/tiny_mlp.h5 ] || { echo "FAIL  setup: train: $(cat setup.err)"; exit 1; }
saved=out/tiny_mlp.h5

run d5_child predict tiny_mlp.yaml --weights "$here/libhdf5_segv.h5" --input tiny_x.npy --out out --quiet
expect_status 1
has "$err" "libhdf5_segv.h5: the file is damaged (the HDF5 library failed reading it)"
[ "$seconds" -le 20 ] || problem "took $seconds s"
quiet_hdf5
finish "D5: a file that crashes libhdf5 is 'damaged', exit 1 (predict)"

run d5_train train tiny_mlp.yaml --weights "$here/libhdf5_segv.h5" --epochs 1 --out out --quiet
expect_status 1
has "$err" "the file is damaged (the HDF5 library failed reading it)"
finish "D5: the same through train --weights"

run d5_truncated predict tiny.yaml --weights "$here/load_H5C_protect_segv.h5" --input x_tiny.npy --out tinyout --quiet
expect_status 1
has "$err" "load_H5C_protect_segv.h5: damaged or truncated: its HDF5 superblock says the file ends at byte 20977"
[ "$seconds" -le 20 ] || problem "took $seconds s"
quiet_hdf5
finish "D5: the audit's reproducer is refused before libhdf5 reads it"

run d5_summary summary "$here/libhdf5_segv.h5"
[ "$status" -eq 0 ] || [ "$status" -eq 1 ] || problem "exit status $status"
quiet_hdf5
finish "D5: summary of a damaged .h5 ends in 0 or 1"

# D17: checksums written, verified, optional
"$python" - "$saved" <<'EOF' >crc.out 2>&1
import sys, h5py
names = []
with h5py.File(sys.argv[1], "r") as f:
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) and "nncc_crc32" not in o.attrs else None)
print("without nncc_crc32:", names)
sys.exit(1 if names else 0)
EOF
[ $? -eq 0 ] || problem "$(cat crc.out)"
finish "D17: every dataset nncc saves carries nncc_crc32"

cp "$saved" changed.h5
"$python" - <<'EOF' || exit 2
import h5py
with h5py.File("changed.h5", "r+") as f:
    d = f["model_weights/dense_1/dense_1/kernel:0"]
    v = d[...]; v[3, 1] += 0.5; d[...] = v
EOF
run d17_changed predict tiny_mlp.yaml --weights changed.h5 --input tiny_x.npy --out out --quiet
expect_status 1
has "$err" "changed.h5: weight 'dense_1/kernel:0' of layer 'dense_1' does not match its nncc_crc32 checksum"
finish "D17: a changed value is refused"

cp changed.h5 keras_like.h5
"$python" - <<'EOF' || exit 2
import h5py
with h5py.File("keras_like.h5", "r+") as f:
    f.visititems(lambda n, o: o.attrs.__delitem__("nncc_crc32") if "nncc_crc32" in o.attrs else None)
EOF
run d17_keras predict tiny_mlp.yaml --weights keras_like.h5 --input tiny_x.npy --output y.npy --out out --quiet
expect_status 0
finish "D17: a file without checksums (as Keras writes) loads"

# D15: NaN weights
cp keras_like.h5 nan.h5
"$python" - <<'EOF' || exit 2
import h5py, numpy as np
with h5py.File("nan.h5", "r+") as f:
    d = f["model_weights/dense/dense/kernel:0"]
    v = d[...]; v[1, 2] = np.nan; v[3, 3] = np.inf; d[...] = v
EOF
run d15_nan predict tiny_mlp.yaml --weights nan.h5 --input tiny_x.npy --output y.npy --out out --quiet
expect_status 1
has "$err" "nan.h5: weight 'dense/kernel:0' of layer 'dense' holds NaN at index [1, 2] (the first)"
has "$err" "--allow-nonfinite"
finish "D15: NaN weights refused, the first named"

run d15_allowed predict tiny_mlp.yaml --weights nan.h5 --input tiny_x.npy --output y.npy --out out --quiet --allow-nonfinite
expect_status 0
finish "D15: predict --allow-nonfinite loads them"

run d15_train train tiny_mlp.yaml --weights nan.h5 --epochs 1 --out out2 --quiet
expect_status 1
has "$err" "holds NaN at index [1, 2]"
finish "D15: train --weights refuses them too"

run d15_check check tiny_mlp.yaml --allow-nonfinite --out out --quiet
expect_status 1
has "$err" "--allow-nonfinite goes with"
finish "D15: --allow-nonfinite without weights to load is a usage error"

# D20: nothing of the file matches the model
"$python" - <<'EOF' || exit 2
import h5py, numpy as np
with h5py.File("other.h5", "w") as f:
    g = f.create_group("model_weights")
    g.attrs["layer_names"] = np.array([b"conv2d"])
    c = g.create_group("conv2d")
    c.attrs["weight_names"] = np.array([b"conv2d/kernel:0", b"conv2d/bias:0"])
    c.create_dataset("conv2d/kernel:0", data=np.ones((3, 3, 1, 4), "float32"))
    c.create_dataset("conv2d/bias:0", data=np.zeros(4, "float32"))
EOF
run d20_train train tiny_mlp.yaml --weights other.h5 --epochs 1 --out out3 --quiet
expect_status 1
has "$err" "other.h5: none of the model's 4 weights is in the file (the model's layers: dense, dense_1)"
has "$err" "its layers: conv2d"
[ ! -e out3/tiny_mlp.h5 ] || problem "trained anyway"
finish "D20: train --weights with nothing matching is an error"

run d20_predict predict tiny_mlp.yaml --weights other.h5 --input tiny_x.npy --out out --quiet
expect_status 1
has "$err" "none of the model's 4 weights is in the file"
quiet_hdf5
finish "D20: predict --weights too"

# D18: temporaries of interrupted saves
dead=$(sh -c 'echo $$')
touch "out/tiny_mlp.h5.$dead.0.tmp" "out/tiny_mlp.h5.$$.3.tmp" out/tiny_mlp.h5.keep.tmp
run d18 train tiny_mlp.yaml --epochs 1 --out out --quiet
expect_status 0
[ ! -e "out/tiny_mlp.h5.$dead.0.tmp" ] || problem "a dead process's temporary is still there"
[ -e "out/tiny_mlp.h5.$$.3.tmp" ] || problem "a live process's temporary was removed"
[ -e out/tiny_mlp.h5.keep.tmp ] || problem "a file not named like a temporary was removed"
finish "D18: a save removes stale temporaries of the same path only"

# HDF5 data files go through the same guard
"$python" - <<'EOF' || exit 2
import h5py, numpy as np
with h5py.File("data.h5", "w") as f:
    f["x"] = np.load("tiny_x.npy")
    f["y"] = np.load("tiny_y.npy")
text = open("tiny_mlp.yaml").read().replace("{format: npy, x: tiny_x.npy, y: tiny_y.npy}", "{format: hdf5, path: %s, x: x, y: y}")
open("h5data.yaml", "w").write(text % "data.h5")
open("h5cut.yaml", "w").write(text % "cut.h5")
EOF
head -c 3000 data.h5 >cut.h5
run data_ok train h5data.yaml --epochs 1 --out out4 --quiet
expect_status 0
finish "HDF5 data: a sound file trains (read in the child process)"
run data_cut train h5cut.yaml --epochs 1 --out out5 --quiet
expect_status 1
has "$err" "cut.h5: damaged or truncated: its HDF5 superblock says the file ends at byte"
quiet_hdf5
finish "HDF5 data: a truncated file is refused before libhdf5 reads it"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
