#!/usr/bin/python3
"""run_ops.py NNCC WORKDIR [--only REGEX] [--perturb NAME] — per-op tests:
forward against a naive reference, backward against finite differences.

Run with Debian's python3 (numpy, h5py, PyYAML). For every model in
models/*.yaml (one tiny model per op or option) it

  1. writes random weights in the Keras HDF5 layout (model_weights/,
     layer_names, weight_names, <layer>/<layer>/kernel:0; weightless layers
     listed with an empty weight_names, as Keras writes them), N random
     input samples (.npy float32) and targets that fit the loss (int32
     labels for sparse cross-entropy, one-hot for categorical, {0,1} for
     binary, normal floats for mse/mae);
  2. `nncc predict` and compares every output with a float64 numpy forward
     pass written from the Keras formulas below: |nncc - ref| / max(1,
     |ref|) <= 1e-5;
  3. `nncc evaluate` and compares the loss and each metric with the numpy
     value, within half a unit of the last printed digit plus 1e-5
     relative (nncc prints Keras's 4 significant decimals);
  4. `nncc train` for one SGD step (learning rate 1, the whole batch, no
     shuffle) on a copy of the model with a fit section: the weights it
     saves give the gradient w0 - w1, compared with central differences
     of the float64 reference loss, |nncc - fd| / max(0.01, |fd|) <= 2e-4;
     the epoch's printed loss is the reference loss at w0. (Skipped for
     models with several inputs or outputs, which npy fit data cannot
     describe, and for Dropout, whose training mask has no reference.)
  5. `nncc check`: nncc's own finite-difference check of the generated
     gradient code at the initializers' weights (exit status 0, "ok").

N = 40 is more than the default compiled batch (32), so predict and
evaluate also run over two chunks. Each model gets one --out folder (and
one for its training copy), so repeated runs skip the C build.

The reference (tf.keras 2.x, shared/spec/keras-numerics.md):
  Dense        y = act(x @ W + b) on the last axis, W [in, units]
  Flatten, Reshape (one -1), Activation; Dropout = identity at inference
  linear x; relu max(x, 0); elu x > 0 ? x : alpha (exp(x) - 1), alpha 1;
  selu scale * elu(x, alpha), alpha 1.6732632423543772848170429916717,
       scale 1.0507009873554804934193349852946;
  sigmoid 1 / (1 + exp(-x)); hard_sigmoid clip(0.2 x + 0.5, 0, 1);
  tanh; softmax exp(x - max) / sum over the last axis; softplus
  log(exp(x) + 1); softsign x / (1 + |x|); swish x sigmoid(x); gelu (exact)
  0.5 x (1 + erf(x / sqrt 2)); exponential exp(x); leaky_relu
  x > 0 ? x : alpha x, alpha 0.3.
  Losses, per position then averaged over the batch and every other axis
  (eps = 1e-7, clip = clip to [eps, 1 - eps] with the bounds rounded to
  float32 as Keras's tensors are: 1 - eps is 1 - 2^-23, so a clipped
  1 - c + eps is 2.19e-7, not 2e-7):
    from logits z (from_logits: true, or the output is a Softmax / Sigmoid
    op, which Keras replaces by its input):
      sparse cce  logsumexp(z) - z[label];  cce  sum_j t_j (logsumexp(z) - z_j)
      bce         mean_j max(z, 0) - z t + log(1 + exp(-|z|))
    from probabilities p:
      sparse cce  c = clip(p); log(sum_j c_j) - log c[label]   (log c as logits)
      cce         c = clip(p / sum_j p_j); -sum_j t_j log c_j
      bce         c = clip(p); mean_j -(t log(c + eps) + (1 - t) log(1 - c + eps))
    mse mean_j (p - t)^2; mae mean_j |p - t|
  Total loss: sum over outputs of loss_weight * loss, plus every penalty
  l1 sum|w| + l2 sum w^2.
  Metrics, means over all samples: sparse_categorical_accuracy argmax(p) ==
  label; categorical_accuracy argmax(p) == argmax(t); binary_accuracy
  t == (p > 0.5); mse, mae as above. "accuracy" is resolved as tf.keras
  2.2+ does, from the shapes: output last axis 1 -> binary, sparse labels
  -> sparse_categorical, else categorical.

One line per check, "PASS"/"FAIL", model, check, max difference; then
"N passed, N failed"; the exit status is 1 when anything failed.

--only REGEX runs the models whose name matches. --perturb NAME breaks one
reference formula on purpose (gelu: the tanh approximation; selu: alpha
1.67; l2: penalty halved; bce_eps: no epsilon inside the logs;
from_logits: cross-entropy from clipped probabilities) to show that the
comparison catches it.
"""

import argparse
import glob
import math
import os
import re
import subprocess
import sys
import time

import h5py
import numpy as np
import yaml
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
N = 40                     # samples; > the default max batch of 32
PREDICT_TOL = 1e-5         # |nncc - ref| / max(1, |ref|)
EVAL_REL_TOL = 1e-5        # on top of the printed rounding
GRAD_TOL = 2e-4            # train step: |nncc - fd| / max(GRAD_FLOOR, |fd|)
GRAD_FLOOR = 1e-2
EPS = float(np.float32(1e-7))                        # keras.backend.epsilon() as a float32 tensor
CLIP_HI = float(np.float32(1.0) - np.float32(EPS))   # Keras's 1 - eps, rounded to float32: 1 - 2^-23
PERTURB = None             # set from --perturb

# ---- the model file (the subset these models use) -------------------------

LAYER_STEMS = {"Dense": "dense", "Flatten": "flatten", "Reshape": "reshape",
               "Activation": "activation", "Dropout": "dropout"}


def one_key(item):
    if isinstance(item, str):
        return item, {}
    (key, val), = item.items()
    return key, (val if val is not None else {})


def as_list(v):
    return v if isinstance(v, list) else [v]


def read_model(path):
    with open(path) as f:
        doc = yaml.safe_load(f)
    inputs = [{"name": i["name"], "shape": [int(d) for d in i["shape"]]} for i in doc["inputs"]]
    layers, counts, previous = [], {}, inputs[0]["name"]
    functional = len(inputs) > 1
    for item in doc["layers"]:
        cls, cfg = one_key(item)
        if cls not in LAYER_STEMS:
            sys.exit(f"run_ops: {path}: layer {cls} has no reference here")
        name = cfg.get("name")
        if name is None:
            stem = LAYER_STEMS[cls]
            k = counts.get(stem, 0)
            counts[stem] = k + 1
            name = stem if k == 0 else f"{stem}_{k}"
        srcs = as_list(cfg.get("inputs", previous))
        functional |= "inputs" in cfg
        layers.append({"class": cls, "name": name, "cfg": cfg, "inputs": srcs})
        previous = name
    outputs = as_list(doc.get("outputs", layers[-1]["name"]))
    comp = doc["compile"]
    loss = comp["loss"]
    if isinstance(loss, dict) and set(loss) <= set(outputs):
        losses = [loss[o] for o in outputs]
    else:
        losses = [loss] * len(outputs)
    lw = comp.get("loss_weights") or {}
    weights = [float(lw[o]) if isinstance(lw, dict) and o in lw else
               float(lw[i]) if isinstance(lw, list) else 1.0 for i, o in enumerate(outputs)]
    metrics = comp.get("metrics") or []
    if isinstance(metrics, dict):
        per_output = [as_list(metrics.get(o, [])) for o in outputs]
    else:
        per_output = [list(metrics) for _ in outputs]
    return {"name": doc["name"], "inputs": inputs, "layers": layers, "outputs": outputs,
            "losses": [parse_loss(l) for l in losses], "loss_weights": weights,
            "metrics": per_output, "functional": functional}


LOSS_NAMES = {
    "sparse_categorical_crossentropy": "scce", "SparseCategoricalCrossentropy": "scce",
    "categorical_crossentropy": "cce", "CategoricalCrossentropy": "cce",
    "binary_crossentropy": "bce", "BinaryCrossentropy": "bce",
    "mse": "mse", "mean_squared_error": "mse", "MeanSquaredError": "mse",
    "mae": "mae", "mean_absolute_error": "mae", "MeanAbsoluteError": "mae",
}


def parse_loss(spec):
    name, args = one_key(spec)
    return {"kind": LOSS_NAMES[name], "from_logits": bool(args.get("from_logits", False))}


# ---- reference forward pass (float64) -------------------------------------

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def elu(x, alpha):
    return np.where(x > 0, x, alpha * (np.exp(np.minimum(x, 0)) - 1.0))


def gelu(x):
    if PERTURB == "gelu":      # the tanh approximation, off by up to ~5e-4
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def selu(x):
    alpha = 1.67 if PERTURB == "selu" else SELU_ALPHA
    return SELU_SCALE * elu(x, alpha)


def activation(spec):
    """(name, f) for an activation spec: a name or {name: {alpha: ..}}."""
    name, args = one_key(spec if spec is not None else "linear")
    alpha = args.get("alpha")
    table = {
        "linear": lambda x: x,
        "relu": lambda x: np.maximum(x, 0.0),
        "elu": lambda x: elu(x, 1.0 if alpha is None else alpha),
        "selu": selu,
        "sigmoid": sigmoid,
        "hard_sigmoid": lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0),
        "tanh": np.tanh,
        "softmax": softmax,
        "softplus": lambda x: np.log(np.exp(x) + 1.0),
        "softsign": lambda x: x / (1.0 + np.abs(x)),
        "swish": lambda x: x * sigmoid(x),
        "gelu": gelu,
        "exponential": np.exp,
        "leaky_relu": lambda x: np.where(x > 0, x, (0.3 if alpha is None else alpha) * x),
    }
    return name, table[name]


def forward(model, weights, xs):
    """Every layer's output, and for layers ending in an activation the
    activation name and its input: {name: (y, act, z)}."""
    vals = {i["name"]: (x.astype(np.float64), None, None) for i, x in zip(model["inputs"], xs)}
    for layer in model["layers"]:
        (x, _, _), = [vals[s] for s in layer["inputs"]]
        cls, cfg = layer["class"], layer["cfg"]
        act, z = None, None
        if cls == "Dense":
            w = weights[layer["name"]]
            z = np.einsum("...i,ij->...j", x, w["kernel"])
            if "bias" in w:
                z = z + w["bias"]
            act, f = activation(cfg.get("activation", "linear"))
            y = f(z)
        elif cls == "Activation":
            z = x
            act, f = activation(cfg["activation"])
            y = f(z)
        elif cls == "Flatten":
            y = x.reshape(x.shape[0], -1)
        elif cls == "Reshape":
            y = x.reshape((x.shape[0],) + tuple(cfg["target_shape"]))
        elif cls == "Dropout":
            y = x
        vals[layer["name"]] = (y, act, z)
    return vals


def per_position_loss(loss, y, act, z, t):
    """The Keras loss of one output before the batch mean: shape y.shape[:-1]."""
    kind, logits = loss["kind"], loss["from_logits"]
    if PERTURB == "from_logits":
        logits = False
    if not logits and ((kind in ("scce", "cce") and act == "softmax") or (kind == "bce" and act == "sigmoid")):
        y, logits = z, True        # Keras takes the Softmax/Sigmoid op's input
    if kind == "scce":
        if not logits:
            y = np.log(np.clip(y, EPS, CLIP_HI))
        lse = np.log(np.exp(y - y.max(-1, keepdims=True)).sum(-1)) + y.max(-1)
        return lse - np.take_along_axis(y, t[..., None].astype(np.int64), -1)[..., 0]
    if kind == "cce":
        if logits:
            lse = np.log(np.exp(y - y.max(-1, keepdims=True)).sum(-1, keepdims=True)) + y.max(-1, keepdims=True)
            return (t * (lse - y)).sum(-1)
        c = np.clip(y / y.sum(-1, keepdims=True), EPS, CLIP_HI)
        return -(t * np.log(c)).sum(-1)
    if kind == "bce":
        if logits:
            return (np.maximum(y, 0) - y * t + np.log1p(np.exp(-np.abs(y)))).mean(-1)
        c = np.clip(y, EPS, CLIP_HI)
        e = 0.0 if PERTURB == "bce_eps" else EPS
        return -(t * np.log(c + e) + (1 - t) * np.log(1 - c + e)).mean(-1)
    if kind == "mse":
        return ((y - t) ** 2).mean(-1)
    if kind == "mae":
        return np.abs(y - t).mean(-1)
    raise AssertionError(kind)


def resolve_metric(name, y, t):
    if name in ("accuracy", "acc"):
        if y.shape[-1] == 1:
            return "binary_accuracy"
        if t.ndim < y.ndim:
            return "sparse_categorical_accuracy"
        return "categorical_accuracy"
    return {"mean_squared_error": "mse", "mean_absolute_error": "mae"}.get(name, name)


class Ambiguous(Exception):
    pass


def metric_value(kind, y, t):
    """(value, smallest decision margin) of a metric over all samples."""
    if kind == "sparse_categorical_accuracy":
        top = np.sort(y, -1)
        margin = (top[..., -1] - top[..., -2]).min()
        return (y.argmax(-1) == t).mean(), margin
    if kind == "categorical_accuracy":
        top = np.sort(y, -1)
        margin = (top[..., -1] - top[..., -2]).min()
        return (y.argmax(-1) == t.argmax(-1)).mean(), margin
    if kind == "binary_accuracy":
        return (t == (y > 0.5)).mean(), np.abs(y - 0.5).min()
    if kind == "mse":
        return ((y - t) ** 2).mean(), math.inf
    if kind == "mae":
        return np.abs(y - t).mean(), math.inf
    raise AssertionError(kind)


def penalties(model, weights):
    total = 0.0
    for layer in model["layers"]:
        for key, wname in (("kernel_regularizer", "kernel"), ("bias_regularizer", "bias")):
            spec = layer["cfg"].get(key)
            if spec is None:
                continue
            name, arg = one_key(spec)
            if name == "l1_l2":
                l1, l2 = arg.get("l1", 0.0), arg.get("l2", 0.0)
            else:
                l1 = float(arg if not isinstance(arg, dict) else arg["l1"]) if name == "l1" else 0.0
                l2 = float(arg if not isinstance(arg, dict) else arg["l2"]) if name == "l2" else 0.0
            if PERTURB == "l2":
                l2 /= 2
            w = weights[layer["name"]][wname]
            total += l1 * np.abs(w).sum() + l2 * (w ** 2).sum()
    return total


def losses(model, weights, outs, ys):
    """{"loss": total, "<output>_loss": ... when there are several outputs}."""
    multi = len(outs) > 1
    scores = {"loss": penalties(model, weights)}
    for o, (y, act, z), loss, lw, t in zip(model["outputs"], outs, model["losses"], model["loss_weights"], ys):
        value = per_position_loss(loss, y, act, z, t).mean()
        scores["loss"] += lw * value
        if multi:
            scores[f"{o}_loss"] = value
    return scores


def loss_gradient(model, weights, xs, ys, h=1e-6):
    """d total loss / d every weight by central differences of the float64
    reference: {layer: {kernel, bias}}."""
    def total():
        vals = forward(model, weights, xs)
        return losses(model, weights, [vals[o] for o in model["outputs"]], ys)["loss"]
    grads = {}
    for layer, ws in weights.items():
        for key, w in ws.items():
            g = np.zeros_like(w)
            for i in np.ndindex(w.shape):
                w0 = w[i]
                w[i] = w0 + h
                up = total()
                w[i] = w0 - h
                down = total()
                w[i] = w0
                g[i] = (up - down) / (2 * h)
            grads.setdefault(layer, {})[key] = g
    return grads


def reference(model, weights, xs, ys):
    """(outputs, {name: value} for loss, per-output losses and metrics)."""
    vals = forward(model, weights, xs)
    outs = [vals[o] for o in model["outputs"]]
    multi = len(outs) > 1
    scores = losses(model, weights, outs, ys)
    for o, (y, _, _), names, t in zip(model["outputs"], outs, model["metrics"], ys):
        for name in names:
            value, margin = metric_value(resolve_metric(name, y, t), y, t)
            if margin < 1e-4:
                raise Ambiguous(f"{o} {name}: a sample is {margin:.2g} from the decision "
                                "boundary; change the data seed")
            scores[f"{o}_{name}" if multi else name] = value
    return [y for y, _, _ in outs], scores


# ---- test data -------------------------------------------------------------

def make_weights(model, rng):
    """Keras-layout weights {layer: {kernel, bias}} as float32; kernels
    U(±sqrt(3/fan_in)) * 1.2 so pre-activations have a std near 1.2
    whatever the fan-in, biases U(-0.5, 0.5)."""
    shapes = {i["name"]: tuple(i["shape"]) for i in model["inputs"]}
    weights = {}
    for layer in model["layers"]:
        (shape,), cfg = [shapes[s] for s in layer["inputs"]], layer["cfg"]
        if layer["class"] == "Dense":
            fan_in, units = shape[-1], int(cfg["units"])
            limit = 1.2 * math.sqrt(3.0 / fan_in)
            w = {"kernel": rng.uniform(-limit, limit, (fan_in, units)).astype(np.float32)}
            if cfg.get("use_bias", True):
                w["bias"] = rng.uniform(-0.5, 0.5, (units,)).astype(np.float32)
            weights[layer["name"]] = w
            shape = shape[:-1] + (units,)
        elif layer["class"] == "Flatten":
            shape = (int(np.prod(shape)),)
        elif layer["class"] == "Reshape":
            shape = tuple(np.empty(shape).reshape(cfg["target_shape"]).shape)
        shapes[layer["name"]] = shape
    return weights, shapes


def make_targets(loss, shape, rng):
    if loss["kind"] == "scce":
        return rng.randint(0, shape[-1], (N,) + shape[:-1]).astype(np.int32)
    if loss["kind"] == "cce":
        return np.eye(shape[-1], dtype=np.float32)[rng.randint(0, shape[-1], (N,) + shape[:-1])]
    if loss["kind"] == "bce":
        return rng.randint(0, 2, (N,) + shape).astype(np.float32)
    return rng.standard_normal((N,) + shape).astype(np.float32)


def write_weights(path, model, weights):
    """The Keras layout: model_weights/ with layer_names (input layers too
    for a functional model, as Keras lists them), each layer's group with
    weight_names (an empty float array for a weightless layer, as Keras
    writes it) and datasets <layer>/<layer>/<weight>:0."""
    names = ([i["name"] for i in model["inputs"]] if model["functional"] else []) + \
            [layer["name"] for layer in model["layers"]]
    with h5py.File(path, "w") as f:
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = np.array([n.encode() for n in names])
        g.attrs["backend"] = b"tensorflow"
        g.attrs["keras_version"] = b"2.4.0"
        for name in names:
            lg = g.create_group(name)
            ws = weights.get(name, {})
            wnames = [f"{name}/{k}:0" for k in ("kernel", "bias") if k in ws]
            lg.attrs["weight_names"] = np.array([n.encode() for n in wnames]) if wnames else np.array([])
            for k, wname in zip(("kernel", "bias"), wnames):
                lg.create_dataset(wname, data=ws[k].astype("<f4"))


# ---- running nncc ----------------------------------------------------------

class Report:
    def __init__(self):
        self.passed = self.failed = 0

    def line(self, ok, model, check, detail):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print(f"{'PASS' if ok else 'FAIL'}  {model:24s} {check:22s} {detail}", flush=True)


def run(cmd):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return 127, "", str(e)
    return p.returncode, p.stdout, p.stderr


def indent(text):
    return "".join("      | " + l + "\n" for l in text.strip().splitlines()[-8:])


def printed_quantum(text):
    """Half a unit of the last printed digit of a number like 0.1234 or 1.2340e-04."""
    m = re.fullmatch(r"-?\d+\.(\d+)(?:e([-+]\d+))?", text)
    decimals = len(m.group(1)) if m else 4
    exponent = int(m.group(2)) if m and m.group(2) else 0
    return 0.5 * 10.0 ** (exponent - decimals)


def read_weights(path):
    """{layer: {kernel, bias}} from a Keras-layout weights file."""
    out = {}
    with h5py.File(path, "r") as f:
        g = f["model_weights"]
        for layer in g.attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else layer
            for wname in g[layer].attrs["weight_names"]:
                wname = wname.decode() if isinstance(wname, bytes) else wname
                key = wname.rsplit("/", 1)[-1].split(":")[0]
                out.setdefault(layer, {})[key] = g[layer][wname][()]
    return out


def train_step(nncc, path, model, weights, w64, xs, ys, xpath, ypath, wpath, ref_scores, out_dir, report):
    name = model["name"]
    train_dir = os.path.join(out_dir, "train")
    os.makedirs(train_dir, exist_ok=True)
    with open(path) as f:
        text = f.read()
    text, count = re.subn(r"^(\s*)optimizer:.*$", r"\1optimizer: {SGD: {learning_rate: 1.0}}", text, flags=re.M)
    assert count == 1, f"{path}: one 'optimizer:' line expected"
    text += ("fit:\n"
             f"  data: {{train: {{format: npy, x: {xpath}, y: {ypath}}}}}\n"
             f"  epochs: 1\n  batch_size: {N}\n  shuffle: false\n")
    train_yaml = os.path.join(train_dir, name + ".yaml")
    with open(train_yaml, "w") as f:
        f.write(text)
    result = os.path.join(train_dir, name + ".h5")
    if os.path.exists(result):
        os.remove(result)
    rc, out, err = run([nncc, "train", train_yaml, "--weights", wpath, "--out", train_dir])
    if rc != 0 or not os.path.exists(result):
        report.line(False, name, "train step", f"exit status {rc}\n" + indent(err + out))
        return
    m = re.search(r"\bloss: (\S+)", out)
    if not m:
        report.line(False, name, "train loss", "no 'loss:' in the output\n" + indent(out))
    else:
        got, ref = float(m.group(1)), ref_scores["loss"]
        tol = printed_quantum(m.group(1)) + EVAL_REL_TOL * max(1.0, abs(ref))
        report.line(abs(got - ref) <= tol, name, "train loss",
                    f"{m.group(1)} vs {ref:.6f}: |diff| {abs(got - ref):.2e} (tol {tol:.1e})")
    w1 = read_weights(result)
    ref_grads = loss_gradient(model, w64, xs, ys)
    worst, worst_at = 0.0, ""
    for layer, ws in weights.items():
        for key, w0 in ws.items():
            if layer not in w1 or key not in w1[layer] or w1[layer][key].shape != w0.shape:
                report.line(False, name, "train gradient", f"{layer}/{key} missing in {result}")
                return
            got = w0.astype(np.float64) - w1[layer][key].astype(np.float64)
            ref = ref_grads[layer][key]
            err = (np.abs(got - ref) / np.maximum(GRAD_FLOOR, np.abs(ref))).max()
            if err >= worst:
                worst, worst_at = err, f"{layer}/{key}"
    report.line(worst <= GRAD_TOL, name, "train gradient",
                f"max |nncc - fd| / max({GRAD_FLOOR:g}, |fd|) {worst:.2e} at {worst_at} (tol {GRAD_TOL:g})")


def test_model(nncc, path, work, report, seed):
    model = read_model(path)
    name = model["name"]
    rng = np.random.RandomState(seed)
    out_dir = os.path.join(work, name)
    os.makedirs(out_dir, exist_ok=True)
    weights, shapes = make_weights(model, rng)
    xs = [rng.standard_normal((N,) + tuple(i["shape"])).astype(np.float32) for i in model["inputs"]]
    ys = [make_targets(loss, shapes[o], rng) for o, loss in zip(model["outputs"], model["losses"])]
    w64 = {k: {n: a.astype(np.float64) for n, a in v.items()} for k, v in weights.items()}
    try:
        ref_outs, ref_scores = reference(model, w64, xs, ys)
    except Ambiguous as e:
        report.line(False, name, "test data", str(e))
        return
    wpath = os.path.join(out_dir, "weights.h5")
    write_weights(wpath, model, weights)
    xpaths, ypaths, opaths = [], [], []
    for i, x in enumerate(xs):
        xpaths.append(os.path.join(out_dir, f"x{i}.npy"))
        np.save(xpaths[-1], x)
    for j, y in enumerate(ys):
        ypaths.append(os.path.join(out_dir, f"y{j}.npy"))
        np.save(ypaths[-1], y)
        opaths.append(os.path.join(out_dir, f"out{j}.npy"))
        if os.path.exists(opaths[-1]):
            os.remove(opaths[-1])

    # predict
    cmd = [nncc, "predict", path, "--weights", wpath, "--out", out_dir]
    for p in xpaths:
        cmd += ["--input", p]
    for p in opaths:
        cmd += ["--output", p]
    rc, out, err = run(cmd)
    if rc != 0:
        report.line(False, name, "predict", f"exit status {rc}\n" + indent(err + out))
    else:
        for o, p, ref in zip(model["outputs"], opaths, ref_outs):
            got = np.load(p)
            check = "predict" if len(opaths) == 1 else f"predict {o}"
            if got.size != ref.size:
                report.line(False, name, check, f"shape {got.shape}, expected {ref.shape}")
                continue
            note = "" if got.shape == ref.shape else f" (written as {got.shape}, Keras {ref.shape})"
            diff = np.abs(got.reshape(ref.shape).astype(np.float64) - ref)
            rel = (diff / np.maximum(1.0, np.abs(ref))).max()
            report.line(rel <= PREDICT_TOL and np.isfinite(rel), name, check,
                        f"max |diff| {diff.max():.2e}, rel {rel:.2e} (tol {PREDICT_TOL:g}){note}")

    # evaluate
    cmd = [nncc, "evaluate", path, "--weights", wpath, "--out", out_dir]
    for p in xpaths:
        cmd += ["--data", p]
    for p in ypaths:
        cmd += ["--targets", p]
    rc, out, err = run(cmd)
    if rc != 0:
        report.line(False, name, "evaluate", f"exit status {rc}\n" + indent(err + out))
    else:
        printed = dict(re.findall(r"^(\w+): (\S+)$", out, re.M))
        for key, ref in ref_scores.items():
            check = "evaluate " + key
            if key not in printed:
                report.line(False, name, check, f"no '{key}:' line in the output (reference {ref:.6g})\n"
                            + indent(out))
                continue
            got = float(printed[key])
            tol = printed_quantum(printed[key]) + EVAL_REL_TOL * max(1.0, abs(ref))
            report.line(abs(got - ref) <= tol, name, check,
                        f"{printed[key]} vs {ref:.6f}: |diff| {abs(got - ref):.2e} (tol {tol:.1e})")
        extra = sorted(set(printed) - set(ref_scores))
        if extra:
            report.line(False, name, "evaluate names", f"unexpected lines {extra}\n" + indent(out))

    # one SGD step with learning rate 1 through `nncc train`: w0 - w1 is the
    # gradient of the batch loss, compared with central differences of the
    # reference loss. The npy fit data holds one input and one target
    # array; Dropout's training mask has no reference.
    if len(xs) == 1 and len(ys) == 1 and not any(l["class"] == "Dropout" for l in model["layers"]):
        train_step(nncc, path, model, weights, w64, xs, ys, xpaths[0], ypaths[0], wpath, ref_scores,
                   out_dir, report)

    # gradient check
    rc, out, err = run([nncc, "check", path, "--out", out_dir])
    m = re.search(r"max rel error (\S+)", out)
    detail = f"max rel error {m.group(1)}" if m else "no result line"
    report.line(rc == 0 and m is not None and "ok" in out, name, "check (finite diff)",
                detail + ("" if rc == 0 else f", exit status {rc}\n" + indent(err + out)))


def main():
    global PERTURB
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("nncc")
    ap.add_argument("work")
    ap.add_argument("--only", default=None, help="regex on the model names")
    ap.add_argument("--perturb", default=None,
                    choices=["gelu", "selu", "l2", "bce_eps", "from_logits"],
                    help="break one reference formula (the run must then fail)")
    args = ap.parse_args()
    PERTURB = args.perturb
    nncc = os.path.abspath(args.nncc)
    os.makedirs(args.work, exist_ok=True)
    report = Report()
    start = time.monotonic()
    models = sorted(glob.glob(os.path.join(HERE, "models", "*.yaml")))
    for path in models:
        stem = os.path.splitext(os.path.basename(path))[0]
        if args.only and not re.search(args.only, stem):
            continue
        test_model(nncc, path, os.path.abspath(args.work), report, seed=zlib.crc32(stem.encode()))
    print(f"{report.passed} passed, {report.failed} failed ({time.monotonic() - start:.1f} s)")
    return 1 if report.failed or report.passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
