#!/usr/bin/python3
"""check_h5_layout.py NNCC_FILE KERAS_FILE — does a weights file nncc saved
look like what tf.keras 2.x model.save('x.h5') writes?

Both files are reduced to the same description: the attribute names of the
root and of model_weights with each one's kind (variable- or fixed-length
string, character set, scalar or array), the kind of layer_names and of
weight_names (non-empty and empty lists separately), the superblock version,
and for every listed weight whether it is a contiguous, uncompressed <f4
dataset at model_weights/<layer>/<weight name> with a name "<layer>/...:0".
Any difference is printed and the exit status is 1. Then the nncc file is
read the way Keras's load_weights_from_hdf5_group reads it (layer_names, the
layers whose weight_names is non-empty, np.asarray(group[name]) per name), so
a file Keras would choke on fails here too. training_config and
optimizer_weights are ignored: nncc writes neither. Needs h5py and numpy
(Debian's /usr/bin/python3).
"""
import re
import sys

import h5py
import numpy as np


def attr_kind(obj, name):
    """(kind, charset, 'scalar' | 'array') of one attribute."""
    aid = obj.attrs.get_id(name)
    t = aid.get_type()
    shape = "scalar" if aid.shape == () else "array"
    if isinstance(t, h5py.h5t.TypeStringID):
        kind = "vlen-str" if t.is_variable_str() else "fixed-str"
        cset = "utf8" if t.get_cset() == h5py.h5t.CSET_UTF8 else "ascii"
        if kind == "fixed-str":
            kind += "-nullpad" if t.get_strpad() == h5py.h5t.STR_NULLPAD else "-other-pad"
        return (kind, cset, shape)
    return (aid.dtype.str, "-", shape)


def decode_names(obj, name):
    """Keras load_attributes_from_hdf5_group: the plain attribute or its chunks."""
    if name in obj.attrs:
        return [n.decode("utf8") if hasattr(n, "decode") else n for n in obj.attrs[name]]
    data, chunk = [], 0
    while f"{name}{chunk}" in obj.attrs:
        data.extend(n.decode("utf8") if hasattr(n, "decode") else n for n in obj.attrs[f"{name}{chunk}"])
        chunk += 1
    return data


def describe(path):
    """The layout description of one file, and the problems found in it."""
    problems = []
    d = {}
    with h5py.File(path, "r") as f:
        d["superblock"] = f.id.get_create_plist().get_version()[0]
        d["root attrs"] = {k: attr_kind(f, k) for k in f.attrs if k != "training_config"}
        if "model_weights" not in f:
            return d, [f"{path}: no model_weights group"]
        mw = f["model_weights"]
        d["model_weights attrs"] = {k: attr_kind(mw, k) for k in mw.attrs}
        layers = decode_names(mw, "layer_names")
        nonempty, empty = set(), set()
        for layer in layers:
            if layer not in mw or not isinstance(mw[layer], h5py.Group):
                problems.append(f"{path}: layer '{layer}' in layer_names has no group")
                continue
            g = mw[layer]
            if "weight_names" not in g.attrs:
                problems.append(f"{path}: layer '{layer}' has no weight_names")
                continue
            names = decode_names(g, "weight_names")
            kind = attr_kind(g, "weight_names")
            (nonempty if names else empty).add(kind + ((g.attrs["weight_names"].shape,) if not names else ()))
            for name in names:
                where = f"model_weights/{layer}/{name}"
                if not re.fullmatch(re.escape(layer) + r"/.+:0", name):
                    problems.append(f"{path}: weight name '{name}' is not '{layer}/...:0'")
                if name not in g or not isinstance(g[name], h5py.Dataset):
                    problems.append(f"{path}: no dataset at {where}")
                    continue
                ds = g[name]
                layout = ds.id.get_create_plist().get_layout()
                if ds.dtype.str != "<f4" or layout != h5py.h5d.CONTIGUOUS or ds.compression:
                    problems.append(f"{path}: {where} is {ds.dtype.str}, layout {layout}, "
                                    f"compression {ds.compression}; want contiguous uncompressed <f4")
        d["layer_names"] = attr_kind(mw, "layer_names") if "layer_names" in mw.attrs else None
        d["weight_names (non-empty)"] = sorted(nonempty)
        d["weight_names (empty)"] = sorted(empty)
    return d, problems


def keras_read(path):
    """What Keras's load_weights_from_hdf5_group would get: [(layer, [arrays])]."""
    with h5py.File(path, "r") as f:
        g = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
        version = g.attrs["keras_version"]
        version = version.decode("utf8") if hasattr(version, "decode") else version
        if version == "1":
            raise ValueError("keras_version '1' would make Keras convert the weights")
        out = []
        for name in decode_names(g, "layer_names"):
            weight_names = decode_names(g[name], "weight_names")
            if weight_names:
                out.append((name, [np.asarray(g[name][w]) for w in weight_names]))
        return out


def main():
    if len(sys.argv) != 3:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    ours_path, ref_path = sys.argv[1], sys.argv[2]
    ours, problems = describe(ours_path)
    ref, ref_problems = describe(ref_path)
    problems += ref_problems
    for key in ref:
        a, b = ours.get(key), ref[key]
        if key == "weight_names (empty)" and not (a and b):
            continue                     # one of the files has no weightless layer
        if a != b:
            problems.append(f"{key}: nncc {a} != keras {b}")
        else:
            print(f"same {key}: {b}")
    try:
        layers = keras_read(ours_path)
        print(f"Keras-style read of {ours_path}: " +
              ", ".join(f"{n} {[list(a.shape) for a in arrays]}" for n, arrays in layers))
        if not layers:
            problems.append("no layer with weights")
    except Exception as e:               # any failure is what Keras would hit too
        problems.append(f"Keras-style read failed: {e!r}")
    for p in problems:
        print("DIFF " + p)
    print(f"{0 if problems else 1} passed, {1 if problems else 0} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
