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
     of the float64 reference loss in training mode, |nncc - fd| /
     max(0.01, |fd|) <= 2e-4 (weights of a trainable: false layer must
     not move); the epoch (one step: "1/1") prints the training-mode
     reference loss at w0. BatchNormalization's moving statistics must
     move by (batch - moving) * (1 - momentum): |dnncc - dref| / max(0.01,
     |dref|) <= 1e-4, which tells a biased batch variance from an
     unbiased one. (Skipped for models with several inputs or outputs,
     which npy fit data cannot describe, and for Dropout, whose training
     mask has no reference.)
  5. for models with a recurrent layer (one input, one output), the
     initial weights nncc makes (Keras's defaults): `nncc train` without
     --weights and with SGD(1e-30), which cannot move them visibly (nncc
     rejects a learning rate of 0); kernel glorot_uniform, |w| <= sqrt(6 /
     (F + G u)); recurrent_kernel orthogonal, R R^T = I; bias 0, except an
     LSTM's forget-gate slice [u, 2u), which unit_forget_bias (default true)
     sets to 1; no bias with use_bias false. One "init LAYER" line per layer.
  6. `nncc check`: nncc's own finite-difference check of the generated
     gradient code at the initializers' weights (exit status 0, "ok").

N = 40 is more than the default compiled batch (32), so predict and
evaluate also run over two chunks. Each model gets one --out folder (and
one for its training copy), so repeated runs skip the C build.

A model with `blocks:` (user-defined layers) is compared with NAME_flat.yaml
next to it: the same network written out by hand, each layer of a block
instance named "instance.local". Its reference is the flat file's, with the
names read as "instance/local", and its weights file has the block layout
model_weights/<instance>/<instance>/<local>/kernel:0 (Keras's layout for a
custom layer's weights, model-format.md §2).

The reference (tf.keras 2.x, shared/spec/keras-numerics.md):
  Dense        y = act(x @ W + b) on the last axis, W [in, units]
  Flatten, Reshape (one -1), Activation, Identity; Dropout = identity at
  inference
  Conv1D/2D    y[o] = act(b + sum_{i,c} xpad[o*s + i*d, c] K[i, c, :]) per
               spatial axis, K [k, c, f] / [kh, kw, c, f]; valid: out =
               (in - (k-1)d - 1) // s + 1; same: out = ceil(in / s),
               pad_total = max((out-1)s + (k-1)d + 1 - in, 0), pad_before =
               pad_total // 2 (the odd cell after), zeros; causal (Conv1D):
               (k-1)d zeros before the steps, then valid
  Max/AveragePooling1D/2D   the same windows (d = 1, strides default to
               pool_size) over the real cells only: max ignores padding,
               average divides by the count of real cells
  GlobalAverage/MaxPooling1D/2D   mean / max over the spatial axes
               (keepdims: true keeps them as 1s)
  BatchNormalization   gamma (x - m) / sqrt(v + eps) + beta per channel
               (last axis; gamma 1 without scale, beta 0 without center);
               inference, and training of a frozen (trainable: false)
               layer: m, v = the moving statistics; training: the batch
               mean and biased variance over all but the last axis, and
               the step sets moving = moving * momentum + batch * (1 -
               momentum)
  Concatenate (axis counts the batch, as in Keras), Add, Subtract,
  Multiply, Average, Maximum elementwise over the inputs
  SimpleRNN, LSTM, GRU over (B, T, F), h_0 = c_0 = 0, weights through the
               cell (lstm/lstm_cell/kernel:0; the cell numbered like the
               layer among its class: lstm_1/lstm_cell_1/...): kernel
               (F, G u), recurrent_kernel (u, G u), bias (G u); act =
               activation (tanh), ra = recurrent_activation (sigmoid)
    SimpleRNN  h = act(x W + h U + b)
    LSTM       z = x W + h U + b split i, f, c, o; c = ra(f) c + ra(i)
               act(c~); h = ra(o) act(c)
    GRU        gates z, r, h; reset_after (default; bias (2, 3u) = input
               and recurrent bias): xw = x W + b_in, hu = h U + b_rec, z, r
               = ra(xw + hu), h~ = act(xw_h + r hu_h); reset_after false
               (bias (3u)): z, r = ra(x W + b + h U), h~ = act(x W_h + b_h +
               (r h) U_h); h = z h_prev + (1 - z) h~
    go_backwards reads the steps from the last to the first and returns
    them in that processing order; return_sequences: every step's h, else
    the last
  TimeDistributed(layer) the wrapped layer on the last axis at every step,
               its weights under the wrapper's name (time_distributed/kernel:0)
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
  t == (p > 0.5); mse, mae as above; last_time_step_mse (the Keras notes'
  metric) mean((y[:, -1] - t[:, -1])^2), the last step only. "accuracy"
  is resolved as tf.keras 2.2+ does, from the shapes: output last axis 1
  -> binary, sparse labels -> sparse_categorical, else categorical.

One line per check, "PASS"/"FAIL", model, check, max difference; then
"N passed, N failed"; the exit status is 1 when anything failed.

--only REGEX runs the models whose name matches. --perturb NAME breaks one
reference formula on purpose (gelu: the tanh approximation; selu: alpha
1.67; l2: penalty halved; bce_eps: no epsilon inside the logs;
from_logits: cross-entropy from clipped probabilities; same_pad: the odd
padding cell before; pool_pad: max pooling over zero padding, average
pooling dividing by the whole window; bn_var: unbiased batch variance in
training; bn_frozen: a frozen BatchNormalization on batch statistics;
bn_moving: moving variance from the unbiased batch variance; concat: axis
1 read without the batch axis; go_backwards: a backwards sequence flipped
back to input order; reset_after: GRU with the other reset formula;
hard_sigmoid: Keras 3's relu6(x + 3) / 6 as the recurrent activation;
last_step: last_time_step_mse over every step; forget_bias: the init check
expecting the opposite unit_forget_bias) to show that the comparison
catches it.
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
MOVING_TOL = 1e-4          # BN moving statistics: |(m0 - m1) - ref| / max(GRAD_FLOOR, |ref|)
EPS = float(np.float32(1e-7))                        # keras.backend.epsilon() as a float32 tensor
CLIP_HI = float(np.float32(1.0) - np.float32(EPS))   # Keras's 1 - eps, rounded to float32: 1 - 2^-23
PERTURB = None             # set from --perturb

# ---- the model file (the subset these models use) -------------------------

LAYER_STEMS = {"Dense": "dense", "Flatten": "flatten", "Reshape": "reshape",
               "Activation": "activation", "Dropout": "dropout", "Identity": "identity",
               "Conv1D": "conv1d", "Conv2D": "conv2d", "DepthwiseConv2D": "depthwise_conv2d",
               "MaxPooling1D": "max_pooling1d", "MaxPooling2D": "max_pooling2d",
               "AveragePooling1D": "average_pooling1d", "AveragePooling2D": "average_pooling2d",
               "GlobalAveragePooling1D": "global_average_pooling1d",
               "GlobalAveragePooling2D": "global_average_pooling2d",
               "GlobalMaxPooling1D": "global_max_pooling1d", "GlobalMaxPooling2D": "global_max_pooling2d",
               "BatchNormalization": "batch_normalization", "Concatenate": "concatenate",
               "Add": "add", "Subtract": "subtract", "Multiply": "multiply", "Average": "average",
               "Maximum": "maximum", "SimpleRNN": "simple_rnn", "LSTM": "lstm", "GRU": "gru",
               "TimeDistributed": "time_distributed"}
RECURRENT = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}      # class: gates
ALIASES = {"MaxPool1D": "MaxPooling1D", "MaxPool2D": "MaxPooling2D", "AvgPool1D": "AveragePooling1D",
           "AvgPool2D": "AveragePooling2D", "GlobalAvgPool1D": "GlobalAveragePooling1D",
           "GlobalAvgPool2D": "GlobalAveragePooling2D", "GlobalMaxPool1D": "GlobalMaxPooling1D",
           "GlobalMaxPool2D": "GlobalMaxPooling2D"}
MOVING = ("moving_mean", "moving_variance")


def one_key(item):
    if isinstance(item, str):
        return item, {}
    (key, val), = item.items()
    return key, (val if val is not None else {})


def as_list(v):
    return v if isinstance(v, list) else [v]


def read_layers(path, doc, inputs):
    """The layer list: {class, name, group (the HDF5 group), cfg, inputs}; a
    recurrent layer also has its cell's name (cell), numbered like the layer
    among its class: lstm_cell, lstm_cell_1, ... (tf.keras 2.x)."""
    layers, counts, previous = [], {}, inputs[0]["name"]
    functional = len(inputs) > 1
    for item in doc["layers"]:
        cls, cfg = one_key(item)
        cls = ALIASES.get(cls, cls)
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
        layers.append({"class": cls, "name": name, "group": name, "cfg": cfg, "inputs": srcs})
        if cls in RECURRENT:
            stem = LAYER_STEMS[cls] + "_cell"
            k = counts.get(stem, 0)
            counts[stem] = k + 1
            layers[-1]["cell"] = stem if k == 0 else f"{stem}_{k}"
        previous = name
    return layers, as_list(doc.get("outputs", layers[-1]["name"])), functional


def read_model(path):
    with open(path) as f:
        doc = yaml.safe_load(f)
    inputs = [{"name": i["name"], "shape": [int(d) for d in i["shape"]]} for i in doc["inputs"]]
    if "blocks" in doc:
        # the network written out flat, "instance.local" for "instance/local"
        flat_path = os.path.splitext(path)[0] + "_flat.yaml"
        with open(flat_path) as f:
            flat = yaml.safe_load(f)
        assert [i["name"] for i in flat["inputs"]] == [i["name"] for i in inputs], flat_path
        layers, outputs, functional = read_layers(flat_path, flat, inputs)
        names = {i["name"] for i in inputs}
        for layer in layers:
            names.add(layer["name"])
            layer["name"] = layer["name"].replace(".", "/")
            layer["group"] = layer["name"].split("/")[0]
            layer["inputs"] = [s.replace(".", "/") if s in names else s for s in layer["inputs"]]
        outputs = [o.replace(".", "/") for o in outputs]
    else:
        layers, outputs, functional = read_layers(path, doc, inputs)
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


def trainable(layer, key):
    """Whether SGD moves this weight: not the moving statistics, not a frozen layer's."""
    return key not in MOVING and layer["cfg"].get("trainable", True) is not False


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


def window(cfg, key, nd, default):
    """kernel_size / strides / dilation_rate / pool_size as nd ints."""
    v = cfg.get(key)
    v = default if v is None else v
    return [int(d) for d in v] if isinstance(v, list) else [int(v)] * nd


def geometry(n, k, s, d, same):
    """(out, pad_before, pad_after) of one spatial axis, Keras's rule."""
    if not same:
        return (n - (k - 1) * d - 1) // s + 1, 0, 0
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    before = total // 2
    if PERTURB == "same_pad":          # the odd cell before instead of after
        before = total - total // 2
    return out, before, total - before


def is_same(cfg):
    return str(cfg.get("padding", "valid")).lower() == "same"


def conv(x, kernel, strides, dilation, same):
    """(B, H, W, C) * (kh, kw, C, F): the sum over the window of each output
    cell, on the zero-padded input."""
    _, h, w, _ = x.shape
    kh, kw = kernel.shape[:2]
    oh, pt, pb = geometry(h, kh, strides[0], dilation[0], same)
    ow, pl, pr = geometry(w, kw, strides[1], dilation[1], same)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    y = np.zeros((x.shape[0], oh, ow, kernel.shape[3]))
    for i in range(kh):
        for j in range(kw):
            r, c = i * dilation[0], j * dilation[1]
            patch = xp[:, r:r + (oh - 1) * strides[0] + 1:strides[0], c:c + (ow - 1) * strides[1] + 1:strides[1], :]
            y += patch @ kernel[i, j]
    return y


def pool(x, size, strides, same, average):
    """(B, H, W, C): max or mean over the real (unpadded) cells of each window."""
    _, h, w, _ = x.shape
    oh, pt, _ = geometry(h, size[0], strides[0], 1, same)
    ow, pl, _ = geometry(w, size[1], strides[1], 1, same)
    y = np.zeros((x.shape[0], oh, ow, x.shape[3]))
    for a in range(oh):
        rows = [r for r in range(a * strides[0] - pt, a * strides[0] - pt + size[0]) if 0 <= r < h]
        for b in range(ow):
            cols = [c for c in range(b * strides[1] - pl, b * strides[1] - pl + size[1]) if 0 <= c < w]
            win = x[:, rows][:, :, cols]
            if PERTURB == "pool_pad" and len(rows) * len(cols) < size[0] * size[1]:
                y[:, a, b] = (win.sum((1, 2)) / (size[0] * size[1]) if average else
                              np.maximum(win.max((1, 2)), 0.0))
                continue
            y[:, a, b] = win.mean((1, 2)) if average else win.max((1, 2))
    return y


def batch_norm(layer, w, x, training, stats):
    """BatchNormalization over the last axis; training records the batch
    statistics in stats[layer name]."""
    cfg = layer["cfg"]
    eps = float(cfg.get("epsilon", 1e-3))
    frozen = not trainable(layer, "gamma") and PERTURB != "bn_frozen"
    if training and not frozen:
        axes = tuple(range(x.ndim - 1))
        mean = x.mean(axes)
        var = x.var(axes, ddof=1 if PERTURB == "bn_var" else 0)
        if stats is not None:
            stats[layer["name"]] = (mean, x.var(axes, ddof=1 if PERTURB == "bn_moving" else 0))
    else:
        mean, var = w["moving_mean"], w["moving_variance"]
    return w.get("gamma", 1.0) * (x - mean) / np.sqrt(var + eps) + w.get("beta", 0.0)


def recurrent(layer, w, x):
    """SimpleRNN / LSTM / GRU over (B, T, F), h_0 = c_0 = 0; weights
    <cell>/kernel (F, G u), <cell>/recurrent_kernel (u, G u), <cell>/bias
    (G u) or GRU reset_after (2, 3u). go_backwards reads the steps from the
    last to the first and returns them in that processing order."""
    cls, cfg, cell = layer["class"], layer["cfg"], layer["cell"]
    u = int(cfg["units"])
    act = activation(cfg.get("activation", "tanh"))[1]
    rec_act = activation(cfg.get("recurrent_activation", "sigmoid"))[1]
    if PERTURB == "hard_sigmoid" and cfg.get("recurrent_activation") == "hard_sigmoid":
        rec_act = lambda v: np.clip(v + 3.0, 0.0, 6.0) / 6.0      # Keras 3's hard_sigmoid
    kernel, rec = w[cell + "/kernel"], w[cell + "/recurrent_kernel"]
    bias = w.get(cell + "/bias")
    reset_after = cls == "GRU" and cfg.get("reset_after", True) is not False
    if PERTURB == "reset_after" and cls == "GRU":
        reset_after = not reset_after      # the other formula, the same weights
        bias = None if bias is None else (np.stack([bias, 0 * bias]) if bias.ndim == 1 else bias.sum(0))
    backwards = cfg.get("go_backwards", False) is True
    if backwards:
        x = x[:, ::-1]
    h = np.zeros((x.shape[0], u))
    c = np.zeros_like(h)
    seq = []
    for t in range(x.shape[1]):
        xw = x[:, t] @ kernel
        if cls == "SimpleRNN":
            h = act(xw + h @ rec + (0 if bias is None else bias))
        elif cls == "LSTM":
            z = xw + h @ rec + (0 if bias is None else bias)
            i, f, g, o = (z[:, k * u:(k + 1) * u] for k in range(4))
            c = rec_act(f) * c + rec_act(i) * act(g)
            h = rec_act(o) * act(c)
        elif reset_after:
            hu = h @ rec
            if bias is not None:
                xw, hu = xw + bias[0], hu + bias[1]
            z = rec_act(xw[:, :u] + hu[:, :u])
            r = rec_act(xw[:, u:2 * u] + hu[:, u:2 * u])
            h = z * h + (1 - z) * act(xw[:, 2 * u:] + r * hu[:, 2 * u:])
        else:
            if bias is not None:
                xw = xw + bias
            z = rec_act(xw[:, :u] + h @ rec[:, :u])
            r = rec_act(xw[:, u:2 * u] + h @ rec[:, u:2 * u])
            h = z * h + (1 - z) * act(xw[:, 2 * u:] + (r * h) @ rec[:, 2 * u:])
        seq.append(h)
    if cfg.get("return_sequences", False) is not True:
        return h
    seq = np.stack(seq, axis=1)
    return seq[:, ::-1] if backwards and PERTURB == "go_backwards" else seq


def wrapped(layer):
    """The layer TimeDistributed wraps, as a layer of its own (the wrapper's name)."""
    cls, cfg = one_key(layer["cfg"]["layer"])
    return {**layer, "class": ALIASES.get(cls, cls), "cfg": cfg}


def apply_layer(layer, xs, w, training, stats):
    """(y, activation name, pre-activation z) of one layer on its inputs."""
    cls, cfg = layer["class"], layer["cfg"]
    x, act, z = xs[0], None, None
    if cls == "Dense":
        z = np.einsum("...i,ij->...j", x, w["kernel"])
        if "bias" in w:
            z = z + w["bias"]
        act, f = activation(cfg.get("activation", "linear"))
        y = f(z)
    elif cls == "DepthwiseConv2D":
        # channel ci alone makes outputs ci*dm .. ci*dm + dm-1: a block-diagonal full kernel
        k = w["depthwise_kernel"]
        kh, kw, c, dm = k.shape
        full = np.zeros((kh, kw, c, c * dm))
        for ci in range(c):
            full[:, :, ci, ci * dm:(ci + 1) * dm] = k[:, :, ci, :]
        z = conv(x, full, window(cfg, "strides", 2, 1), window(cfg, "dilation_rate", 2, 1), is_same(cfg))
        if "bias" in w:
            z = z + w["bias"]
        act, f = activation(cfg.get("activation", "linear"))
        y = f(z)
    elif cls in ("Conv1D", "Conv2D"):
        nd = int(cls[-2])
        kernel = w["kernel"] if nd == 2 else w["kernel"][None]
        if nd == 1 and str(cfg.get("padding", "valid")).lower() == "causal":
            # Keras: (k - 1) * d zeros before the steps, then a valid convolution
            before = (w["kernel"].shape[0] - 1) * window(cfg, "dilation_rate", 1, 1)[0]
            x = np.pad(x, ((0, 0), (before, 0), (0, 0)))
        z = conv(x if nd == 2 else x[:, None], kernel, [1] * (2 - nd) + window(cfg, "strides", nd, 1),
                 [1] * (2 - nd) + window(cfg, "dilation_rate", nd, 1), is_same(cfg))
        z = z if nd == 2 else z[:, 0]
        if "bias" in w:
            z = z + w["bias"]
        act, f = activation(cfg.get("activation", "linear"))
        y = f(z)
    elif cls.endswith(("Pooling1D", "Pooling2D")) and not cls.startswith("Global"):
        nd = int(cls[-2])
        size = window(cfg, "pool_size", nd, 2)
        strides = window(cfg, "strides", nd, size)
        y = pool(x if nd == 2 else x[:, None], [1] * (2 - nd) + size, [1] * (2 - nd) + strides, is_same(cfg),
                 cls.startswith("Average"))
        y = y if nd == 2 else y[:, 0]
    elif cls.startswith("Global"):
        axes = tuple(range(1, x.ndim - 1))
        keep = cfg.get("keepdims", False) is True
        y = x.mean(axes, keepdims=keep) if "Average" in cls else x.max(axes, keepdims=keep)
    elif cls == "BatchNormalization":
        y = batch_norm(layer, w, x, training, stats)
    elif cls == "Activation":
        z = x
        act, f = activation(cfg["activation"])
        y = f(z)
    elif cls == "Flatten":
        y = x.reshape(x.shape[0], -1)
    elif cls == "Reshape":
        y = x.reshape((x.shape[0],) + tuple(cfg["target_shape"]))
    elif cls in ("Dropout", "Identity"):
        y = x
    elif cls in RECURRENT:
        y = recurrent(layer, w, x)
    elif cls == "TimeDistributed":
        # the wrapped layer maps the last axis: the same at every step
        return apply_layer(wrapped(layer), xs, w, training, stats)
    elif cls == "Concatenate":
        axis = int(cfg.get("axis", -1))
        if PERTURB == "concat" and axis > 0:
            axis += 1
        y = np.concatenate(xs, axis=axis)
    elif cls == "Add":
        y = sum(xs[1:], xs[0])
    elif cls == "Subtract":
        y = xs[0] - xs[1]
    elif cls == "Multiply":
        y = xs[0]
        for v in xs[1:]:
            y = y * v
    elif cls == "Average":
        y = sum(xs[1:], xs[0]) / len(xs)
    elif cls == "Maximum":
        y = np.maximum.reduce(xs)
    else:
        raise AssertionError(cls)
    return y, act, z


def forward(model, weights, xs, training=False, stats=None):
    """Every layer's output, and for layers ending in an activation the
    activation name and its input: {name: (y, act, z)}. training: batch
    statistics in BatchNormalization (recorded in stats)."""
    vals = {i["name"]: (x.astype(np.float64), None, None) for i, x in zip(model["inputs"], xs)}
    for layer in model["layers"]:
        ins = [vals[s][0] for s in layer["inputs"]]
        vals[layer["name"]] = apply_layer(layer, ins, weights.get(layer["name"], {}), training, stats)
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
    if kind == "last_time_step_mse":   # the Keras notes' custom metric, (B, T, k)
        if PERTURB == "last_step":
            return ((y - t) ** 2).mean(), math.inf
        return ((y[:, -1] - t[:, -1]) ** 2).mean(), math.inf
    raise AssertionError(kind)


def penalties(model, weights):
    total = 0.0
    for layer in model["layers"]:
        cell = layer["cell"] + "/" if "cell" in layer else ""
        for key, wname in (("kernel_regularizer", "kernel"), ("bias_regularizer", "bias"),
                           ("recurrent_regularizer", "recurrent_kernel")):
            spec = layer["cfg"].get(key)
            if spec is None:
                continue
            wname = cell + wname
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
    """d total loss / d every trainable weight by central differences of the
    float64 reference in training mode: {layer: {kernel, bias, ...}}."""
    def total():
        vals = forward(model, weights, xs, training=True)
        return losses(model, weights, [vals[o] for o in model["outputs"]], ys)["loss"]
    grads = {}
    for layer in model["layers"]:
        for key, w in weights.get(layer["name"], {}).items():
            if not trainable(layer, key):
                continue
            g = np.zeros_like(w)
            for i in np.ndindex(w.shape):
                w0 = w[i]
                w[i] = w0 + h
                up = total()
                w[i] = w0 - h
                down = total()
                w[i] = w0
                g[i] = (up - down) / (2 * h)
            grads.setdefault(layer["name"], {})[key] = g
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
    """Keras-layout weights {layer: {kernel, bias, ...}} as float32, in
    Keras order; kernels U(±sqrt(3/fan_in)) * 1.2 (fan_in = inputs times
    the window for a convolution) so pre-activations have a std near 1.2
    whatever the fan-in, biases U(-0.5, 0.5); BatchNormalization gamma
    U(0.5, 1.5), beta and moving_mean U(-0.5, 0.5), moving_variance
    U(0.5, 1.5); recurrent layers: kernel (F, G u) U(±1.2 sqrt(3/F)),
    recurrent_kernel (u, G u) U(±0.8 sqrt(3/u)), bias U(-0.5, 0.5), named
    through the cell ("lstm_cell/kernel"); TimeDistributed: the wrapped
    layer's. Also every layer's output shape, from a float64 pass over
    one sample of zeros."""
    vals = {i["name"]: np.zeros((1,) + tuple(i["shape"])) for i in model["inputs"]}
    weights = {}
    for layer in model["layers"]:
        xs = [vals[s] for s in layer["inputs"]]
        w = layer_weights(wrapped(layer) if layer["class"] == "TimeDistributed" else layer,
                          xs[0].shape[1:], rng)
        if w:
            weights[layer["name"]] = w
        vals[layer["name"]] = apply_layer(layer, xs, {k: v.astype(np.float64) for k, v in w.items()}, False,
                                          None)[0]
    return weights, {name: v.shape[1:] for name, v in vals.items()}


def layer_weights(layer, shape, rng):
    """One layer's random weights {key: float32 array} for an input of per-sample shape `shape`."""
    cfg, cls = layer["cfg"], layer["class"]
    w = {}
    if cls in RECURRENT:
        u, g, cell = int(cfg["units"]), RECURRENT[cls], layer["cell"]
        limit = 1.2 * math.sqrt(3.0 / shape[-1])
        w[cell + "/kernel"] = rng.uniform(-limit, limit, (shape[-1], g * u)).astype(np.float32)
        limit = 0.8 * math.sqrt(3.0 / u)
        w[cell + "/recurrent_kernel"] = rng.uniform(-limit, limit, (u, g * u)).astype(np.float32)
        if cfg.get("use_bias", True):
            two = cls == "GRU" and cfg.get("reset_after", True) is not False
            w[cell + "/bias"] = rng.uniform(-0.5, 0.5, (2, g * u) if two else (g * u,)).astype(np.float32)
    elif cls in ("Dense", "Conv1D", "Conv2D"):
        if cls == "Dense":
            units, ksize = int(cfg["units"]), []
        else:
            units, ksize = int(cfg["filters"]), window(cfg, "kernel_size", int(cls[-2]), None)
        fan_in = shape[-1] * int(np.prod(ksize))
        limit = 1.2 * math.sqrt(3.0 / fan_in)
        w["kernel"] = rng.uniform(-limit, limit, tuple(ksize) + (shape[-1], units)).astype(np.float32)
        if cfg.get("use_bias", True):
            w["bias"] = rng.uniform(-0.5, 0.5, (units,)).astype(np.float32)
    elif cls == "DepthwiseConv2D":
        ksize, dm = window(cfg, "kernel_size", 2, None), int(cfg.get("depth_multiplier", 1))
        limit = 1.2 * math.sqrt(3.0 / int(np.prod(ksize)))
        w["depthwise_kernel"] = rng.uniform(-limit, limit, tuple(ksize) + (shape[-1], dm)).astype(np.float32)
        if cfg.get("use_bias", True):
            w["bias"] = rng.uniform(-0.5, 0.5, (shape[-1] * dm,)).astype(np.float32)
    elif cls == "BatchNormalization":
        c = (shape[-1],)
        if cfg.get("scale", True):
            w["gamma"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
        if cfg.get("center", True):
            w["beta"] = rng.uniform(-0.5, 0.5, c).astype(np.float32)
        w["moving_mean"] = rng.uniform(-0.5, 0.5, c).astype(np.float32)
        w["moving_variance"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
    return w


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
    writes it) and datasets <layer>/<layer>/<weight>:0. A layer of a block
    instance is in the instance's group: <instance>/<instance>/<local>/<weight>:0."""
    groups = {}
    for i in model["inputs"] if model["functional"] else []:
        groups[i["name"]] = []
    for layer in model["layers"]:
        groups.setdefault(layer["group"], []).extend(
            (f"{layer['name']}/{k}:0", w) for k, w in weights.get(layer["name"], {}).items())
    with h5py.File(path, "w") as f:
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = np.array([n.encode() for n in groups])
        g.attrs["backend"] = b"tensorflow"
        g.attrs["keras_version"] = b"2.4.0"
        for name, ws in groups.items():
            lg = g.create_group(name)
            lg.attrs["weight_names"] = np.array([n.encode() for n, _ in ws]) if ws else np.array([])
            for wname, w in ws:
                lg.create_dataset(wname, data=w.astype("<f4"))


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


def read_weights(path, names):
    """{layer: {kernel, bias, ...}} from a Keras-layout weights file; a
    block instance's layers as "instance/local"; a recurrent layer's keys
    through its cell ("lstm_cell/kernel"). `names`: the model's layer
    names; a weight belongs to the longest one its name starts with."""
    out = {}
    with h5py.File(path, "r") as f:
        g = f["model_weights"]
        for group in g.attrs["layer_names"]:
            group = group.decode() if isinstance(group, bytes) else group
            for wname in g[group].attrs["weight_names"]:
                wname = wname.decode() if isinstance(wname, bytes) else wname
                owners = [n for n in names if wname.startswith(n + "/")]
                layer = max(owners, key=len) if owners else wname.rsplit("/", 1)[0]
                key = wname[len(layer) + 1:]
                out.setdefault(layer, {})[key.split(":")[0]] = g[group][wname][()]
    return out


def train_step(nncc, path, model, weights, w64, xs, ys, xpath, ypath, wpath, out_dir, report):
    name = model["name"]
    train_yaml = fit_copy(path, name, out_dir, "train", "1.0", xpath, ypath)
    train_dir = os.path.dirname(train_yaml)
    result = os.path.join(train_dir, name + ".h5")
    if os.path.exists(result):
        os.remove(result)
    rc, out, err = run([nncc, "train", train_yaml, "--weights", wpath, "--out", train_dir])
    if rc != 0 or not os.path.exists(result):
        report.line(False, name, "train step", f"exit status {rc}\n" + indent(err + out))
        return
    # the reference step: training mode (batch statistics), one batch of N
    stats = {}
    vals = forward(model, w64, xs, training=True, stats=stats)
    ref = losses(model, w64, [vals[o] for o in model["outputs"]], ys)["loss"]
    m = re.search(r"\bloss: (\S+)", out)
    steps = re.findall(r"^\s*(\d+/\d+) \[", out, re.M)
    if not m:
        report.line(False, name, "train loss", "no 'loss:' in the output\n" + indent(out))
    else:
        got = float(m.group(1))
        tol = printed_quantum(m.group(1)) + EVAL_REL_TOL * max(1.0, abs(ref))
        report.line(abs(got - ref) <= tol and steps == ["1/1"], name, "train loss",
                    f"{m.group(1)} vs {ref:.6f}: |diff| {abs(got - ref):.2e} (tol {tol:.1e})"
                    + ("" if steps == ["1/1"] else f"; steps {steps}, expected one (1/1)"))
    w1 = read_weights(result, [layer["name"] for layer in model["layers"]])
    ref_grads = loss_gradient(model, w64, xs, ys)
    worst, worst_at = 0.0, ""
    moving, moving_at = None, ""
    for layer in model["layers"]:
        for key, w0 in weights.get(layer["name"], {}).items():
            lname = layer["name"]
            if lname not in w1 or key not in w1[lname] or w1[lname][key].shape != w0.shape:
                report.line(False, name, "train gradient", f"{lname}/{key} missing in {result}")
                return
            got = w0.astype(np.float64) - w1[lname][key].astype(np.float64)
            if key in MOVING:
                # moving -= (moving - batch) * (1 - momentum); unchanged when frozen
                momentum = float(layer["cfg"].get("momentum", 0.99))
                batch = stats[lname][MOVING.index(key)] if lname in stats else w64[lname][key]
                step = (w64[lname][key] - batch) * (1.0 - momentum)
                err = (np.abs(got - step) / np.maximum(GRAD_FLOOR, np.abs(step))).max()
                if moving is None or err >= moving:
                    moving, moving_at = err, f"{lname}/{key}"
                continue
            ref = ref_grads[lname][key] if trainable(layer, key) else np.zeros_like(got)
            err = (np.abs(got - ref) / np.maximum(GRAD_FLOOR, np.abs(ref))).max()
            if err >= worst:
                worst, worst_at = err, f"{lname}/{key}"
    report.line(worst <= GRAD_TOL, name, "train gradient",
                f"max |nncc - fd| / max({GRAD_FLOOR:g}, |fd|) {worst:.2e} at {worst_at} (tol {GRAD_TOL:g})")
    if moving is not None:
        report.line(moving <= MOVING_TOL, name, "train moving stats",
                    f"max |dnncc - dref| / max({GRAD_FLOOR:g}, |dref|) {moving:.2e} at {moving_at} "
                    f"(tol {MOVING_TOL:g})")


def fit_copy(path, name, out_dir, sub, lr, xpath, ypath):
    """A copy of the model file (out_dir/sub/name.yaml) with SGD(lr) and a
    fit section: one epoch of one batch of N on the npy data, no shuffle.
    Returns its path."""
    work = os.path.join(out_dir, sub)
    os.makedirs(work, exist_ok=True)
    with open(path) as f:
        text = f.read()
    text, count = re.subn(r"^(\s*)optimizer:.*$", rf"\1optimizer: {{SGD: {{learning_rate: {lr}}}}}", text,
                          flags=re.M)
    assert count == 1, f"{path}: one 'optimizer:' line expected"
    text += ("fit:\n"
             f"  data: {{train: {{format: npy, x: {xpath}, y: {ypath}}}}}\n"
             f"  epochs: 1\n  batch_size: {N}\n  shuffle: false\n  seed: 1\n")
    copy = os.path.join(work, name + ".yaml")
    with open(copy, "w") as f:
        f.write(text)
    return copy


def init_check(nncc, path, model, xpath, ypath, out_dir, report):
    """The initial weights of recurrent layers (Keras defaults): kernel
    glorot_uniform, |w| <= sqrt(6 / (F + G u)); recurrent_kernel orthogonal,
    R R^T = I; bias zeros but, for an LSTM with unit_forget_bias (the
    default), the forget gate's slice [u, 2u) at 1. nncc writes its initial
    weights through `nncc train` with SGD(1e-30): one step that cannot move
    them by more than ~1e-30 (nncc rejects a learning rate of 0, which
    Keras accepts)."""
    name = model["name"]
    copy = fit_copy(path, name, out_dir, "init", "1.0e-30", xpath, ypath)
    result = os.path.splitext(copy)[0] + ".h5"
    if os.path.exists(result):
        os.remove(result)
    rc, out, err = run([nncc, "train", copy, "--out", os.path.dirname(copy)])
    if rc != 0 or not os.path.exists(result):
        report.line(False, name, "init", f"exit status {rc}\n" + indent(err + out))
        return
    got = read_weights(result, [layer["name"] for layer in model["layers"]])
    for layer in model["layers"]:
        cls, cfg = layer["class"], layer["cfg"]
        if cls not in RECURRENT:
            continue
        u, g, cell, lname = int(cfg["units"]), RECURRENT[cls], layer["cell"], layer["name"]
        w = {k[len(cell) + 1:]: v.astype(np.float64) for k, v in got.get(lname, {}).items()
             if k.startswith(cell + "/")}
        if "kernel" not in w or "recurrent_kernel" not in w:
            report.line(False, name, "init " + lname, f"no {lname}/{cell}/kernel:0 or recurrent_kernel:0 in "
                        f"{result}: {sorted(got.get(lname, {}))}")
            continue
        problems = []
        if "kernel_initializer" not in cfg:
            k = w["kernel"]
            limit = math.sqrt(6.0 / (k.shape[0] + g * u))
            # all within the limit; with 16+ values, not all in the inner half (p = 2^-16)
            if np.abs(k).max() > limit * (1 + 1e-6) or (k.size >= 16 and np.abs(k).max() < 0.5 * limit):
                problems.append(f"kernel max |w| {np.abs(k).max():.3g}, glorot limit {limit:.3g}")
        if "recurrent_initializer" not in cfg:
            r = w["recurrent_kernel"]
            err = np.abs(r @ r.T - np.eye(u)).max()
            if err > 1e-5:
                problems.append(f"recurrent_kernel: |R R^T - I| {err:.2g}")
        if cfg.get("use_bias", True) and "bias_initializer" not in cfg:
            want = np.zeros_like(w["bias"])
            forget = cls == "LSTM" and cfg.get("unit_forget_bias", True) is not False
            if PERTURB == "forget_bias" and cls == "LSTM":
                forget = not forget
            if forget:
                want[u:2 * u] = 1.0
            err = np.abs(w["bias"] - want).max()
            if err > 1e-6:
                problems.append(f"bias off by {err:.2g} (unit_forget_bias {forget}): "
                                f"{np.round(w['bias'], 3)}")
        if not cfg.get("use_bias", True):
            summary = ", no bias" if "bias" not in w else ""
            if "bias" in w:
                problems.append("a bias with use_bias false")
        elif cls == "LSTM" and cfg.get("unit_forget_bias", True) is not False:
            summary = ", bias 0 (forget gate 1)"
        else:
            summary = ", bias 0"
        report.line(not problems, name, "init " + lname,
                    "; ".join(problems) if problems
                    else "glorot kernel, orthogonal recurrent kernel" + summary)


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
        train_step(nncc, path, model, weights, w64, xs, ys, xpaths[0], ypaths[0], wpath, out_dir, report)
    if len(xs) == 1 and len(ys) == 1 and any(l["class"] in RECURRENT for l in model["layers"]):
        init_check(nncc, path, model, xpaths[0], ypaths[0], out_dir, report)

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
                    choices=["gelu", "selu", "l2", "bce_eps", "from_logits", "same_pad", "pool_pad", "bn_var",
                             "bn_frozen", "bn_moving", "concat", "go_backwards", "reset_after",
                             "hard_sigmoid", "last_step", "forget_bias"],
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
