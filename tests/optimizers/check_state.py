#!/usr/bin/python3
"""The optimizer state nncc saved after 5 steps, against tf.keras <= 2.10.

    check_state.py SAVED.h5 REF_DIR

SAVED.h5 is what test_optimizer.c saved after step 5 (P_save); REF_DIR is
refs/<config> from make_refs.py: state5.json (the names tf.keras <= 2.10
gives the optimizer weights, in its order, the iteration count and any
scalar state such as Nadam's momentum_cache) and state5.npy (the slot
values, one row per slot name, the model's weights flattened in order).

Checked: optimizer_weights/weight_names lists exactly Keras's names in
Keras's order (so that Keras's load_model can set_weights them);
"<Optimizer>/iter:0" is an integer scalar equal to 5; each slot dataset is
float32 with its weight's Keras shape and holds the reference values to
1e-6 relative to the tensor's largest value, as the weights do (the
reference uses Keras's float32 hyperparameter values, so Keras's own
state matches it to float32 rounding); scalar state such as Nadam's
momentum_cache likewise.
"""

import json
import os
import sys

import h5py
import numpy as np

SHAPES = [("dense", "kernel", (4, 3)), ("dense", "bias", (3,)), ("dense_1", "kernel", (3, 2)),
          ("dense_1", "bias", (2,))]
TOL = 1e-6


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: check_state.py SAVED.h5 REF_DIR")
    saved, ref_dir = sys.argv[1:]
    with open(os.path.join(ref_dir, "state5.json")) as f:
        info = json.load(f)
    slots_path = os.path.join(ref_dir, "state5.npy")
    slots = np.load(slots_path) if os.path.exists(slots_path) else np.zeros((0, 23))
    failures = 0

    def report(ok, what):
        nonlocal failures
        print(f"{what:70s} {'ok' if ok else 'FAILED'}")
        failures += not ok

    with h5py.File(saved, "r") as f:
        if "optimizer_weights" not in f:
            report(False, "optimizer_weights group present")
            return 1
        g = f["optimizer_weights"]
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs["weight_names"]]
        want = info["names"]
        same = names == want
        report(same, f"weight_names: {len(names)} names in Keras's order")
        if not same:
            print("  nncc wrote:  ", names)
            print("  Keras writes:", want)
        optimizer = want[0].split("/")[0]
        it = g.get(f"{optimizer}/iter:0")
        report(it is not None and it.shape == () and it.dtype.kind in "iu" and int(it[()]) == info["iterations"],
               f"{optimizer}/iter:0 = {info['iterations']} (integer scalar)"
               + ("" if it is None else f", got {it[()]!r} {it.dtype}"))
        for key, value in info["extra"].items():
            d = g.get(f"{optimizer}/{key}:0")
            got = None if d is None else float(d[()])
            report(got is not None and abs(got - value) <= 1e-6 * abs(value),
                   f"{optimizer}/{key}:0 = {value:.9g}" + ("" if got is None else f", got {got:.9g}")
                   + ("" if d is not None else ", missing"))
        slot_names = []
        for n in want[1 + len(info["extra"]):]:
            s = n.rsplit("/", 1)[1][:-2]
            if s not in slot_names:
                slot_names.append(s)
        for k, s in enumerate(slot_names):
            offset = 0
            for layer, weight, shape in SHAPES:
                size = int(np.prod(shape))
                ref = slots[k, offset:offset + size].reshape(shape)
                offset += size
                name = f"{optimizer}/{layer}/{weight}/{s}:0"
                d = g.get(name)
                if d is None:
                    report(False, f"{name} present")
                    continue
                if d.shape != shape or d.dtype != np.float32:
                    report(False, f"{name}: shape {d.shape} {d.dtype}, Keras {shape} float32")
                    continue
                rel = np.abs(d[()] - ref).max() / np.abs(ref).max()
                report(rel <= TOL, f"{name} relative diff {rel:.1e} (tolerance {TOL:.0e})")
    print(f"{failures} checks failed")
    return failures != 0


if __name__ == "__main__":
    sys.exit(main())
