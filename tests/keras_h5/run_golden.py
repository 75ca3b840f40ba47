#!/usr/bin/python3
"""run_golden.py — nncc's Keras .h5 importer against the independent reference.

For each model of golden/manifest.json (or the ones named on the command
line), as a user would: `nncc predict FILE.h5 --input x0.npy [--input ...]
--output y0.npy [...]` (the importer compiles the architecture; the weights
are the file's own), then every output is compared elementwise with the
reference's float64 predictions: |y - golden| <= atol + rtol |golden|. One
line per model with the largest difference; exit 1 if any fails.

Usage: run_golden.py NNCC SHARED_KERAS_H5_DIR WORK_DIR [stem ...]
"""
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def run_model(nncc, h5dir, work, entry):
    stem = entry["file"][:-3]
    gold = os.path.join(HERE, "golden", stem)
    out = os.path.join(work, stem)
    os.makedirs(out, exist_ok=True)
    cmd = [nncc, "predict", os.path.join(h5dir, entry["file"]), "--out", out, "--quiet"]
    for i in entry["inputs"]:
        cmd += ["--input", os.path.join(gold, i["npy"])]
    for o in entry["outputs"]:
        cmd += ["--output", os.path.join(out, o["npy"])]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        print(f"FAIL {entry['file']}: nncc predict exited {run.returncode}\n{run.stderr.strip()}")
        return False
    tol = entry["tolerance"]
    worst, ok = 0.0, True
    for o in entry["outputs"]:
        got = np.load(os.path.join(out, o["npy"])).astype(np.float64)
        want = np.load(os.path.join(gold, o["npy"])).astype(np.float64)
        if got.shape != want.shape:
            print(f"FAIL {entry['file']}: output {o['name']} has shape {got.shape}, the reference {want.shape}")
            return False
        diff = np.abs(got - want)
        worst = max(worst, float(diff.max()))
        ok &= bool(np.all(diff <= tol["atol"] + tol["rtol"] * np.abs(want)))
    print(f"{'ok  ' if ok else 'FAIL'} {entry['file']:40s} max abs diff {worst:.3g} "
          f"(atol {tol['atol']:g}, rtol {tol['rtol']:g})")
    return ok


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    nncc, h5dir, work = sys.argv[1:4]
    wanted = set(sys.argv[4:])
    with open(os.path.join(HERE, "golden", "manifest.json")) as f:
        manifest = json.load(f)
    failures = 0
    for entry in manifest["models"]:
        if wanted and entry["file"][:-3] not in wanted:
            continue
        failures += not run_model(nncc, h5dir, work, entry)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
