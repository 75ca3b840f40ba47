#!/usr/bin/python3
"""Golden reference tensors for nncc, computed with PyTorch (not with nncc).

Run (Debian's python3, which has torch, numpy, h5py and PyYAML):

    /usr/bin/python3 tests/golden/make_golden.py

from any folder. It reads the three model files beside it
(golden_mlp_{sgd,adam,mse}.yaml) and rewrites one folder per model
(sgd/, adam/, mse/). The output is deterministic: rerunning it gives
byte-identical files, so a diff after a rerun means the reference changed.

For each model, with a fixed numpy seed, it makes initial weights in Keras
layout (Dense kernel [in, out], bias [out]; kernels glorot_uniform, biases
U(-0.1, 0.1) rather than Keras's zeros so that the bias paths are tested), an
input batch x (8, 6) float32 and targets (int32 labels in [0, 3) for the
cross-entropy models, float32 (8, 3) for mse). Everything else is computed in
float64 with torch (gradients by autograd) and stored as float32:

    w0.h5        initial weights, laid out as tf.keras 2.4 model.save writes
                 (model_config, training_config, model_weights/...; no
                 optimizer_weights, as Keras writes none before training)
    x.npy        inputs (8, 6) float32
    y.npy        targets: (8,) int32 labels or (8, 3) float32
    out.npy      model outputs at w0 (softmax probabilities or linear) (8, 3)
    loss.npy     [3]: loss at w0 (what train step 1 reports), at w1 (what
                 train step 2 reports), at w2 (evaluate after step 2)
    metrics.npy  [3]: the compiled metric (accuracy / mae) at w0, w1, w2
    grads.npy    d loss / d w at w0, all weights flattened and concatenated
                 in Keras order (dense/kernel, dense/bias, dense_1/kernel,
                 ...), row-major
    w1.npy       all weights after one optimizer step (same flat order)
    w2.npy       all weights after a second step on the same batch

Keras semantics reproduced (shared/spec/keras-numerics.md): losses are means
over the batch; sparse categorical cross-entropy after a softmax is computed
from the logits; mse is the mean over features, then over the batch. The
optimizer updates are written out here (not torch.optim), as Keras defines
them:
    SGD        v = m*v - lr*g;  w += v            (plain: w -= lr*g)
    nesterov   v = m*v - lr*g;  w += m*v - lr*g
    Adam       m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;
               w -= lr*sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)
As self-checks, the script compares the autograd gradients with central
finite differences and the optimizer steps with torch.optim (whose SGD and
Adam are algebraically equal to Keras's once Adam's eps is rescaled per
step), and stops on any disagreement.
"""

import json
import os
import sys

import h5py
import numpy as np
import torch
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = 8
KERAS_VERSION = "2.4.0"

# (model file, output folder, numpy seed)
MODELS = [
    ("golden_mlp_sgd.yaml", "sgd", 1001),
    ("golden_mlp_adam.yaml", "adam", 1002),
    ("golden_mlp_mse.yaml", "mse", 1003),
]

torch.set_default_dtype(torch.float64)


# ---- model file ------------------------------------------------------------

def one_key(item, what):
    if isinstance(item, str):
        return item, {}
    if not isinstance(item, dict) or len(item) != 1:
        sys.exit(f"make_golden: {what} must be a name or a one-key map: {item!r}")
    (key, val), = item.items()
    return key, (val or {})


def read_model(path):
    """The subset of the model format these golden models use: one input,
    a chain of Dense layers, one loss, SGD or Adam, one metric."""
    with open(path) as f:
        doc = yaml.safe_load(f)
    if len(doc["inputs"]) != 1:
        sys.exit(f"{path}: exactly one input expected")
    inp = doc["inputs"][0]
    layers, counts = [], {}
    for item in doc["layers"]:
        cls, cfg = one_key(item, "layer")
        if cls != "Dense":
            sys.exit(f"{path}: only Dense layers are supported here, not {cls}")
        unknown = set(cfg) - {"units", "activation", "name"}
        if unknown:
            sys.exit(f"{path}: unsupported Dense arguments {sorted(unknown)}")
        n = counts.get("dense", 0)
        counts["dense"] = n + 1
        layers.append({
            "name": cfg.get("name", "dense" if n == 0 else f"dense_{n}"),
            "units": int(cfg["units"]),
            "activation": cfg.get("activation", "linear"),
        })
    comp = doc["compile"]
    opt_name, opt_args = one_key(comp["optimizer"], "optimizer")
    return {
        "name": doc["name"],
        "input": {"name": inp["name"], "shape": list(inp["shape"])},
        "layers": layers,
        "loss": comp["loss"],
        "optimizer": (opt_name, dict(opt_args)),
        "metrics": list(comp.get("metrics", [])),
    }


# ---- forward, loss, metrics (float64 torch) -------------------------------

ACTIVATIONS = {
    "linear": lambda z: z,
    "relu": torch.relu,
    "tanh": torch.tanh,
    "softmax": lambda z: torch.softmax(z, dim=-1),
}


def forward(model, weights, x):
    """Returns (output, pre-activation of the last layer)."""
    h = x
    for i, layer in enumerate(model["layers"]):
        z = h @ weights[2 * i] + weights[2 * i + 1]
        h = ACTIVATIONS[layer["activation"]](z)
    return h, z


def loss_of(model, weights, x, y):
    out, logits = forward(model, weights, x)
    loss = model["loss"]
    if loss == "sparse_categorical_crossentropy":
        if model["layers"][-1]["activation"] != "softmax":
            sys.exit("make_golden: cross-entropy expects a softmax output here")
        # Keras takes the softmax's logits: -log softmax(z)[y], batch mean.
        nll = torch.logsumexp(logits, dim=1) - logits.gather(1, y.long()[:, None])[:, 0]
        return nll.mean()
    if loss in ("mse", "mean_squared_error"):
        return ((out - y) ** 2).mean(dim=1).mean()
    sys.exit(f"make_golden: unsupported loss {loss}")


def metric_of(model, weights, x, y):
    out, _ = forward(model, weights, x)
    (name,) = model["metrics"]
    if name in ("accuracy", "sparse_categorical_accuracy"):
        return (out.argmax(dim=1) == y.long()).double().mean()
    if name == "mae":
        return (out - y).abs().mean(dim=1).mean()
    sys.exit(f"make_golden: unsupported metric {name}")


def gradients(model, weights, x, y):
    ws = [w.clone().requires_grad_(True) for w in weights]
    loss = loss_of(model, ws, x, y)
    return [g.detach() for g in torch.autograd.grad(loss, ws)]


# ---- Keras optimizers, written out -----------------------------------------

class KerasSGD:
    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        self.lr, self.m, self.nesterov = learning_rate, momentum, nesterov
        self.v = None

    def step(self, weights, grads):
        if self.m == 0.0:
            return [w - self.lr * g for w, g in zip(weights, grads)]
        if self.v is None:
            self.v = [torch.zeros_like(w) for w in weights]
        self.v = [self.m * v - self.lr * g for v, g in zip(self.v, grads)]
        if self.nesterov:
            return [w + self.m * v - self.lr * g
                    for w, v, g in zip(weights, self.v, grads)]
        return [w + v for w, v in zip(weights, self.v)]


class KerasAdam:
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False):
        if amsgrad:
            sys.exit("make_golden: amsgrad is not implemented")
        self.lr, self.b1, self.b2, self.eps = learning_rate, beta_1, beta_2, epsilon
        self.t, self.m, self.v = 0, None, None

    def step(self, weights, grads):
        if self.m is None:
            self.m = [torch.zeros_like(w) for w in weights]
            self.v = [torch.zeros_like(w) for w in weights]
        self.t += 1
        b1, b2 = self.b1, self.b2
        self.m = [b1 * m + (1 - b1) * g for m, g in zip(self.m, grads)]
        self.v = [b2 * v + (1 - b2) * g * g for v, g in zip(self.v, grads)]
        lr_t = self.lr * (1 - b2 ** self.t) ** 0.5 / (1 - b1 ** self.t)
        return [w - lr_t * m / (v.sqrt() + self.eps)
                for w, m, v in zip(weights, self.m, self.v)]


OPTIMIZERS = {"SGD": KerasSGD, "Adam": KerasAdam}


def keras_optimizer(spec):
    name, args = spec
    if name not in OPTIMIZERS:
        sys.exit(f"make_golden: unsupported optimizer {name}")
    return OPTIMIZERS[name](**args)


# ---- self-checks -----------------------------------------------------------

def check_gradients(model, weights, x, y, grads):
    """Central finite differences of the float64 loss, every weight."""
    h, worst = 1e-6, 0.0
    for i, w in enumerate(weights):
        flat = w.reshape(-1)
        for j in range(flat.numel()):
            plus = [t.clone() for t in weights]
            minus = [t.clone() for t in weights]
            plus[i].view(-1)[j] += h
            minus[i].view(-1)[j] -= h
            fd = (loss_of(model, plus, x, y) - loss_of(model, minus, x, y)) / (2 * h)
            an = grads[i].reshape(-1)[j]
            worst = max(worst, abs(float(fd - an)) / max(1e-3, abs(float(an))))
    if worst > 1e-6:
        sys.exit(f"make_golden: autograd vs finite differences: rel err {worst:.3g}")
    return worst


def check_with_torch_optim(model, w0, x, y, steps):
    """Replays the steps with torch.optim and compares. torch SGD keeps
    v' = -v/lr; torch Adam divides by sqrt(v_hat) + eps, which equals Keras's
    update when its eps is set to eps/sqrt(1 - b2^t) at step t."""
    name, args = model["optimizer"]
    params = [w.clone().requires_grad_(True) for w in w0]
    if name == "SGD":
        opt = torch.optim.SGD(params, lr=args.get("learning_rate", 0.01),
                              momentum=args.get("momentum", 0.0),
                              nesterov=args.get("nesterov", False))
    else:
        b1, b2 = args.get("beta_1", 0.9), args.get("beta_2", 0.999)
        eps = args.get("epsilon", 1e-7)
        opt = torch.optim.Adam(params, lr=args.get("learning_rate", 0.001), betas=(b1, b2))
    worst = 0.0
    for t, expected in enumerate(steps, start=1):
        if name == "Adam":
            opt.param_groups[0]["eps"] = eps / (1 - b2 ** t) ** 0.5
        opt.zero_grad()
        loss_of(model, params, x, y).backward()
        opt.step()
        for p, e in zip(params, expected):
            worst = max(worst, float((p.detach() - e).abs().max()))
    if worst > 1e-12:
        sys.exit(f"make_golden: Keras update vs torch.optim differ by {worst:.3g}")
    return worst


# ---- Keras HDF5 ------------------------------------------------------------

def f32(v):
    """A hyperparameter as tf.keras stores it in its configs (float32)."""
    return float(np.float32(v))


def keras_model_config(model):
    layers = [{"class_name": "InputLayer", "config": {
        "batch_input_shape": [None] + model["input"]["shape"], "dtype": "float32",
        "sparse": False, "ragged": False, "name": model["input"]["name"]}}]
    for layer in model["layers"]:
        layers.append({"class_name": "Dense", "config": {
            "name": layer["name"], "trainable": True, "dtype": "float32",
            "units": layer["units"], "activation": layer["activation"], "use_bias": True,
            "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
            "bias_initializer": {"class_name": "Zeros", "config": {}},
            "kernel_regularizer": None, "bias_regularizer": None,
            "activity_regularizer": None, "kernel_constraint": None,
            "bias_constraint": None}})
    return {"class_name": "Sequential", "config": {"name": model["name"], "layers": layers}}


def keras_training_config(model):
    name, args = model["optimizer"]
    if name == "SGD":
        cfg = {"name": "SGD", "learning_rate": f32(args.get("learning_rate", 0.01)),
               "decay": 0.0, "momentum": f32(args.get("momentum", 0.0)),
               "nesterov": bool(args.get("nesterov", False))}
    else:
        cfg = {"name": "Adam", "learning_rate": f32(args.get("learning_rate", 0.001)),
               "decay": 0.0, "beta_1": f32(args.get("beta_1", 0.9)),
               "beta_2": f32(args.get("beta_2", 0.999)),
               "epsilon": args.get("epsilon", 1e-7), "amsgrad": False}
    return {"loss": model["loss"], "metrics": model["metrics"], "weighted_metrics": None,
            "loss_weights": None, "sample_weight_mode": None,
            "optimizer_config": {"class_name": name, "config": cfg}}


def write_keras_h5(path, model, weights):
    """The file tf.keras 2.4 model.save writes for an untrained Sequential
    model: string attribute types as in shared/keras_h5/*_k2.4.0.h5 (root
    backend/keras_version vlen UTF-8, configs vlen ASCII, name lists fixed
    length), float32 datasets model_weights/<layer>/<layer>/<weight>:0."""
    utf8, ascii_ = h5py.string_dtype("utf-8"), h5py.string_dtype("ascii")
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs.create("keras_version", KERAS_VERSION, dtype=utf8)
        f.attrs.create("backend", "tensorflow", dtype=utf8)
        f.attrs.create("model_config", json.dumps(keras_model_config(model)).encode(), dtype=ascii_)
        g = f.create_group("model_weights")
        names = [layer["name"] for layer in model["layers"]]
        g.attrs["layer_names"] = np.array([n.encode() for n in names])
        g.attrs.create("backend", b"tensorflow", dtype=ascii_)
        g.attrs.create("keras_version", KERAS_VERSION.encode(), dtype=ascii_)
        for i, name in enumerate(names):
            lg = g.create_group(name)
            wnames = [f"{name}/kernel:0", f"{name}/bias:0"]
            lg.attrs["weight_names"] = np.array([n.encode() for n in wnames])
            for wname, w in zip(wnames, weights[2 * i: 2 * i + 2]):
                lg.create_dataset(wname, data=w.astype("<f4"))
        f.attrs.create("training_config", json.dumps(keras_training_config(model)).encode(),
                       dtype=ascii_)
    os.replace(tmp, path)


# ---- driver ----------------------------------------------------------------

def make_data(model, rng):
    sizes = [model["input"]["shape"][0]] + [layer["units"] for layer in model["layers"]]
    weights = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        weights.append(rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32))
        weights.append(rng.uniform(-0.1, 0.1, (fan_out,)).astype(np.float32))
    x = rng.standard_normal((BATCH, sizes[0])).astype(np.float32)
    if model["loss"] == "sparse_categorical_crossentropy":
        y = rng.randint(0, sizes[-1], BATCH).astype(np.int32)
    else:
        y = rng.standard_normal((BATCH, sizes[-1])).astype(np.float32)
    return weights, x, y


def flat(tensors):
    return np.concatenate([t.detach().numpy().reshape(-1) for t in tensors]).astype(np.float32)


def make_one(yaml_name, folder, seed):
    model = read_model(os.path.join(HERE, yaml_name))
    w0_np, x_np, y_np = make_data(model, np.random.RandomState(seed))
    w0 = [torch.from_numpy(w.astype(np.float64)) for w in w0_np]
    x = torch.from_numpy(x_np.astype(np.float64))
    y = torch.from_numpy(y_np if y_np.dtype == np.int32 else y_np.astype(np.float64))

    out, _ = forward(model, w0, x)
    g1 = gradients(model, w0, x, y)
    opt = keras_optimizer(model["optimizer"])
    w1 = opt.step(w0, g1)
    w2 = opt.step(w1, gradients(model, w1, x, y))
    losses = [float(loss_of(model, w, x, y)) for w in (w0, w1, w2)]
    metrics = [float(metric_of(model, w, x, y)) for w in (w0, w1, w2)]

    fd_err = check_gradients(model, w0, x, y, g1)
    opt_err = check_with_torch_optim(model, w0, x, y, [w1, w2])

    out_dir = os.path.join(HERE, folder)
    os.makedirs(out_dir, exist_ok=True)
    write_keras_h5(os.path.join(out_dir, "w0.h5"), model, w0_np)
    arrays = {
        "x": x_np, "y": y_np, "out": out.numpy().astype(np.float32),
        "loss": np.array(losses, np.float32), "metrics": np.array(metrics, np.float32),
        "grads": flat(g1), "w1": flat(w1), "w2": flat(w2),
    }
    for name, a in arrays.items():
        np.save(os.path.join(out_dir, name + ".npy"), a)

    print(f"{folder}/ ({yaml_name}: {model['optimizer'][0]} {model['optimizer'][1]}, "
          f"loss {model['loss']}, seed {seed})")
    print(f"  weights {arrays['grads'].size} floats; loss w0,w1,w2 = "
          + ", ".join(f"{v:.6f}" for v in losses)
          + f"; {model['metrics'][0]} = " + ", ".join(f"{v:.4f}" for v in metrics))
    print(f"  max|grad| {np.abs(arrays['grads']).max():.4g}, "
          f"max|w1-w0| {np.abs(arrays['w1'] - flat(w0)).max():.4g}, "
          f"max|w2-w1| {np.abs(arrays['w2'] - arrays['w1']).max():.4g}")
    print(f"  checks: finite differences rel err {fd_err:.2g}, "
          f"torch.optim max diff {opt_err:.2g}")


def main():
    torch.manual_seed(0)  # nothing here draws from torch; numpy seeds the data
    for yaml_name, folder, seed in MODELS:
        make_one(yaml_name, folder, seed)


if __name__ == "__main__":
    main()
