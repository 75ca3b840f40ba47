#!/usr/bin/python3
"""fashion_accuracy.py — the Keras 3.10 Fashion-MNIST MLP, imported by nncc,
on the 10,000 test images of Debian's dataset-fashion-mnist.

SOURCES.md records that a NumPy forward pass over this file's weights scores
0.8721 (first three predictions 9, 2, 1). The images become a .npy of
pixels / 255 in the model's input shape (28, 28, 1); `nncc predict` on the
.h5 itself gives the probabilities; the test passes when the accuracy,
rounded to 4 digits, is 0.8721.

Usage: fashion_accuracy.py NNCC SHARED_KERAS_H5_DIR WORK_DIR
"""
import gzip
import os
import subprocess
import sys

import numpy as np

DATA = "/usr/share/datasets/fashion-mnist"
MODEL = "mlp_fashion_mnist_k3.10.0.h5"


def idx(path, offset):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def main():
    nncc, h5dir, work = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    x = idx(os.path.join(DATA, "t10k-images-idx3-ubyte.gz"), 16).reshape(-1, 28, 28, 1).astype(np.float32) / 255
    labels = idx(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz"), 8)
    xpath, ypath = os.path.join(work, "x.npy"), os.path.join(work, "probabilities.npy")
    np.save(xpath, x)
    cmd = [nncc, "predict", os.path.join(h5dir, MODEL), "--input", xpath, "--output", ypath,
           "--out", os.path.join(work, "build"), "--quiet"]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"nncc predict failed ({run.returncode}):\n{run.stderr}")
    pred = np.load(ypath).argmax(axis=1)
    accuracy = float((pred == labels).mean())
    print(f"{MODEL}: accuracy {accuracy:.4f} on {len(labels)} test images (Keras/NumPy: 0.8721), "
          f"first predictions {pred[:3].tolist()}")
    sys.exit(0 if round(accuracy, 4) == 0.8721 and pred[:3].tolist() == [9, 2, 1] else 1)


if __name__ == "__main__":
    main()
