#!/usr/bin/python3
"""Golden reference tensors for nncc, computed with PyTorch (not with nncc).

Run (Debian's python3, which has torch, numpy, h5py and PyYAML):

    /usr/bin/python3 tests/golden/make_golden.py

from any folder. It reads the model files beside it (golden_mlp_{sgd,adam,
mse}.yaml, golden_conv.yaml, golden_lstm.yaml, golden_gru.yaml) and rewrites
one folder per model (sgd/, adam/, mse/, conv/, lstm/, gru/). The output
is deterministic: rerunning it gives byte-identical files, so a diff after a
rerun means the reference changed.

The model files use a subset of the model format: one input, one output,
the layer classes in LAYER_CLASSES below (Dense, Conv2D, BatchNormalization,
Add, Activation, MaxPooling2D, GlobalAveragePooling2D, Flatten, LSTM, GRU),
connected by the format's `inputs:` rule. Activations are kept channels-last (NHWC) as in
Keras; convolutions and pooling convert to PyTorch's NCHW and back inside the
layer, and Keras "same" padding is applied explicitly with F.pad (before =
total // 2, the extra cell after: bottom/right), never with PyTorch's
symmetric `padding=`.

For each model, with a fixed numpy seed, it makes initial weights in Keras
layout (Dense kernel [in, out]; Conv2D kernel [kh, kw, in, out]; LSTM/GRU
kernel [in, G*units], recurrent_kernel [units, G*units] orthogonal as
Keras's Orthogonal makes it, bias [G*units] or GRU reset_after [2, 3*units];
kernels glorot_uniform with Keras's fans; biases and BatchNormalization beta
U(-0.1, 0.1) and gamma U(0.5, 1.5) rather than Keras's zeros and ones, so
that those paths are tested; moving_mean 0 and moving_variance 1 as Keras
initializes them), an input batch x of 8 samples (float32, standard normal)
and targets (int32 labels for the cross-entropy models, float32 for mse).
Everything else is computed in float64 with torch (gradients by autograd) and
stored as float32:

    w0.h5         initial weights, laid out as tf.keras 2.4 model.save writes
                  (model_config, Sequential for a chain of layers and
                  Functional otherwise, training_config, model_weights/...;
                  no optimizer_weights, as Keras writes none before training)
    x.npy         inputs (8, *input shape) float32
    y.npy         targets: (8,) int32 labels or (8, outputs) float32
    out.npy       model outputs at w0 in inference mode (8, outputs)
    loss.npy      [3]: training-mode loss at w0 (what train step 1 and
                  loss_grad report), training-mode loss at w1 (what train
                  step 2 reports), inference-mode loss at w2 (evaluate after
                  step 2; equal to eval_loss[2])
    metrics.npy   [3]: the compiled metric (accuracy / mae), same modes as
                  loss.npy
    eval_loss.npy     [3]: inference-mode loss (what evaluate reports) at
                      w0, w1, w2
    eval_metrics.npy  [3]: inference-mode metric at w0, w1, w2
    grads.npy     d loss / d w at w0 (training mode), every weight flattened
                  and concatenated in the model's weight order (layer by
                  layer in file order; per layer the HDF5 weight_names order:
                  kernel, bias / gamma, beta, moving_mean, moving_variance /
                  kernel, recurrent_kernel, bias),
                  row-major; 0 for the non-trainable moving statistics
    w1.npy        all weights after one training step (same flat order)
    w2.npy        all weights after a second step on the same batch

Training and inference mode differ only for BatchNormalization; for the MLPs
eval_loss equals loss and eval_metrics equals metrics. A training step is
what Keras's train_step does: the forward pass in training mode, the
optimizer update of the trainable weights with the gradients at the old
weights, and the BatchNormalization moving statistics updated from the
batch statistics of that same forward pass.

Keras semantics reproduced (shared/spec/keras-numerics.md): losses are means
over the batch; sparse categorical cross-entropy after a softmax is computed
from the logits; mse is the mean over features, then over the batch.
BatchNormalization in training mode normalizes with the batch mean and the
biased batch variance over every axis but the channel axis, y = gamma *
(x - mean) / sqrt(var + eps) + beta, and then sets moving = moving * momentum
+ batch * (1 - momentum) with the biased variance, as the spec says (PyTorch
uses the unbiased variance there, and so does tf.keras's fused kernel, its
default for 4-D inputs: tensorflow/tensorflow#55545); inference mode uses the
moving statistics. The optimizer updates are written out here (not
torch.optim), as Keras defines them:
    SGD        v = m*v - lr*g;  w += v            (plain: w -= lr*g)
    nesterov   v = m*v - lr*g;  w += m*v - lr*g
    Adam       m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;
               w -= lr*sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)
As self-checks, the script compares the autograd gradients with central
finite differences, the optimizer steps with torch.optim (whose SGD and Adam
are algebraically equal to Keras's once Adam's eps is rescaled per step),
every convolution and max pooling with a loop over Keras's window definition
in numpy, every BatchNormalization (output and moving statistics) with
torch's F.batch_norm, every LSTM and GRU (reset_after) with torch.nn.LSTM /
torch.nn.GRU on converted weights (PyTorch's gate orders i,f,g,o and r,z,n,
transposed matrices, two biases) and every GRU with reset_after false, which
PyTorch lacks, with a plain numpy loop over units, and stops on any
disagreement.

LSTM and GRU are Keras's cells written with torch ops (see "recurrent
layers" below): LSTM gates i, f, c, o, c = f c + i tanh(.), h = o tanh(c);
GRU gates z, r, h, h = z h_prev + (1 - z) h~, the reset gate applied after
(reset_after, two biases) or before (reset_after false) the recurrent
kernel. go_backwards reads the input from the last step to the first and
returns the sequence in that processing order, as Keras does.
"""

import json
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = 8
KERAS_VERSION = "2.4.0"

# (model file, output folder, numpy seed)
MODELS = [
    ("golden_mlp_sgd.yaml", "sgd", 1001),
    ("golden_mlp_adam.yaml", "adam", 1002),
    ("golden_mlp_mse.yaml", "mse", 1003),
    ("golden_conv.yaml", "conv", 1010),
    ("golden_lstm.yaml", "lstm", 1020),
    ("golden_gru.yaml", "gru", 1021),
]

torch.set_default_dtype(torch.float64)

ACTIVATIONS = {
    "linear": lambda z: z,
    "relu": torch.relu,
    "tanh": torch.tanh,
    "softmax": lambda z: torch.softmax(z, dim=-1),
    "sigmoid": torch.sigmoid,
    "hard_sigmoid": lambda z: torch.clamp(0.2 * z + 0.5, 0.0, 1.0),  # Keras 2's
}


def fail(msg):
    sys.exit(f"make_golden: {msg}")


# ---- layers ----------------------------------------------------------------
#
# One class per Keras layer class. A layer is built from its config and the
# per-sample shapes of its inputs (channels last, no batch axis) and holds:
#   shape     its per-sample output shape
#   weights   [Weight], in Keras's order for the layer
#   forward(ws, hs, training) -> (output, pre-activation, batch statistics
#             or None); ws are its weights, hs its input tensors (batch first)
#   keras_config()  its config as tf.keras 2.4 writes it in model_config

class Weight:
    def __init__(self, name, shape, init, fans=None, trainable=True):
        self.name, self.shape, self.init = name, tuple(shape), init
        self.fans, self.trainable = fans, trainable


def pair(v, what):
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, list) and len(v) == 2 and all(isinstance(i, int) for i in v):
        return tuple(v)
    fail(f"{what} must be an integer or a list of two: {v!r}")


def window(size, k, stride, padding):
    """Keras's window placement along one axis: (output size, (pad before,
    pad after)). "same": out = ceil(size / stride), the total padding split
    with the extra cell after (shared/spec/keras-numerics.md)."""
    if padding == "valid":
        return (size - k) // stride + 1, (0, 0)
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return out, (total // 2, total - total // 2)


def padding_of(cfg):
    p = str(cfg.get("padding", "valid")).lower()
    if p not in ("valid", "same"):
        fail(f"padding must be valid or same, not {p!r}")
    return p


def one_input(in_shapes, rank, cls):
    if len(in_shapes) != 1 or len(in_shapes[0]) != rank:
        fail(f"{cls} takes one input of per-sample rank {rank}, got {in_shapes}")
    return in_shapes[0]


def base_config(layer):
    return {"name": layer.name, "trainable": True, "dtype": "float32"}


def nhwc_windows(h, pads_h, pads_w, fill=0.0):
    """NHWC -> NCHW with Keras's explicit padding; F.pad lists the last axis
    (W) first: (left, right, top, bottom)."""
    return F.pad(h.permute(0, 3, 1, 2), (*pads_w, *pads_h), value=fill)


class Dense:
    base, args = "dense", {"units", "activation"}

    def __init__(self, cfg, in_shapes):
        (n_in,) = one_input(in_shapes, 1, "Dense")
        self.units = int(cfg["units"])
        self.activation = cfg.get("activation", "linear")
        self.shape = (self.units,)
        self.weights = [Weight("kernel", (n_in, self.units), "glorot", (n_in, self.units)),
                        Weight("bias", (self.units,), "small")]

    def forward(self, ws, hs, training):
        z = hs[0] @ ws[0] + ws[1]
        return ACTIVATIONS[self.activation](z), z, None

    def keras_config(self):
        return {**base_config(self), "units": self.units, "activation": self.activation,
                "use_bias": True,
                "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
                "bias_initializer": {"class_name": "Zeros", "config": {}},
                "kernel_regularizer": None, "bias_regularizer": None,
                "activity_regularizer": None, "kernel_constraint": None,
                "bias_constraint": None}


class Conv2D:
    base = "conv2d"
    args = {"filters", "kernel_size", "strides", "padding", "activation", "use_bias"}

    def __init__(self, cfg, in_shapes):
        height, width, channels = one_input(in_shapes, 3, "Conv2D")
        self.filters = int(cfg["filters"])
        self.kernel = pair(cfg["kernel_size"], "kernel_size")
        self.strides = pair(cfg.get("strides", 1), "strides")
        self.padding = padding_of(cfg)
        self.activation = cfg.get("activation", "linear")
        self.use_bias = bool(cfg.get("use_bias", True))
        out_h, self.pads_h = window(height, self.kernel[0], self.strides[0], self.padding)
        out_w, self.pads_w = window(width, self.kernel[1], self.strides[1], self.padding)
        self.shape = (out_h, out_w, self.filters)
        area = self.kernel[0] * self.kernel[1]
        self.weights = [Weight("kernel", (*self.kernel, channels, self.filters), "glorot",
                               (area * channels, area * self.filters))]
        if self.use_bias:
            self.weights.append(Weight("bias", (self.filters,), "small"))

    def forward(self, ws, hs, training):
        t = nhwc_windows(hs[0], self.pads_h, self.pads_w)
        # Keras kernel (kh, kw, in, out) -> PyTorch (out, in, kh, kw)
        z = F.conv2d(t, ws[0].permute(3, 2, 0, 1), stride=self.strides).permute(0, 2, 3, 1)
        if self.use_bias:
            z = z + ws[1]
        return ACTIVATIONS[self.activation](z), z, None

    def keras_config(self):
        return {**base_config(self), "filters": self.filters, "kernel_size": list(self.kernel),
                "strides": list(self.strides), "padding": self.padding,
                "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1,
                "activation": self.activation, "use_bias": self.use_bias,
                "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
                "bias_initializer": {"class_name": "Zeros", "config": {}},
                "kernel_regularizer": None, "bias_regularizer": None,
                "activity_regularizer": None, "kernel_constraint": None,
                "bias_constraint": None}


class MaxPooling2D:
    base, args = "max_pooling2d", {"pool_size", "strides", "padding"}

    def __init__(self, cfg, in_shapes):
        height, width, channels = one_input(in_shapes, 3, "MaxPooling2D")
        self.pool = pair(cfg.get("pool_size", 2), "pool_size")
        strides = cfg.get("strides")
        self.strides = self.pool if strides is None else pair(strides, "strides")
        self.padding = padding_of(cfg)
        out_h, self.pads_h = window(height, self.pool[0], self.strides[0], self.padding)
        out_w, self.pads_w = window(width, self.pool[1], self.strides[1], self.padding)
        self.shape = (out_h, out_w, channels)
        self.weights = []

    def forward(self, ws, hs, training):
        # padded cells are -inf: max pooling ignores them
        t = nhwc_windows(hs[0], self.pads_h, self.pads_w, fill=-float("inf"))
        y = F.max_pool2d(t, self.pool, self.strides).permute(0, 2, 3, 1)
        return y, y, None

    def keras_config(self):
        return {**base_config(self), "pool_size": list(self.pool), "padding": self.padding,
                "strides": list(self.strides), "data_format": "channels_last"}


class GlobalAveragePooling2D:
    base, args = "global_average_pooling2d", set()

    def __init__(self, cfg, in_shapes):
        self.shape = (one_input(in_shapes, 3, "GlobalAveragePooling2D")[2],)
        self.weights = []

    def forward(self, ws, hs, training):
        y = hs[0].mean(dim=(1, 2))
        return y, y, None

    def keras_config(self):
        return {**base_config(self), "data_format": "channels_last"}


class Flatten:
    base, args = "flatten", set()

    def __init__(self, cfg, in_shapes):
        if len(in_shapes) != 1:
            fail("Flatten takes one input")
        self.shape = (int(np.prod(in_shapes[0])),)
        self.weights = []

    def forward(self, ws, hs, training):
        y = hs[0].reshape(hs[0].shape[0], -1)
        return y, y, None

    def keras_config(self):
        return {**base_config(self), "data_format": "channels_last"}


class Activation:
    base, args = "activation", {"activation"}

    def __init__(self, cfg, in_shapes):
        if len(in_shapes) != 1:
            fail("Activation takes one input")
        self.activation = cfg["activation"]
        self.shape = in_shapes[0]
        self.weights = []

    def forward(self, ws, hs, training):
        return ACTIVATIONS[self.activation](hs[0]), hs[0], None

    def keras_config(self):
        return {**base_config(self), "activation": self.activation}


class Add:
    base, args = "add", set()

    def __init__(self, cfg, in_shapes):
        if len(in_shapes) < 2 or any(s != in_shapes[0] for s in in_shapes):
            fail(f"Add needs two or more inputs of one shape, got {in_shapes}")
        self.shape = in_shapes[0]
        self.weights = []

    def forward(self, ws, hs, training):
        y = sum(hs[1:], hs[0])
        return y, y, None

    def keras_config(self):
        return base_config(self)


class BatchNormalization:
    """Channel axis last. Training: batch mean and biased batch variance over
    every other axis; the statistics are returned for the moving update.
    Inference: the moving statistics (weights 2 and 3)."""
    base, args = "batch_normalization", {"momentum", "epsilon"}

    def __init__(self, cfg, in_shapes):
        if len(in_shapes) != 1:
            fail("BatchNormalization takes one input")
        self.momentum = float(cfg.get("momentum", 0.99))
        self.epsilon = float(cfg.get("epsilon", 0.001))
        self.shape = in_shapes[0]
        c = (self.shape[-1],)
        self.weights = [Weight("gamma", c, "gamma"), Weight("beta", c, "small"),
                        Weight("moving_mean", c, "zeros", trainable=False),
                        Weight("moving_variance", c, "ones", trainable=False)]

    def forward(self, ws, hs, training):
        h = hs[0]
        gamma, beta, moving_mean, moving_var = ws
        if training:
            axes = tuple(range(h.dim() - 1))
            mean = h.mean(dim=axes)
            var = ((h - mean) ** 2).mean(dim=axes)
            stats = (mean, var)
        else:
            mean, var, stats = moving_mean, moving_var, None
        y = gamma * (h - mean) / torch.sqrt(var + self.epsilon) + beta
        return y, y, stats

    def moving_update(self, moving, batch):
        return moving * self.momentum + batch * (1 - self.momentum)

    def keras_config(self):
        return {**base_config(self), "axis": [len(self.shape)], "momentum": self.momentum,
                "epsilon": self.epsilon, "center": True, "scale": True,
                "beta_initializer": {"class_name": "Zeros", "config": {}},
                "gamma_initializer": {"class_name": "Ones", "config": {}},
                "moving_mean_initializer": {"class_name": "Zeros", "config": {}},
                "moving_variance_initializer": {"class_name": "Ones", "config": {}},
                "beta_regularizer": None, "gamma_regularizer": None,
                "beta_constraint": None, "gamma_constraint": None}


# ---- recurrent layers ------------------------------------------------------
#
# Keras's cells written out with torch ops, batch first (B, T, features),
# h_0 = 0 (and c_0 = 0). go_backwards: the input is read from the last step
# to the first, and the returned sequence is in that processing order (Keras
# does not flip it back). Weights in Keras layout and gate order: kernel
# (in, G*u), recurrent_kernel (u, G*u), bias (G*u) or, for GRU with
# reset_after, (2, 3u) = (input bias, recurrent bias). The weights are saved
# through the cell, "lstm/lstm_cell/kernel:0", the cell numbered like the
# layer among its class (lstm_1/lstm_cell_1/...): read_model prefixes the
# weight names with the cell name. check_recurrent compares every cell with
# torch.nn.LSTM / torch.nn.GRU (PyTorch gate orders i,f,g,o and r,z,n,
# matrices (G*u, in)), and the GRU with reset_after false, which PyTorch
# does not have, with a plain numpy loop over units.

def orthogonal(shape, rng):
    """Keras's Orthogonal (gain 1) for a 2-D shape: QR of a normal
    (max, min) matrix, columns signed by diag(R), transposed when there are
    fewer rows than columns (then the rows are orthonormal)."""
    rows, cols = shape
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    return np.ascontiguousarray(q.T if rows < cols else q, dtype=np.float32)


class Recurrent:
    """Shared by LSTM and GRU: the config, the weights, the loop over time."""
    args = {"units", "activation", "recurrent_activation", "use_bias", "return_sequences",
            "go_backwards"}

    def __init__(self, cfg, in_shapes):
        if len(in_shapes) != 1 or len(in_shapes[0]) != 2:
            fail(f"{type(self).__name__} takes one (steps, features) input, got {in_shapes}")
        self.steps, n_in = in_shapes[0]
        self.units = u = int(cfg["units"])
        self.activation = cfg.get("activation", "tanh")
        self.recurrent_activation = cfg.get("recurrent_activation", "sigmoid")
        self.use_bias = bool(cfg.get("use_bias", True))
        self.return_sequences = bool(cfg.get("return_sequences", False))
        self.go_backwards = bool(cfg.get("go_backwards", False))
        self.shape = (self.steps, u) if self.return_sequences else (u,)
        g = self.gates * u
        self.weights = [Weight("kernel", (n_in, g), "glorot", (n_in, g)),
                        Weight("recurrent_kernel", (u, g), "orthogonal")]
        if self.use_bias:
            self.weights.append(Weight("bias", self.bias_shape(), "small"))

    def bias_shape(self):
        return (self.gates * self.units,)

    def forward(self, ws, hs, training):
        x = hs[0].flip(1) if self.go_backwards else hs[0]
        kernel, rec = ws[0], ws[1]
        bias = ws[2] if self.use_bias else None
        h = torch.zeros(x.shape[0], self.units)
        state, outs = self.initial_state(h), []
        for t in range(x.shape[1]):
            h, state = self.step(x[:, t], h, state, kernel, rec, bias)
            outs.append(h)
        y = torch.stack(outs, dim=1) if self.return_sequences else h
        return y, y, None

    def keras_config(self):
        cfg = {**base_config(self), "return_sequences": self.return_sequences,
               "return_state": False, "go_backwards": self.go_backwards, "stateful": False,
               "unroll": False, "time_major": False, "units": self.units,
               "activation": self.activation, "recurrent_activation": self.recurrent_activation,
               "use_bias": self.use_bias,
               "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
               "recurrent_initializer": {"class_name": "Orthogonal",
                                         "config": {"gain": 1.0, "seed": None}},
               "bias_initializer": {"class_name": "Zeros", "config": {}}}
        cfg.update(self.extra_config())
        cfg.update({"kernel_regularizer": None, "recurrent_regularizer": None,
                    "bias_regularizer": None, "activity_regularizer": None,
                    "kernel_constraint": None, "recurrent_constraint": None,
                    "bias_constraint": None, "dropout": 0.0, "recurrent_dropout": 0.0,
                    "implementation": 2})
        if "reset_after" in cfg:  # tf.keras 2.4 writes it last
            cfg["reset_after"] = cfg.pop("reset_after")
        return cfg


class LSTM(Recurrent):
    """z = x W + h U + b, gates i, f, c, o: i, f, o = recurrent_activation,
    c~ = activation; c = f c + i c~; h = o activation(c)."""
    base, cell, gates = "lstm", "lstm_cell", 4

    def initial_state(self, h):
        return torch.zeros_like(h)

    def step(self, x, h, c, kernel, rec, bias):
        z = x @ kernel + h @ rec
        if bias is not None:
            z = z + bias
        i, f, cc, o = z.split(self.units, dim=1)
        ra, act = ACTIVATIONS[self.recurrent_activation], ACTIVATIONS[self.activation]
        c = ra(f) * c + ra(i) * act(cc)
        return ra(o) * act(c), c

    def extra_config(self):
        return {"unit_forget_bias": True}


class GRU(Recurrent):
    """Gates z, r, h. reset_after (bias (2, 3u)): xw = x W + b_in, hu = h U +
    b_rec; z, r = recurrent_activation(xw + hu); h~ = activation(xw_h + r *
    hu_h). reset_after false (bias (3u)): z, r as before with one bias, h~ =
    activation(x W_h + b_h + (r h) U_h). Then h = z h_prev + (1 - z) h~."""
    base, cell, gates = "gru", "gru_cell", 3
    args = Recurrent.args | {"reset_after"}

    def __init__(self, cfg, in_shapes):
        self.reset_after = bool(cfg.get("reset_after", True))
        super().__init__(cfg, in_shapes)

    def bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def initial_state(self, h):
        return None

    def step(self, x, h, state, kernel, rec, bias):
        u = self.units
        ra, act = ACTIVATIONS[self.recurrent_activation], ACTIVATIONS[self.activation]
        xw = x @ kernel
        if self.reset_after:
            hu = h @ rec
            if bias is not None:
                xw, hu = xw + bias[0], hu + bias[1]
            z = ra(xw[:, :u] + hu[:, :u])
            r = ra(xw[:, u:2 * u] + hu[:, u:2 * u])
            hh = act(xw[:, 2 * u:] + r * hu[:, 2 * u:])
        else:
            if bias is not None:
                xw = xw + bias
            hu = h @ rec[:, :2 * u]
            z = ra(xw[:, :u] + hu[:, :u])
            r = ra(xw[:, u:2 * u] + hu[:, u:])
            hh = act(xw[:, 2 * u:] + (r * h) @ rec[:, 2 * u:])
        return z * h + (1 - z) * hh, None

    def extra_config(self):
        return {"reset_after": self.reset_after}


LAYER_CLASSES = {cls.__name__: cls for cls in (
    Dense, Conv2D, MaxPooling2D, GlobalAveragePooling2D, Flatten, Activation, Add,
    BatchNormalization, LSTM, GRU)}


# ---- model file ------------------------------------------------------------

def one_key(item, what):
    if isinstance(item, str):
        return item, {}
    if not isinstance(item, dict) or len(item) != 1:
        fail(f"{what} must be a name or a one-key map: {item!r}")
    (key, val), = item.items()
    return key, (val or {})


def read_model(path):
    """The subset of the model format these golden models use: one input,
    layers of LAYER_CLASSES connected by `inputs:` (default: the layer
    before), one output (the last layer), one loss, SGD or Adam, one metric.
    Each layer gets .cls, .name, .inputs and .first (the index of its first
    weight in the model's flat weight list)."""
    with open(path) as f:
        doc = yaml.safe_load(f)
    if len(doc["inputs"]) != 1:
        fail(f"{path}: exactly one input expected")
    inp = doc["inputs"][0]
    shapes = {inp["name"]: tuple(inp["shape"])}
    layers, counts, prev, first = [], {}, inp["name"], 0
    for item in doc["layers"]:
        cls, cfg = one_key(item, "layer")
        if cls not in LAYER_CLASSES:
            fail(f"{path}: layer class {cls} is not supported here")
        kind = LAYER_CLASSES[cls]
        unknown = set(cfg) - kind.args - {"name", "inputs"}
        if unknown:
            fail(f"{path}: unsupported {cls} arguments {sorted(unknown)}")
        if "name" in cfg:
            name = cfg["name"]
        else:  # Keras: default names counted per class, from 0 without a suffix
            n = counts.get(kind.base, 0)
            counts[kind.base] = n + 1
            name = kind.base if n == 0 else f"{kind.base}_{n}"
        inputs = cfg.get("inputs", prev)
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        for i in inputs:
            if i not in shapes:
                fail(f"{path}: layer {name}: unknown input {i}")
        layer = kind(cfg, [shapes[i] for i in inputs])
        layer.cls, layer.name, layer.inputs, layer.first = cls, name, inputs, first
        if hasattr(kind, "cell"):  # the weights live in the cell: lstm/lstm_cell/kernel:0
            n = counts.get(kind.cell, 0)
            counts[kind.cell] = n + 1
            cell = kind.cell if n == 0 else f"{kind.cell}_{n}"
            for w in layer.weights:
                w.name = f"{cell}/{w.name}"
        first += len(layer.weights)
        shapes[name] = layer.shape
        layers.append(layer)
        prev = name
    if doc.get("outputs", [prev]) != [prev]:
        fail(f"{path}: the output must be the last layer")
    comp = doc["compile"]
    opt_name, opt_args = one_key(comp["optimizer"], "optimizer")
    chain = all(layer.inputs == [p] for layer, p in
                zip(layers, [inp["name"]] + [layer.name for layer in layers]))
    return {
        "name": doc["name"],
        "input": {"name": inp["name"], "shape": list(inp["shape"])},
        "layers": layers,
        "output": layers[-1],
        "sequential": chain,  # written as a Keras Sequential model, else Functional
        "weights": [w for layer in layers for w in layer.weights],
        "loss": comp["loss"],
        "optimizer": (opt_name, dict(opt_args)),
        "metrics": list(comp.get("metrics", [])),
    }


# ---- forward, loss, metrics (float64 torch) -------------------------------

def forward(model, weights, x, training):
    """Every layer's (output, pre-activation) by name, and the batch
    statistics {layer name: (mean, biased var)} of each BatchNormalization
    in training mode."""
    acts, pre, stats = {model["input"]["name"]: x}, {}, {}
    for layer in model["layers"]:
        ws = weights[layer.first: layer.first + len(layer.weights)]
        out, z, st = layer.forward(ws, [acts[i] for i in layer.inputs], training)
        acts[layer.name], pre[layer.name] = out, z
        if st is not None:
            stats[layer.name] = st
    return acts, pre, stats


def loss_of(model, weights, x, y, training=True):
    acts, pre, _ = forward(model, weights, x, training)
    out_layer = model["output"]
    out, logits = acts[out_layer.name], pre[out_layer.name]
    loss = model["loss"]
    if loss == "sparse_categorical_crossentropy":
        if getattr(out_layer, "activation", None) != "softmax":
            fail("cross-entropy expects a softmax output here")
        # Keras takes the softmax's logits: -log softmax(z)[y], batch mean.
        nll = torch.logsumexp(logits, dim=1) - logits.gather(1, y.long()[:, None])[:, 0]
        return nll.mean()
    if loss in ("mse", "mean_squared_error"):
        return ((out - y) ** 2).mean(dim=1).mean()
    fail(f"unsupported loss {loss}")


def output_of(model, weights, x, training=False):
    return forward(model, weights, x, training)[0][model["output"].name]


def metric_of(model, weights, x, y, training=True):
    out = output_of(model, weights, x, training)
    (name,) = model["metrics"]
    if name in ("accuracy", "sparse_categorical_accuracy"):
        return (out.argmax(dim=1) == y.long()).double().mean()
    if name == "mae":
        return (out - y).abs().mean(dim=1).mean()
    fail(f"unsupported metric {name}")


def gradients(model, weights, x, y):
    """d (training-mode loss) / d every weight; 0 for the moving statistics,
    which the training-mode loss does not read."""
    ws = [w.clone().requires_grad_(True) for w in weights]
    grads = torch.autograd.grad(loss_of(model, ws, x, y), ws, allow_unused=True)
    return [torch.zeros_like(w) if g is None else g.detach() for w, g in zip(weights, grads)]


def trainable(model):
    return [i for i, w in enumerate(model["weights"]) if w.trainable]


def moving_updates(model, weights, stats):
    """The weights with each BatchNormalization's moving mean and variance
    moved towards the batch statistics `stats` (Keras: moving * momentum +
    batch * (1 - momentum), the biased variance)."""
    new = list(weights)
    for layer in model["layers"]:
        if layer.name in stats:
            mean, var = stats[layer.name]
            i = layer.first + 2
            new[i] = layer.moving_update(weights[i], mean)
            new[i + 1] = layer.moving_update(weights[i + 1], var)
    return new


def train_step(model, opt, weights, x, y):
    """Keras's train_step: the optimizer updates the trainable weights with
    the training-mode gradients at `weights`; the forward pass of the same
    step updates the moving statistics. Returns (new weights, gradients)."""
    grads = gradients(model, weights, x, y)
    _, _, stats = forward(model, weights, x, training=True)
    t = trainable(model)
    new = moving_updates(model, weights, stats)
    for i, w in zip(t, opt.step([weights[i] for i in t], [grads[i] for i in t])):
        new[i] = w
    return new, grads


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
    """Central finite differences of the float64 training-mode loss, every
    weight (the moving statistics included: their difference must be 0)."""
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
        fail(f"autograd vs finite differences: rel err {worst:.3g}")
    return worst


def check_with_torch_optim(model, w0, x, y, steps):
    """Replays the steps with torch.optim on the trainable weights and
    compares. torch SGD keeps v' = -v/lr; torch Adam divides by sqrt(v_hat) +
    eps, which equals Keras's update when its eps is set to eps/sqrt(1 - b2^t)
    at step t. (The moving statistics do not enter the training-mode loss.)"""
    name, args = model["optimizer"]
    t = trainable(model)
    params = [w0[i].clone().requires_grad_(True) for i in t]
    if name == "SGD":
        opt = torch.optim.SGD(params, lr=args.get("learning_rate", 0.01),
                              momentum=args.get("momentum", 0.0),
                              nesterov=args.get("nesterov", False))
    else:
        b1, b2 = args.get("beta_1", 0.9), args.get("beta_2", 0.999)
        eps = args.get("epsilon", 1e-7)
        opt = torch.optim.Adam(params, lr=args.get("learning_rate", 0.001), betas=(b1, b2))
    worst = 0.0
    for step, expected in enumerate(steps, start=1):
        if name == "Adam":
            opt.param_groups[0]["eps"] = eps / (1 - b2 ** step) ** 0.5
        opt.zero_grad()
        weights = list(w0)
        for i, p in zip(t, params):
            weights[i] = p
        loss_of(model, weights, x, y).backward()
        opt.step()
        for i, p in zip(t, params):
            worst = max(worst, float((p.detach() - expected[i]).abs().max()))
    if worst > 1e-12:
        fail(f"Keras update vs torch.optim differ by {worst:.3g}")
    return worst


def keras_windows(x, k, strides, padding, fill):
    """(N,H,W,C) numpy -> (N,OH,OW,kh,kw,C): the input window of every output
    cell, placed by Keras's rule (pad before = total // 2), cells outside the
    input = fill. Deliberately a plain loop, independent of F.pad/NCHW."""
    n, height, width, c = x.shape
    out_h, (top, _) = window(height, k[0], strides[0], padding)
    out_w, (left, _) = window(width, k[1], strides[1], padding)
    win = np.full((n, out_h, out_w, k[0], k[1], c), fill)
    for i in range(out_h):
        for j in range(out_w):
            for a in range(k[0]):
                for b in range(k[1]):
                    r, s = i * strides[0] - top + a, j * strides[1] - left + b
                    if 0 <= r < height and 0 <= s < width:
                        win[:, i, j, a, b, :] = x[:, r, s, :]
    return win


def check_windows(model, weights, x):
    """Every Conv2D (pre-activation) and MaxPooling2D against keras_windows."""
    acts, pre, _ = forward(model, weights, x, training=True)
    worst = 0.0
    for layer in model["layers"]:
        h = acts[layer.inputs[0]].numpy()
        if isinstance(layer, Conv2D):
            ws = weights[layer.first: layer.first + len(layer.weights)]
            win = keras_windows(h, layer.kernel, layer.strides, layer.padding, 0.0)
            want = np.einsum("nijabc,abco->nijo", win, ws[0].numpy())
            if layer.use_bias:
                want = want + ws[1].numpy()
        elif isinstance(layer, MaxPooling2D):
            win = keras_windows(h, layer.pool, layer.strides, layer.padding, -np.inf)
            want = win.max(axis=(3, 4))
        else:
            continue
        worst = max(worst, float(np.abs(pre[layer.name].numpy() - want).max()))
    if worst > 1e-12:
        fail(f"conv/pool vs Keras's window loop differ by {worst:.3g}")
    return worst


def check_batch_norm(model, weights, x, w_next):
    """Every BatchNormalization's training-mode output and moving update
    against torch's F.batch_norm. PyTorch moves its running variance towards
    the unbiased batch variance, var * n/(n-1); Keras (this script, nncc)
    towards the biased one: the check converts."""
    acts, _, _ = forward(model, weights, x, training=True)
    worst = 0.0
    for layer in model["layers"]:
        if not isinstance(layer, BatchNormalization):
            continue
        gamma, beta, mean0, var0 = weights[layer.first: layer.first + 4]
        h = acts[layer.inputs[0]]
        rows = h.reshape(-1, h.shape[-1])
        n = rows.shape[0]
        run_mean, run_var = mean0.clone(), var0.clone()
        y = F.batch_norm(rows, run_mean, run_var, gamma, beta, training=True,
                         momentum=1 - layer.momentum, eps=layer.epsilon)
        f = 1 - layer.momentum
        biased_var = (run_var - (1 - f) * var0) * (n - 1) / n + (1 - f) * var0
        worst = max(worst,
                    float((y.reshape(h.shape) - acts[layer.name]).abs().max()),
                    float((run_mean - w_next[layer.first + 2]).abs().max()),
                    float((biased_var - w_next[layer.first + 3]).abs().max()))
    if worst > 1e-12:
        fail(f"BatchNormalization vs F.batch_norm differ by {worst:.3g}")
    return worst


def torch_nn_recurrent(layer, ws, x):
    """The layer through torch.nn.LSTM / torch.nn.GRU with the Keras weights
    converted: PyTorch holds W (G*u, in), i.e. Keras's kernel transposed,
    and two biases (b_ih, b_hh). LSTM: the same gate order (i,f,g,o = Keras
    i,f,c,o), the one Keras bias as b_ih, b_hh = 0. GRU (reset_after
    semantics, n = tanh(W_in x + b_in + r * (W_hn h + b_hn))): gates r,z,n
    against Keras's z,r,h, so the gate blocks are reordered; b_ih, b_hh =
    Keras's input and recurrent biases. go_backwards: the input flipped, the
    output sequence left in processing order."""
    u = layer.units
    if isinstance(layer, LSTM):
        net, perm = torch.nn.LSTM(x.shape[2], u, batch_first=True, bias=layer.use_bias), None
    else:
        net = torch.nn.GRU(x.shape[2], u, batch_first=True, bias=layer.use_bias)
        perm = torch.cat([torch.arange(u, 2 * u), torch.arange(0, u), torch.arange(2 * u, 3 * u)])
    net = net.double()
    order = (lambda t: t) if perm is None else (lambda t: t[..., perm])
    with torch.no_grad():
        net.weight_ih_l0.copy_(order(ws[0]).T)
        net.weight_hh_l0.copy_(order(ws[1]).T)
        if layer.use_bias:
            if isinstance(layer, LSTM):
                net.bias_ih_l0.copy_(ws[2])
                net.bias_hh_l0.zero_()
            else:
                net.bias_ih_l0.copy_(order(ws[2][0]))
                net.bias_hh_l0.copy_(order(ws[2][1]))
        seq, _ = net(x.flip(1) if layer.go_backwards else x)
    return seq if layer.return_sequences else seq[:, -1]


def numpy_gru_reset_before(layer, ws, x):
    """GRU with reset_after false (Keras 1's and tf1's default), which torch.nn
    lacks: a plain loop over samples, steps and units of the Keras formula
    with the reset gate applied to h before the recurrent kernel."""
    kernel, rec = ws[0].numpy(), ws[1].numpy()
    bias = ws[2].numpy() if layer.use_bias else np.zeros(kernel.shape[1])
    x = x.numpy()[:, ::-1] if layer.go_backwards else x.numpy()
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))
    n_b, n_t, n_in = x.shape
    u = layer.units
    seq = np.zeros((n_b, n_t, u))
    for b in range(n_b):
        h = np.zeros(u)
        for t in range(n_t):
            z, r = np.zeros(u), np.zeros(u)
            for j in range(u):
                z[j] = sig(bias[j] + sum(x[b, t, k] * kernel[k, j] for k in range(n_in))
                           + sum(h[k] * rec[k, j] for k in range(u)))
                r[j] = sig(bias[u + j] + sum(x[b, t, k] * kernel[k, u + j] for k in range(n_in))
                           + sum(h[k] * rec[k, u + j] for k in range(u)))
            new = np.zeros(u)
            for j in range(u):
                cand = np.tanh(bias[2 * u + j]
                               + sum(x[b, t, k] * kernel[k, 2 * u + j] for k in range(n_in))
                               + sum(r[k] * h[k] * rec[k, 2 * u + j] for k in range(u)))
                new[j] = z[j] * h[j] + (1 - z[j]) * cand
            h = new
            seq[b, t] = h
    return torch.from_numpy(seq if layer.return_sequences else seq[:, -1])


def check_recurrent(model, weights, x):
    """Every LSTM and GRU (torch ops, Keras formulas) against torch.nn.LSTM /
    torch.nn.GRU, or, for GRU with reset_after false, against the numpy loop."""
    acts, _, _ = forward(model, weights, x, training=True)
    worst = 0.0
    for layer in model["layers"]:
        if not isinstance(layer, (LSTM, GRU)):
            continue
        if layer.activation != "tanh" or layer.recurrent_activation != "sigmoid":
            fail(f"{layer.name}: the self-check knows tanh and sigmoid only")
        ws = weights[layer.first: layer.first + len(layer.weights)]
        h = acts[layer.inputs[0]]
        if isinstance(layer, GRU) and not layer.reset_after:
            want = numpy_gru_reset_before(layer, ws, h)
        else:
            want = torch_nn_recurrent(layer, ws, h)
        worst = max(worst, float((want - acts[layer.name]).abs().max()))
    if worst > 1e-12:
        fail(f"recurrent cells vs torch.nn / the numpy loop differ by {worst:.3g}")
    return worst

# ---- Keras HDF5 ------------------------------------------------------------

def f32(v):
    """A hyperparameter as tf.keras stores it in its configs (float32)."""
    return float(np.float32(v))



def keras_model_config(model):
    inp = model["input"]
    input_config = {"batch_input_shape": [None] + inp["shape"], "dtype": "float32",
                    "sparse": False, "ragged": False, "name": inp["name"]}
    if model["sequential"]:
        layers = [{"class_name": "InputLayer", "config": input_config}]
        layers += [{"class_name": layer.cls, "config": layer.keras_config()}
                   for layer in model["layers"]]
        return {"class_name": "Sequential", "config": {"name": model["name"], "layers": layers}}
    layers = [{"class_name": "InputLayer", "config": input_config, "name": inp["name"],
               "inbound_nodes": []}]
    layers += [{"class_name": layer.cls, "config": layer.keras_config(), "name": layer.name,
                "inbound_nodes": [[[i, 0, 0, {}] for i in layer.inputs]]}
               for layer in model["layers"]]
    return {"class_name": "Functional", "config": {
        "name": model["name"], "layers": layers, "input_layers": [[inp["name"], 0, 0]],
        "output_layers": [[model["output"].name, 0, 0]]}}


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
    """The file tf.keras 2.4 model.save writes for an untrained model: string
    attribute types as in shared/keras_h5/*_k2.4.0.h5 (root backend/
    keras_version vlen UTF-8, configs vlen ASCII, name lists fixed length,
    an empty float64 weight_names for a layer without weights), float32
    datasets model_weights/<layer>/<layer>/<weight>:0. A Functional model
    lists its InputLayer in layer_names, a Sequential one does not."""
    utf8, ascii_ = h5py.string_dtype("utf-8"), h5py.string_dtype("ascii")
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs.create("keras_version", KERAS_VERSION, dtype=utf8)
        f.attrs.create("backend", "tensorflow", dtype=utf8)
        f.attrs.create("model_config", json.dumps(keras_model_config(model)).encode(), dtype=ascii_)
        g = f.create_group("model_weights")
        groups = [(layer.name, layer) for layer in model["layers"]]
        if not model["sequential"]:
            groups.insert(0, (model["input"]["name"], None))
        g.attrs["layer_names"] = np.array([name.encode() for name, _ in groups])
        g.attrs.create("backend", b"tensorflow", dtype=ascii_)
        g.attrs.create("keras_version", KERAS_VERSION.encode(), dtype=ascii_)
        for name, layer in groups:
            lg = g.create_group(name)
            specs = layer.weights if layer else []
            wnames = [f"{name}/{w.name}:0" for w in specs]
            lg.attrs["weight_names"] = np.array([n.encode() for n in wnames]) if wnames else np.array([])
            for k, wname in enumerate(wnames):
                lg.create_dataset(wname, data=weights[layer.first + k].astype("<f4"))
        f.attrs.create("training_config", json.dumps(keras_training_config(model)).encode(),
                       dtype=ascii_)
    os.replace(tmp, path)


# ---- driver ----------------------------------------------------------------

def initial_weight(spec, rng):
    if spec.init == "glorot":
        limit = np.sqrt(6.0 / sum(spec.fans))
        return rng.uniform(-limit, limit, spec.shape).astype(np.float32)
    if spec.init == "small":
        return rng.uniform(-0.1, 0.1, spec.shape).astype(np.float32)
    if spec.init == "gamma":
        return rng.uniform(0.5, 1.5, spec.shape).astype(np.float32)
    if spec.init == "orthogonal":
        return orthogonal(spec.shape, rng)
    return np.full(spec.shape, 1.0 if spec.init == "ones" else 0.0, np.float32)


def make_data(model, rng):
    weights = [initial_weight(w, rng) for w in model["weights"]]
    x = rng.standard_normal((BATCH, *model["input"]["shape"])).astype(np.float32)
    classes = model["output"].shape[-1]
    if model["loss"] == "sparse_categorical_crossentropy":
        y = rng.randint(0, classes, BATCH).astype(np.int32)
    else:
        y = rng.standard_normal((BATCH, classes)).astype(np.float32)
    return weights, x, y


def flat(tensors):
    return np.concatenate([t.detach().numpy().reshape(-1) for t in tensors]).astype(np.float32)


def make_one(yaml_name, folder, seed):
    model = read_model(os.path.join(HERE, yaml_name))
    w0_np, x_np, y_np = make_data(model, np.random.RandomState(seed))
    w0 = [torch.from_numpy(w.astype(np.float64)) for w in w0_np]
    x = torch.from_numpy(x_np.astype(np.float64))
    y = torch.from_numpy(y_np if y_np.dtype == np.int32 else y_np.astype(np.float64))

    out = output_of(model, w0, x, training=False)
    opt = keras_optimizer(model["optimizer"])
    w1, g1 = train_step(model, opt, w0, x, y)
    w2, _ = train_step(model, opt, w1, x, y)
    eval_losses = [float(loss_of(model, w, x, y, training=False)) for w in (w0, w1, w2)]
    eval_metrics = [float(metric_of(model, w, x, y, training=False)) for w in (w0, w1, w2)]
    losses = [float(loss_of(model, w, x, y)) for w in (w0, w1)] + eval_losses[2:]
    metrics = [float(metric_of(model, w, x, y)) for w in (w0, w1)] + eval_metrics[2:]

    fd_err = check_gradients(model, w0, x, y, g1)
    opt_err = check_with_torch_optim(model, w0, x, y, [w1, w2])
    win_err = check_windows(model, w0, x)
    bn_err = check_batch_norm(model, w0, x, w1)
    rnn_err = check_recurrent(model, w0, x)

    out_dir = os.path.join(HERE, folder)
    os.makedirs(out_dir, exist_ok=True)
    write_keras_h5(os.path.join(out_dir, "w0.h5"), model, w0_np)
    arrays = {
        "x": x_np, "y": y_np, "out": out.numpy().astype(np.float32),
        "loss": np.array(losses, np.float32), "metrics": np.array(metrics, np.float32),
        "eval_loss": np.array(eval_losses, np.float32),
        "eval_metrics": np.array(eval_metrics, np.float32),
        "grads": flat(g1), "w1": flat(w1), "w2": flat(w2),
    }
    for name, a in arrays.items():
        np.save(os.path.join(out_dir, name + ".npy"), a)

    print(f"{folder}/ ({yaml_name}: {model['optimizer'][0]} {model['optimizer'][1]}, "
          f"loss {model['loss']}, seed {seed})")
    print(f"  weights {arrays['grads'].size} floats; training loss w0,w1 = "
          + ", ".join(f"{v:.6f}" for v in losses[:2])
          + "; inference loss w0,w1,w2 = " + ", ".join(f"{v:.6f}" for v in eval_losses)
          + f"; {model['metrics'][0]} = " + ", ".join(f"{v:.4f}" for v in metrics))
    print(f"  max|grad| {np.abs(arrays['grads']).max():.4g}, "
          f"max|w1-w0| {np.abs(arrays['w1'] - flat(w0)).max():.4g}, "
          f"max|w2-w1| {np.abs(arrays['w2'] - arrays['w1']).max():.4g}")
    print(f"  checks: finite differences rel err {fd_err:.2g}, "
          f"torch.optim max diff {opt_err:.2g}, conv/pool windows {win_err:.2g}, "
          f"F.batch_norm {bn_err:.2g}, LSTM/GRU vs torch.nn {rnn_err:.2g}")


def main():
    torch.manual_seed(0)  # nothing here draws from torch; numpy seeds the data
    for yaml_name, folder, seed in MODELS:
        make_one(yaml_name, folder, seed)


if __name__ == "__main__":
    main()
