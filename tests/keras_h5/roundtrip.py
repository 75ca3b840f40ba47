#!/usr/bin/python3
"""roundtrip.py — nncc's saved .h5 files are Keras files.

1. Layout: the architecture of a real tf.keras 2.4 file (shared/keras_h5/
   func_2in2out_concat_k2.4.0.h5: two inputs, Dense, Concatenate, two
   outputs) is taken as YAML (`nncc FILE --emit-yaml`), trained one epoch by
   `nncc train` on random data, and saved. The saved file must have the
   real file's structure: the same root attributes (all but
   training_config), model_weights' attributes, the same layer groups with
   the layers that have weights in the same order (Keras's InputLayers sit
   where its graph walk puts them), per layer the same weight_names and the
   same dataset paths, shapes and dtypes, and the same string kinds
   (model_config a variable-length string, names 1-D arrays of strings). Optimizer state is
   not compared (its names follow the optimizer's version).
2. Round trip: models/wide_deep.yaml is trained a few steps and saved; the
   saved .h5 compiled as a model (`nncc predict saved.h5`) must predict
   exactly what the YAML model with those weights predicts.

Usage: roundtrip.py NNCC MODELS_DIR SHARED_KERAS_H5_DIR WORK_DIR
"""
import os
import subprocess
import sys

import h5py
import numpy as np

REAL = "func_2in2out_concat_k2.4.0.h5"


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {r.returncode}\n{r.stderr}")
    return r.stdout


def string_kind(attr_id):
    t = attr_id.get_type()
    if t.get_class() != h5py.h5t.STRING:
        return "not a string"
    return "vlen" if t.is_variable_str() else "fixed"


def structure(path):
    """Everything of a Keras file's layout but the values."""
    s = {}
    with h5py.File(path, "r") as f:
        s["root attributes"] = sorted(a for a in f.attrs if a != "training_config")
        s["model_config kind"] = string_kind(f.attrs.get_id("model_config"))
        mw = f["model_weights"]
        s["model_weights attributes"] = sorted(mw.attrs)
        names = [n.decode() if isinstance(n, bytes) else n for n in mw.attrs["layer_names"]]
        # Keras's own order of the InputLayers among the layers follows its graph walk; what
        # load_weights relies on is the set of groups and the order of the layers with weights
        s["layer_names (as a set)"] = sorted(names)
        s["layers with weights, in order"] = [n for n in names if len(mw[n].attrs["weight_names"])]
        s["layer_names"] = names
        s["layer_names rank"] = mw.attrs["layer_names"].ndim
        for layer in s.pop("layer_names"):
            names = [n.decode() if isinstance(n, bytes) else n for n in mw[layer].attrs["weight_names"]]
            s[f"{layer} weight_names"] = names
            for n in names:
                d = mw[layer][n]
                s[f"{layer}/{n}"] = (d.shape, d.dtype.str)
    return s


def layout(nncc, h5dir, work):
    real = os.path.join(h5dir, REAL)
    yaml = run([nncc, real, "--emit-yaml"])
    rng = np.random.default_rng(5)
    paths = {}
    for name, shape in (("wide", (64, 5)), ("deep", (64, 6)), ("y1", (64, 1)), ("y2", (64, 1))):
        paths[name] = os.path.join(work, name + ".npy")
        np.save(paths[name], rng.normal(size=shape).astype(np.float32))
    model = os.path.join(work, "same_as_keras.yaml")
    with open(model, "w") as f:
        f.write(yaml.replace("# training_config is left out", "# (training_config left out)"))
        if "compile:" not in yaml:
            f.write("compile: {loss: mse, optimizer: sgd}\n")
        f.write(f"fit: {{data: {{train: {{format: npy, x: [{paths['wide']}, {paths['deep']}], "
                f"y: [{paths['y1']}, {paths['y2']}]}}}}, epochs: 1, batch_size: 16}}\n")
    out = os.path.join(work, "saved")
    run([nncc, "train", model, "--out", out, "--quiet"])
    saved = [os.path.join(out, f) for f in os.listdir(out) if f.endswith(".h5")][0]
    want, got = structure(real), structure(saved)
    bad = 0
    for key in want:
        ok = key in got and got[key] == want[key]
        bad += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {key}: {got.get(key, '(missing)')}" + ("" if ok else f", Keras: {want[key]}"))
    for key in got:
        if key not in want:
            print(f"FAIL {key}: only in nncc's file")
            bad += 1
    return bad


def roundtrip(nncc, models, work):
    rng = np.random.default_rng(9)
    xa, xb = os.path.join(work, "a.npy"), os.path.join(work, "b.npy")
    np.save(xa, rng.normal(size=(6, 5)).astype(np.float32))
    np.save(xb, rng.normal(size=(6, 11)).astype(np.float32))
    yaml = os.path.join(models, "wide_deep.yaml")
    run([nncc, "train", yaml, "--epochs", "2", "--out", os.path.join(work, "wd"), "--quiet"])
    saved = os.path.join(work, "wd", "wide_deep.h5")
    outs = {}
    for tag, cmd in (("h5", [nncc, "predict", saved]), ("yaml", [nncc, "predict", yaml, "--weights", saved])):
        o = [os.path.join(work, f"{tag}_{i}.npy") for i in range(2)]
        run(cmd + ["--input", xa, "--input", xb, "--output", o[0], "--output", o[1],
                   "--out", os.path.join(work, "run_" + tag), "--quiet"])
        outs[tag] = [np.load(p) for p in o]
    diff = max(float(np.abs(a - b).max()) for a, b in zip(outs["h5"], outs["yaml"]))
    print(f"{'ok  ' if diff == 0 else 'FAIL'} wide_deep trained, saved, imported: predictions differ by {diff}")
    return diff != 0


def main():
    nncc, models, h5dir, work = sys.argv[1:5]
    os.makedirs(work, exist_ok=True)
    bad = layout(nncc, h5dir, work) + roundtrip(nncc, models, work)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
