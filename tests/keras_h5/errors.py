#!/usr/bin/python3
"""errors.py — damaged and unsupported Keras files: a clear error, never a crash.

Each case is a file nncc must refuse with exit status 1 and a message that
names the file and contains the expected words. The three damaged files of
shared/keras_h5/damaged/ are used as they are; the others are made here in a
temporary folder from a real file (func_2in2out_concat_k2.4.0.h5, 28 KB),
with h5py: a Keras 3 .keras zip, text, an empty file, a missing file, an
unsupported layer class, a shared layer, a Keras 3 hard_sigmoid, a config
that is not JSON, and the real file truncated at 16 points (each must give
status 1, not a crash or a hang).

Usage: errors.py NNCC SHARED_KERAS_H5_DIR WORK_DIR
"""
import json
import os
import shutil
import subprocess
import sys

import h5py

SOURCE = "func_2in2out_concat_k2.4.0.h5"


def with_config(src, dst, edit):
    shutil.copy(src, dst)
    os.chmod(dst, 0o644)
    with h5py.File(dst, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        text = edit(cfg)
        f.attrs["model_config"] = text if isinstance(text, str) else json.dumps(cfg)


def first_dense(cfg):
    return next(l for l in cfg["config"]["layers"] if l["class_name"] == "Dense")


def main():
    nncc, h5dir, work = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    real = os.path.join(h5dir, SOURCE)
    cases = [
        (os.path.join(h5dir, "damaged", "lambda_layer_k2.4.0.h5"), "is a Lambda layer"),
        (os.path.join(h5dir, "damaged", "weights_only_k2.4.0.h5"), "weights only"),
        (os.path.join(h5dir, "damaged", "truncated_func_2in2out_k2.4.0.h5"), "damaged or truncated"),
    ]

    def made(name, expect, write):
        path = os.path.join(work, name)
        write(path)
        cases.append((path, expect))

    made("model.keras", "Keras 3 .keras archive", lambda p: open(p, "wb").write(b"PK\x03\x04" + b"\0" * 64))
    made("text.h5", "not an HDF5 file", lambda p: open(p, "w").write("model.save() output, but as text\n"))
    made("empty.h5", "not an HDF5 file", lambda p: open(p, "wb").close())
    cases.append((os.path.join(work, "missing.h5"), "cannot open"))

    def embedding(cfg):
        first_dense(cfg)["class_name"] = "Embedding"
    made("embedding.h5", "has class Embedding, which nncc does not support", lambda p: with_config(real, p, embedding))

    def shared(cfg):
        layer = first_dense(cfg)
        layer["inbound_nodes"] = layer["inbound_nodes"] * 2
    made("shared.h5", "shared layers are not supported", lambda p: with_config(real, p, shared))

    def keras3_hard_sigmoid(cfg):
        first_dense(cfg)["config"]["activation"] = "hard_sigmoid"
    def as_keras3(p):
        with_config(real, p, keras3_hard_sigmoid)
        with h5py.File(p, "r+") as f:
            f.attrs["keras_version"] = "3.10.0"
    made("hard_sigmoid_k3.h5", "Keras 3's hard_sigmoid", as_keras3)

    made("not_json.h5", "model_config", lambda p: with_config(real, p, lambda cfg: '{"class_name": "Functional", '))

    with open(real, "rb") as f:
        data = f.read()
    for i in range(16):
        cut = len(data) * (i + 1) // 17
        made(f"cut_{cut}.h5", "", lambda p, cut=cut: open(p, "wb").write(data[:cut]))

    failures = 0
    for path, expect in cases:
        try:
            run = subprocess.run([nncc, "summary", path], capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            print(f"FAIL {os.path.basename(path)}: nncc hangs")
            failures += 1
            continue
        msg = run.stderr.strip().splitlines()
        first = msg[0] if msg else ""
        ok = run.returncode == 1 and path in first and expect in run.stderr
        print(f"{'ok  ' if ok else 'FAIL'} {os.path.basename(path):40s} exit {run.returncode}: {first}")
        failures += not ok
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
