#!/usr/bin/python3
"""standalone_h5.py — a real Keras model to dependency-free C.

The Keras 2.14 DS-CNN keyword spotter (dscnn_wakeword_k2.14.0.h5:
DepthwiseConv2D, 1x1 Conv2D, BatchNormalization) goes through
`nncc FILE --standalone --weights FILE -o sa.c`: its BatchNormalizations
fold into the convolutions' kernels and biases, and the C builds with
-std=c99 -Wall -Wextra -Werror -pedantic and links libm alone. Run on the
golden inputs one sample at a time, it must give the independent reference's
outputs within the manifest's tolerance.

Usage: standalone_h5.py NNCC CC SHARED_KERAS_H5_DIR WORK_DIR
"""
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = "dscnn_wakeword_k2.14.0.h5"


def main():
    nncc, cc, h5dir, work = sys.argv[1:5]
    os.makedirs(work, exist_ok=True)
    h5 = os.path.join(h5dir, MODEL)
    c = os.path.join(work, "sa.c")
    gen = subprocess.run([nncc, h5, "--standalone", "--weights", h5, "-o", c, "--prefix", "sa", "--report"],
                         capture_output=True, text=True)
    if gen.returncode != 0:
        sys.exit(f"FAIL: nncc --standalone exited {gen.returncode}\n{gen.stderr}")
    folded = gen.stdout.count("fold_bn (standalone)")
    exe = os.path.join(work, "dscnn")
    # $CFLAGS and $LDFLAGS as nncc takes them (split at blanks): the sanitized build sets them
    cflags, ldflags = os.environ.get("CFLAGS", "").split(), os.environ.get("LDFLAGS", "").split()
    build = subprocess.run([cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", *cflags, "-I", work,
                            os.path.join(HERE, "standalone_driver.c"), c, "-o", exe, *ldflags, "-lm"],
                           capture_output=True, text=True)
    if build.returncode != 0:
        sys.exit(f"FAIL: the standalone C does not build\n{build.stderr}")
    with open(os.path.join(HERE, "golden", "manifest.json")) as f:
        entry = next(m for m in json.load(f)["models"] if m["file"] == MODEL)
    gold = os.path.join(HERE, "golden", MODEL[:-3])
    x = np.load(os.path.join(gold, "x0.npy")).astype(np.float32)
    want = np.load(os.path.join(gold, "y0.npy")).astype(np.float64)
    run = subprocess.run([exe], input=x.tobytes(), capture_output=True)
    if run.returncode != 0:
        sys.exit(f"FAIL: the standalone program exited {run.returncode}")
    got = np.frombuffer(run.stdout, np.float32).astype(np.float64).reshape(want.shape)
    tol = entry["tolerance"]
    diff = np.abs(got - want)
    ok = folded == 4 and bool(np.all(diff <= tol["atol"] + tol["rtol"] * np.abs(want)))
    print(f"{'ok  ' if ok else 'FAIL'} {MODEL} as --standalone C ({folded} BatchNormalizations folded into "
          f"kernels): max abs diff {diff.max():.3g} against the reference over {len(x)} samples")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
