#!/usr/bin/python3
"""reference.py — an independent float64 forward pass for Keras .h5 files,
and the golden tensors nncc's .h5 importer is tested against.

It shares no code with nncc. It reads a full-model .h5 file the way Keras
does: the `model_config` JSON (json) and, for each config layer, the group
model_weights/<layer name> (h5py), taking the datasets in that group's
`weight_names` order (never HDF5's alphabetical order) and mapping them by
position (kernel, recurrent_kernel, bias; BatchNormalization gamma, beta,
moving_mean, moving_variance with gamma/beta absent when scale/center is
false). The graph is Sequential (a bare layer list in Keras <= 2.1, a dict
later; the input shape from an InputLayer's batch_shape / batch_input_shape
or the first layer's batch_input_shape) or functional (`inbound_nodes` in
the Keras 2 list form or the Keras 3 `args`/`keras_history` form; inputs and
outputs bound by `input_layers` / `output_layers`, not the layer order).
Inference mode: Dropout is the identity, BatchNormalization uses the moving
statistics. Numerics follow /work/shared/spec/keras-numerics.md; Keras 2's
hard_sigmoid is clip(0.2x+0.5, 0, 1), Keras 3's is relu6(x+3)/6 (chosen by
the file's keras_version).

Usage (Debian's /usr/bin/python3: numpy, h5py, torch):
  tests/keras_h5/reference.py                 write golden/ for all ten files
  tests/keras_h5/reference.py --check-fashion file 2 on the Fashion-MNIST
      t10k set (/usr/share/datasets/fashion-mnist, pixels/255): prints the
      accuracy, which must be 0.8721 (SOURCES.md), and the first three
      predictions [9, 2, 1]; exit status 1 otherwise.
  tests/keras_h5/reference.py --cross-check   every file run a second time
      with conv, depthwise conv, pooling, BatchNormalization, Dense and the
      recurrent layers done by torch (F.conv1d/conv2d with groups, pools,
      F.batch_norm, nn.GRU with converted weights, nn.LSTM or a torch cell
      loop in torch's weight layout for non-tanh activations), plus each
      LSTM layer against nn.LSTM with tanh/sigmoid substituted, and random
      weights for what no file has (GRU reset_after=false against a torch
      loop, SimpleRNN against nn.RNN); prints the max |difference| per file
      and per layer; exit status 1 if any is above 1e-9 (relative).
  tests/keras_h5/reference.py --sensitivity   can the committed golden
      data fail? Fourteen likely importer mistakes (Flatten order, kernel
      flip, 'same' pad side, BatchNormalization epsilon, LSTM/GRU gate
      order, GRU reset_after, Keras 3 hard_sigmoid, Dropout scaling, output
      order) each rerun on golden/*/x*.npy; prints error/tolerance, which
      must be > 1 for every row; exit status 1 otherwise.
Options: --h5-dir DIR (default <repo>/../shared/keras_h5), --out DIR
(default tests/keras_h5/golden next to this script).

Golden data: golden/<file stem>/x<i>.npy (float32, one per model input in
input_layers order, shape (n, *per-sample shape)) and y<i>.npy (float32,
one per output in output_layers order), computed in float64 from the
float32 inputs; golden/manifest.json lists shapes and tolerances. The
tolerances are set from the difference between this float64 pass and the
same pass run in float32 (see tolerance()).
"""
import argparse
import gzip
import hashlib
import itertools
import json
import math
import os
import re
import sys
import zlib

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# The ten files (SOURCES.md order), the samples per file and the inputs,
# as (kind, scale): "sparse" = uniform [0,1) on a random 15% of the pixels,
# 0 elsewhere (digit-like images, pixels/255), "pixels255" = integer pixels
# 0..255 as float (the ResNet-8 reference evaluates raw pixels, SOURCES.md
# #4), "normal" = standard normal (standardized features), "walk" = a
# random walk kept inside [0,1] (a window of MinMax-scaled prices); the
# result is multiplied by scale. Two scales are < 1 because a saturated
# softmax would hide errors: file 1's large weights (std 0.34 on 784
# inputs) give p = 1 - 1e-20 even for sparse [0,1) pixels, and standard
# normal features give file 5 p = 1 - 1e-31. Big inputs get 2 samples to
# keep the committed data small.
MODELS = [
    ("mlp_mnist_k2.3.0-tf", 2, "sparse", 0.1),
    ("mlp_fashion_mnist_k3.10.0", 2, "sparse", 1.0),
    ("cnn_lenet_mnist_k2.1.5", 2, "sparse", 1.0),
    ("cnn_resnet8_cifar10_k2.4.0", 2, "pixels255", 1.0),
    ("dscnn_wakeword_k2.14.0", 2, "normal", 0.1),
    ("lstm_stacked_stock_k2.12.0", 4, "walk", 1.0),
    ("gru_battery_soh_k3.10.0", 4, "normal", 1.0),
    ("func_2in2out_concat_k2.4.0", 4, "normal", 1.0),
    ("func_wide_deep_concat_k3.9.2", 4, "normal", 1.0),
    ("func_10in2out_lstm_conv1d_k2.2.4", 4, "normal", 1.0),
]


# ---------------------------------------------------------------- reading

def decode_names(obj, name):
    """A string-array attribute (fixed NUL-padded bytes or vlen), or its
    Keras chunks name0, name1, ... when it was too big for one header."""
    if name in obj.attrs:
        raw = list(obj.attrs[name])
    else:
        raw, k = [], 0
        while f"{name}{k}" in obj.attrs:
            raw += list(obj.attrs[f"{name}{k}"])
            k += 1
    return [r.decode("utf8") if isinstance(r, bytes) else str(r) for r in raw]


def attr_str(obj, name):
    v = obj.attrs[name]
    return v.decode("utf8") if isinstance(v, bytes) else str(v)


class Layer:
    """One config layer: class, config, weights (in weight_names order) and
    its call nodes, each a list of (layer, node_index, tensor_index)."""

    def __init__(self, class_name, config, weights, nodes):
        self.cls = class_name
        self.cfg = config
        self.name = config["name"]
        self.weights = weights
        self.nodes = nodes


class Model:
    """The whole file: layers by name, the model inputs as
    (layer, node, tensor) refs with per-sample shapes, and the outputs."""

    def __init__(self, path):
        self.path = path
        self.stem = os.path.splitext(os.path.basename(path))[0]
        with h5py.File(path, "r") as f:
            if "model_config" not in f.attrs:
                raise ValueError(f"{path}: no model_config (weights only?)")
            self.keras_version = attr_str(f, "keras_version")
            top = json.loads(attr_str(f, "model_config"))
            mw = f["model_weights"]
            self.kind = top["class_name"]
            cfg = top["config"]
            entries = cfg if isinstance(cfg, list) else cfg["layers"]
            self.layers = {}
            order = []
            for e in entries:
                c = e["config"]
                if "name" not in c:
                    c["name"] = e["name"]
                w = []
                if c["name"] in mw:
                    g = mw[c["name"]]
                    w = [np.asarray(g[n], dtype=np.float64) for n in decode_names(g, "weight_names")]
                nodes = [parse_node(n) for n in e.get("inbound_nodes", [])]
                self.layers[c["name"]] = Layer(e["class_name"], c, w, nodes)
                order.append(c["name"])
        self.keras3 = int(self.keras_version.split(".")[0]) >= 3
        if self.kind == "Sequential":
            self._chain(order)
        elif self.kind in ("Functional", "Model"):
            self.inputs = [tuple(r) for r in cfg["input_layers"]]
            self.outputs = [tuple(r) for r in cfg["output_layers"]]
        else:
            raise ValueError(f"{path}: unknown model class {self.kind}")
        self.input_shapes = []
        for name, _, _ in self.inputs:
            c = self.layers[name].cfg
            shape = c.get("batch_shape") or c.get("batch_input_shape")
            self.input_shapes.append(tuple(shape[1:]))

    def _chain(self, order):
        """Sequential: link each layer to the previous one; make an
        InputLayer when the shape is only on the first layer."""
        first = self.layers[order[0]]
        if first.cls != "InputLayer":
            shape = first.cfg.get("batch_input_shape") or first.cfg.get("batch_shape")
            if shape is None:
                raise ValueError(f"{self.path}: Sequential without an input shape")
            name = order[0] + "_input"  # what Keras 2 names it
            self.layers[name] = Layer("InputLayer", {"name": name, "batch_input_shape": shape}, [], [])
            order = [name] + order
        for prev, cur in zip(order, order[1:]):
            self.layers[cur].nodes = [[(prev, 0, 0)]]
        self.inputs = [(order[0], 0, 0)]
        self.outputs = [(order[-1], 0, 0)]

    def sha256(self):
        with open(self.path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()


def parse_node(node):
    """One call node -> [(layer, node_index, tensor_index), ...]."""
    if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
        refs = []
        collect_keras3(node.get("args", []), refs)
        kw = []
        collect_keras3(node.get("kwargs", {}), kw)
        if kw:
            raise NotImplementedError(f"tensor keyword arguments {kw}")
        return refs
    return [(e[0], e[1], e[2]) for e in node]  # Keras 2: [[name, node, tensor, kwargs], ...]


def collect_keras3(obj, refs):
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            h = obj["config"]["keras_history"]
            refs.append((h[0], h[1], h[2]))
        else:
            for v in obj.values():
                collect_keras3(v, refs)
    elif isinstance(obj, list):
        for v in obj:
            collect_keras3(v, refs)


# ---------------------------------------------------------------- ops (numpy)
# Tensors are channels_last with the batch first: Dense (N, ..., in),
# Conv1D (N, T, C), Conv2D (N, H, W, C), RNNs (N, T, F).

def activation(name, x, keras3):
    if isinstance(name, dict):
        name = name.get("config", {}).get("name") or name["class_name"]
    name = name.lower()
    if name == "linear":
        return x
    if name == "relu":
        return np.maximum(x, 0)
    if name == "relu6":
        return np.clip(x, 0, 6)
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return 0.5 * (1 + np.tanh(0.5 * x))  # = 1/(1+exp(-x)), no overflow
    if name == "hard_sigmoid":
        return np.clip(x + 3, 0, 6) / 6 if keras3 else np.clip(0.2 * x + 0.5, 0, 1)
    if name == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if name == "elu":
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))
    if name == "selu":
        a, s = 1.6732632423543772, 1.0507009873554805
        return s * np.where(x > 0, x, a * np.expm1(np.minimum(x, 0)))
    if name == "softplus":
        return np.logaddexp(0, x)
    if name == "softsign":
        return x / (1 + np.abs(x))
    if name in ("swish", "silu"):
        return x * 0.5 * (1 + np.tanh(0.5 * x))
    if name == "exponential":
        return np.exp(x)
    raise NotImplementedError(f"activation {name}")


def same_pads(size, k, s, d):
    """Keras/TF 'same': out = ceil(in/s), the odd pad cell goes after."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


SAME_PADS = same_pads


def spatial_pads(x, ks, ss, ds, padding):
    if padding == "valid":
        return [(0, 0)] * len(ks)
    if padding == "same":
        return [same_pads(x.shape[1 + i], ks[i], ss[i], ds[i]) for i in range(len(ks))]
    if padding == "causal":
        return [((ks[0] - 1) * ds[0], 0)]
    raise NotImplementedError(f"padding {padding}")


def windows(x, ks, ss, ds, pads, fill):
    """Yield (offset, patch) over the kernel window: patch (N, *out, C) is
    the input cell each output position sees at that kernel offset."""
    xp = np.pad(x, [(0, 0)] + list(pads) + [(0, 0)], constant_values=fill)
    outs = [(xp.shape[1 + i] - (ks[i] - 1) * ds[i] - 1) // ss[i] + 1 for i in range(len(ks))]
    for off in itertools.product(*[range(k) for k in ks]):
        sl = tuple(slice(o * d, o * d + (n - 1) * s + 1, s) for o, d, n, s in zip(off, ds, outs, ss))
        yield off, xp[(slice(None),) + sl]


def conv(x, kernel, bias, cfg, depthwise=False):
    """ConvND / DepthwiseConv2D, cross-correlation like TF:
    y[n,p,o] = sum_{offset,c} x[n, p*s + offset*d - pad_before, c] * K[offset,c,o].
    Depthwise output channel c*M+m = x[...,c] * K[offset,c,m]."""
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise NotImplementedError("channels_first")
    if cfg.get("groups", 1) != 1:
        raise NotImplementedError("groups")
    ks = kernel.shape[:-2]
    ss, ds = list(cfg["strides"]), list(cfg.get("dilation_rate", [1] * len(ks)))
    pads = spatial_pads(x, ks, ss, ds, cfg["padding"])
    y = None
    for off, patch in windows(x, ks, ss, ds, pads, 0):
        if depthwise:
            t = (patch[..., :, None] * kernel[off]).reshape(patch.shape[:-1] + (-1,))
        else:
            t = patch @ kernel[off]
        y = t if y is None else y + t
    return y if bias is None else y + bias


def pool(x, cfg, kind):
    """MaxPooling / AveragePooling ND; padded cells are ignored (max) or not
    counted (average)."""
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise NotImplementedError("channels_first")
    ks = list(cfg["pool_size"])
    ss = list(cfg.get("strides") or ks)
    ds = [1] * len(ks)
    pads = spatial_pads(x, ks, ss, ds, cfg["padding"])
    if kind == "max":
        return np.maximum.reduce([p for _, p in windows(x, ks, ss, ds, pads, -np.inf)])
    total = sum(p for _, p in windows(x, ks, ss, ds, pads, 0))
    count = sum(p for _, p in windows(np.ones_like(x[:1, ..., :1]), ks, ss, ds, pads, 0))
    return total / count


def batch_norm_params(layer):
    c = layer.cfg
    w = list(layer.weights)
    gamma = w.pop(0) if c.get("scale", True) else None
    beta = w.pop(0) if c.get("center", True) else None
    mean, var = w
    return gamma, beta, mean, var


def bn_axis(cfg, rank):
    axis = cfg.get("axis", -1)
    if isinstance(axis, list):
        if len(axis) != 1:
            raise NotImplementedError(f"BatchNormalization axis {axis}")
        axis = axis[0]
    return axis % rank


def batch_norm(x, layer):
    """y = (x - moving_mean) / sqrt(moving_variance + eps) * gamma + beta."""
    gamma, beta, mean, var = batch_norm_params(layer)
    axis = bn_axis(layer.cfg, x.ndim)
    shape = [1] * x.ndim
    shape[axis] = -1
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + layer.cfg.get("epsilon", 1e-3))
    if gamma is not None:
        y = y * gamma.reshape(shape)
    if beta is not None:
        y = y + beta.reshape(shape)
    return y


def rnn_weights(layer):
    w = layer.weights
    k, u = w[0], w[1]
    b = w[2] if layer.cfg.get("use_bias", True) else None
    return k, u, b


def run_rnn(layer, x, step, state0):
    """Common RNN driver: time loop over x (N, T, F), go_backwards reverses
    the input (and the returned sequence is in processing order, as Keras)."""
    c = layer.cfg
    for flag in ("stateful", "return_state", "time_major"):
        if c.get(flag):
            raise NotImplementedError(f"{layer.cls} {flag}")
    if c.get("go_backwards"):
        x = x[:, ::-1]
    state, hs = state0, []
    for t in range(x.shape[1]):
        state = step(x[:, t], state)
        hs.append(state[0])
    return np.stack(hs, axis=1) if c.get("return_sequences") else hs[-1]


def lstm(layer, x, k3, act=None, rec_act=None):
    """gates i, f, c, o: z = x W + h U + b; c = f*c + i*act(z_c);
    h = o*act(c)."""
    kernel, rec, bias = rnn_weights(layer)
    u = rec.shape[0]
    act = act or layer.cfg.get("activation", "tanh")
    rec_act = rec_act or layer.cfg.get("recurrent_activation", "sigmoid")

    def step(xt, state):
        h, c = state
        z = xt @ kernel + h @ rec
        if bias is not None:
            z = z + bias
        i = activation(rec_act, z[:, :u], k3)
        f = activation(rec_act, z[:, u:2 * u], k3)
        g = activation(act, z[:, 2 * u:3 * u], k3)
        o = activation(rec_act, z[:, 3 * u:], k3)
        c = f * c + i * g
        return o * activation(act, c, k3), c

    zero = np.zeros((x.shape[0], u), x.dtype)
    return run_rnn(layer, x, step, (zero, zero))


def gru(layer, x, k3):
    """gates z, r, h. reset_after: bias [2, 3u] (input, recurrent),
    h~ = act(x W_h + b_xh + r*(h U_h + b_hh)); otherwise bias [3u],
    h~ = act(x W_h + b_h + (r*h) U_h). h = z*h + (1-z)*h~."""
    kernel, rec, bias = rnn_weights(layer)
    u = rec.shape[0]
    c = layer.cfg
    act, rec_act = c.get("activation", "tanh"), c.get("recurrent_activation", "sigmoid")
    reset_after = c.get("reset_after", False)
    if bias is None:
        bias = np.zeros((2, 3 * u) if reset_after else (3 * u,), x.dtype)
    if reset_after and bias.shape != (2, 3 * u):
        raise ValueError(f"{layer.name}: reset_after GRU bias shape {bias.shape}")
    if not reset_after and bias.shape != (3 * u,):
        raise ValueError(f"{layer.name}: GRU bias shape {bias.shape}")

    def step(xt, state):
        (h,) = state
        if reset_after:
            xz = xt @ kernel + bias[0]
            hz = h @ rec + bias[1]
            z = activation(rec_act, xz[:, :u] + hz[:, :u], k3)
            r = activation(rec_act, xz[:, u:2 * u] + hz[:, u:2 * u], k3)
            hh = activation(act, xz[:, 2 * u:] + r * hz[:, 2 * u:], k3)
        else:
            xz = xt @ kernel + bias
            z = activation(rec_act, xz[:, :u] + h @ rec[:, :u], k3)
            r = activation(rec_act, xz[:, u:2 * u] + h @ rec[:, u:2 * u], k3)
            hh = activation(act, xz[:, 2 * u:] + (r * h) @ rec[:, 2 * u:], k3)
        return (z * h + (1 - z) * hh,)

    return run_rnn(layer, x, step, (np.zeros((x.shape[0], u), x.dtype),))


def simple_rnn(layer, x, k3):
    """h = act(x W + h U + b)."""
    kernel, rec, bias = rnn_weights(layer)
    act = layer.cfg.get("activation", "tanh")

    def step(xt, state):
        z = xt @ kernel + state[0] @ rec
        return (activation(act, z if bias is None else z + bias, k3),)

    return run_rnn(layer, x, step, (np.zeros((x.shape[0], rec.shape[0]), x.dtype),))


def split_kernel_bias(layer, kernel_count=1):
    w = layer.weights
    if len(w) != kernel_count + (1 if layer.cfg.get("use_bias", True) else 0):
        raise ValueError(f"{layer.name}: {len(w)} weights")
    return w[0], (w[1] if len(w) > 1 else None)


class NumpyOps:
    """Layer class -> forward. Each takes (layer, inputs list, keras3)."""

    def dense(self, layer, x, k3):
        kernel, bias = split_kernel_bias(layer)
        y = x @ kernel
        return activation(layer.cfg.get("activation", "linear"), y if bias is None else y + bias, k3)

    def conv(self, layer, x, k3):
        kernel, bias = split_kernel_bias(layer)
        depthwise = layer.cls == "DepthwiseConv2D"
        return activation(layer.cfg.get("activation", "linear"), conv(x, kernel, bias, layer.cfg, depthwise), k3)

    def pool(self, layer, x, kind):
        return pool(x, layer.cfg, kind)

    def batch_norm(self, layer, x):
        return batch_norm(x, layer)

    def lstm(self, layer, x, k3):
        return lstm(layer, x, k3)

    def gru(self, layer, x, k3):
        return gru(layer, x, k3)

    def simple_rnn(self, layer, x, k3):
        return simple_rnn(layer, x, k3)


def forward_layer(ops, layer, xs, k3):
    c, cls = layer.cfg, layer.cls
    x = xs[0]
    if cls in ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout"):
        return x
    if cls == "Dense":
        return ops.dense(layer, x, k3)
    if cls in ("Conv1D", "Conv2D", "DepthwiseConv2D"):
        return ops.conv(layer, x, k3)
    if cls in ("MaxPooling1D", "MaxPooling2D"):
        return ops.pool(layer, x, "max")
    if cls in ("AveragePooling1D", "AveragePooling2D"):
        return ops.pool(layer, x, "avg")
    if cls == "BatchNormalization":
        return ops.batch_norm(layer, x)
    if cls == "Activation":
        return activation(c["activation"], x, k3)
    if cls == "ReLU" and not c.get("max_value") and not c.get("negative_slope") and not c.get("threshold"):
        return np.maximum(x, 0)
    if cls == "Flatten":
        if c.get("data_format", "channels_last") != "channels_last" and x.ndim > 2:
            raise NotImplementedError("Flatten channels_first")
        return x.reshape(x.shape[0], -1)
    if cls == "Reshape":
        return x.reshape((x.shape[0],) + tuple(c["target_shape"]))
    if cls == "Add":
        return sum(xs[1:], xs[0])
    if cls == "Concatenate":
        return np.concatenate(xs, axis=c.get("axis", -1))
    if cls == "LSTM":
        return ops.lstm(layer, x, k3)
    if cls == "GRU":
        return ops.gru(layer, x, k3)
    if cls == "SimpleRNN":
        return ops.simple_rnn(layer, x, k3)
    raise NotImplementedError(f"layer {layer.name}: class {cls}")


FORWARD_LAYER = forward_layer


def predict(model, xs, ops=None, dtype=np.float64):
    """Run the model on inputs xs (input_layers order); outputs in
    output_layers order. All weights and arithmetic in `dtype`."""
    ops = ops or NumpyOps()
    saved = {n: l.weights for n, l in model.layers.items()}
    for l in model.layers.values():
        l.weights = [w.astype(dtype) for w in l.weights]
    try:
        memo = {}
        for (name, node, tensor), x in zip(model.inputs, xs):
            memo[(name, node, tensor)] = np.asarray(x, dtype=dtype)

        def value(ref):
            if ref in memo:
                return memo[ref]
            name, node, tensor = ref
            layer = model.layers[name]
            if layer.cls == "InputLayer":
                raise ValueError(f"input {name} not fed")
            if tensor != 0:
                raise NotImplementedError(f"{name}: output tensor {tensor}")
            xs_in = [value(r) for r in layer.nodes[node]]
            y = forward_layer(ops, layer, xs_in, model.keras3)
            memo[ref] = y
            return y

        return [value(r) for r in model.outputs]
    finally:
        for n, w in saved.items():
            model.layers[n].weights = w


# ---------------------------------------------------------------- inputs

def make_inputs(model, n, kind, scale):
    """Deterministic inputs: the seed is crc32 of the file stem."""
    rng = np.random.default_rng(zlib.crc32(model.stem.encode()))
    xs = []
    for shape in model.input_shapes:
        if kind == "sparse":
            x = rng.random((n,) + shape) * (rng.random((n,) + shape) < 0.15)
        elif kind == "pixels255":
            x = rng.integers(0, 256, (n,) + shape).astype(np.float64)
        elif kind == "normal":
            x = rng.standard_normal((n,) + shape)
        elif kind == "walk":
            steps = 0.03 * rng.standard_normal((n,) + shape)
            x = np.clip(rng.uniform(0.2, 0.8, (n,) + (1,) * len(shape)) + np.cumsum(steps, axis=1), 0, 1)
        else:
            raise ValueError(kind)
        xs.append((scale * x).astype(np.float32))
    return xs


def tolerance(ys64, ys32):
    """Recommended |got - golden| <= atol + rtol*|golden| for a float32
    implementation: rtol 1e-4, and atol 10x the observed float32-vs-float64
    error of this reference, rounded up to 1, 2 or 5 x 10^k, at least 1e-5
    times the output's largest magnitude."""
    err = max(float(np.max(np.abs(a - b))) for a, b in zip(ys64, ys32))
    scale = max(float(np.max(np.abs(a))) for a in ys64)
    want = max(10 * err, 1e-5 * max(scale, 1.0))
    e = math.floor(math.log10(want))
    for m in (1, 2, 5, 10):
        if m * 10 ** e >= want:
            return err, float(f"{m * 10 ** e:.0e}")


def generate(h5_dir, out_dir):
    manifest = {"generated_by": "tests/keras_h5/reference.py (float64 forward pass)",
                "compare": "|y - golden| <= atol + rtol*|golden| elementwise",
                "models": []}
    total = 0
    for stem, n, kind, scale in MODELS:
        m = Model(os.path.join(h5_dir, stem + ".h5"))
        xs = make_inputs(m, n, kind, scale)
        ys = predict(m, xs)
        ys32 = predict(m, xs, dtype=np.float32)
        err32, atol = tolerance(ys, ys32)
        d = os.path.join(out_dir, stem)
        os.makedirs(d, exist_ok=True)
        for old in os.listdir(d):
            if old.endswith(".npy"):
                os.remove(os.path.join(d, old))
        entry = {"file": stem + ".h5", "sha256": m.sha256(), "keras_version": m.keras_version,
                 "model_class": m.kind, "samples": n, "input_kind": kind, "input_scale": scale,
                 "inputs": [], "outputs": [],
                 "tolerance": {"atol": atol, "rtol": 1e-4},
                 "float32_vs_float64_max_abs": float(f"{err32:.3g}")}
        for i, (x, ref, shape) in enumerate(zip(xs, m.inputs, m.input_shapes)):
            np.save(os.path.join(d, f"x{i}.npy"), x)
            entry["inputs"].append({"npy": f"x{i}.npy", "name": ref[0], "shape": [n] + list(shape)})
        for i, (y, ref) in enumerate(zip(ys, m.outputs)):
            np.save(os.path.join(d, f"y{i}.npy"), y.astype(np.float32))
            entry["outputs"].append({"npy": f"y{i}.npy", "name": ref[0], "shape": list(y.shape),
                                     "max_abs": float(f"{np.max(np.abs(y)):.4g}")})
        total += sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        manifest["models"].append(entry)
        print(f"{stem:36} in {[e['shape'] for e in entry['inputs']]} out {[e['shape'] for e in entry['outputs']]}"
              f" f32-err {err32:.2e} atol {atol:g}")
    text = json.dumps(manifest, indent=1)
    text = re.sub(r"\[\s*([-0-9.e,\s]*?)\s*\]", lambda mt: "[" + re.sub(r"\s+", " ", mt.group(1)) + "]", text)
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        f.write(text + "\n")
    print(f"golden data: {total} bytes of .npy in {out_dir}")


# ---------------------------------------------------------------- self-checks

def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def check_fashion(h5_dir):
    d = "/usr/share/datasets/fashion-mnist"
    images = read_idx(os.path.join(d, "t10k-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(d, "t10k-labels-idx1-ubyte.gz"))
    m = Model(os.path.join(h5_dir, "mlp_fashion_mnist_k3.10.0.h5"))
    x = (images.astype(np.float64) / 255.0).reshape((-1,) + m.input_shapes[0])
    (y,) = predict(m, [x])
    pred = y.argmax(axis=1)
    acc = float(np.mean(pred == labels))
    print(f"fashion-mnist t10k: {len(labels)} images, accuracy {acc:.4f}, first predictions {pred[:3].tolist()}")
    ok = f"{acc:.4f}" == "0.8721" and pred[:3].tolist() == [9, 2, 1]
    print("ok (SOURCES.md: 0.8721, [9, 2, 1])" if ok else "FAILED: SOURCES.md says 0.8721, [9, 2, 1]")
    return ok


class TorchOps(NumpyOps):
    """The same layers computed by torch in float64, from the same weights
    converted to torch's layouts (OIHW kernels, [4u,in] / [3u,in] gate
    matrices in torch's gate orders)."""

    def __init__(self):
        import torch
        import torch.nn.functional as F
        self.torch, self.F = torch, F

    def t(self, a):
        return self.torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))

    def dense(self, layer, x, k3):
        kernel, bias = split_kernel_bias(layer)
        y = self.F.linear(self.t(x), self.t(kernel.T), None if bias is None else self.t(bias)).numpy()
        return activation(layer.cfg.get("activation", "linear"), y, k3)

    def conv(self, layer, x, k3):
        F, c = self.F, layer.cfg
        kernel, bias = split_kernel_bias(layer)
        nd = kernel.ndim - 2
        ks, ss = kernel.shape[:nd], list(c["strides"])
        ds = list(c.get("dilation_rate", [1] * nd))
        pads = spatial_pads(x, ks, ss, ds, c["padding"])
        xt = self.t(np.moveaxis(x, -1, 1))  # (N, C, *spatial)
        flat = [p for pair in reversed(pads) for p in pair]  # F.pad: last dim first
        xt = F.pad(xt, flat)
        if layer.cls == "DepthwiseConv2D":
            cin, mult = kernel.shape[-2:]
            w = np.transpose(kernel, (2, 3, 0, 1)).reshape(cin * mult, 1, *ks)
            groups = cin
        else:
            w = np.transpose(kernel, (nd + 1, nd) + tuple(range(nd)))
            groups = 1
        fn = F.conv1d if nd == 1 else F.conv2d
        y = fn(xt, self.t(w), None if bias is None else self.t(bias), stride=ss, dilation=ds, groups=groups)
        y = np.moveaxis(y.numpy(), 1, -1)
        return activation(c.get("activation", "linear"), y, k3)

    def pool(self, layer, x, kind):
        F, c = self.F, layer.cfg
        if c["padding"] != "valid":
            return super().pool(layer, x, kind)
        ks = list(c["pool_size"])
        ss = list(c.get("strides") or ks)
        xt = self.t(np.moveaxis(x, -1, 1))
        nd = len(ks)
        fn = {("max", 1): F.max_pool1d, ("max", 2): F.max_pool2d,
              ("avg", 1): F.avg_pool1d, ("avg", 2): F.avg_pool2d}[(kind, nd)]
        return np.moveaxis(fn(xt, ks, ss).numpy(), 1, -1)

    def batch_norm(self, layer, x):
        gamma, beta, mean, var = batch_norm_params(layer)
        axis = bn_axis(layer.cfg, x.ndim)
        xt = self.t(np.moveaxis(x, axis, 1))
        y = self.F.batch_norm(xt, self.t(mean), self.t(var),
                              None if gamma is None else self.t(gamma),
                              None if beta is None else self.t(beta),
                              training=False, eps=layer.cfg.get("epsilon", 1e-3))
        return np.moveaxis(y.numpy(), 1, axis)

    def torch_act(self, name, k3):
        torch = self.torch
        name = name.lower()
        if name == "hard_sigmoid":
            return (lambda v: torch.clamp(v + 3, 0, 6) / 6) if k3 else (lambda v: torch.clamp(0.2 * v + 0.5, 0, 1))
        return {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu,
                "linear": lambda v: v}[name]

    def lstm(self, layer, x, k3):
        """Keras gates i,f,c,o are torch's i,f,g,o: weight_ih = kernel.T,
        weight_hh = recurrent_kernel.T, bias_ih = bias, bias_hh = 0. tanh /
        sigmoid use nn.LSTM; other activations the torch cell loop."""
        torch, c = self.torch, layer.cfg
        if c.get("go_backwards"):
            return super().lstm(layer, x, k3)
        kernel, rec, bias = rnn_weights(layer)
        u = rec.shape[0]
        w_ih, w_hh = self.t(kernel.T), self.t(rec.T)
        b_ih = self.t(bias if bias is not None else np.zeros(4 * u))
        act, rec_act = c.get("activation", "tanh"), c.get("recurrent_activation", "sigmoid")
        xt = self.t(x)
        if act == "tanh" and rec_act == "sigmoid":
            y = self.nn_lstm(w_ih, w_hh, b_ih, xt)
        else:
            f_act, f_rec = self.torch_act(act, k3), self.torch_act(rec_act, k3)
            h = torch.zeros(x.shape[0], u, dtype=torch.float64)
            cst, hs = h.clone(), []
            for t in range(x.shape[1]):
                gates = xt[:, t] @ w_ih.T + h @ w_hh.T + b_ih
                i, f, g, o = gates.chunk(4, dim=1)
                cst = f_rec(f) * cst + f_rec(i) * f_act(g)
                h = f_rec(o) * f_act(cst)
                hs.append(h)
            y = torch.stack(hs, dim=1)
        return y.numpy() if c.get("return_sequences") else y[:, -1].numpy()

    def nn_lstm(self, w_ih, w_hh, b_ih, xt):
        torch = self.torch
        net = torch.nn.LSTM(w_ih.shape[1], w_hh.shape[1], batch_first=True).double()
        with torch.no_grad():
            net.weight_ih_l0.copy_(w_ih)
            net.weight_hh_l0.copy_(w_hh)
            net.bias_ih_l0.copy_(b_ih)
            net.bias_hh_l0.zero_()
            return net(xt)[0]

    def gru(self, layer, x, k3):
        """reset_after=True, tanh/sigmoid is exactly nn.GRU: Keras z,r,h ->
        torch r,z,n; weight_ih = [W_r; W_z; W_h].T-ed, bias row 0 -> bias_ih,
        row 1 -> bias_hh."""
        torch, c = self.torch, layer.cfg
        if not (c.get("reset_after") and c.get("activation", "tanh") == "tanh"
                and c.get("recurrent_activation", "sigmoid") == "sigmoid" and not c.get("go_backwards")):
            return super().gru(layer, x, k3)
        kernel, rec, bias = rnn_weights(layer)
        u = rec.shape[0]
        if bias is None:
            bias = np.zeros((2, 3 * u))

        def rz(a):  # columns z,r,h -> r,z,h
            return np.concatenate([a[..., u:2 * u], a[..., :u], a[..., 2 * u:]], axis=-1)

        net = torch.nn.GRU(kernel.shape[0], u, batch_first=True).double()
        with torch.no_grad():
            net.weight_ih_l0.copy_(self.t(rz(kernel).T))
            net.weight_hh_l0.copy_(self.t(rz(rec).T))
            net.bias_ih_l0.copy_(self.t(rz(bias[0])))
            net.bias_hh_l0.copy_(self.t(rz(bias[1])))
            y = net(self.t(x))[0]
        return y.numpy() if c.get("return_sequences") else y[:, -1].numpy()


def cross_check(h5_dir):
    """Every file through NumpyOps and TorchOps; then each LSTM layer alone
    with tanh/sigmoid substituted, numpy lstm() vs nn.LSTM."""
    import torch
    tops = TorchOps()
    worst = 0.0
    for stem, n, kind, scale in MODELS:
        m = Model(os.path.join(h5_dir, stem + ".h5"))
        xs = make_inputs(m, n, kind, scale)
        a, b = predict(m, xs), predict(m, xs, ops=tops)
        diff = max(float(np.max(np.abs(p - q))) for p, q in zip(a, b))
        scale = max(float(np.max(np.abs(p))) for p in a)
        worst = max(worst, diff / max(scale, 1.0))
        classes = sorted({l.cls for l in m.layers.values()} & {
            "Dense", "Conv1D", "Conv2D", "DepthwiseConv2D", "MaxPooling2D", "AveragePooling2D",
            "BatchNormalization", "LSTM", "GRU"})
        print(f"{stem:36} numpy vs torch max|diff| {diff:.3e} (max|y| {scale:.3g}); torch did {', '.join(classes)}")
        for layer in m.layers.values():
            if layer.cls != "LSTM":
                continue
            rng = np.random.default_rng(7)
            x = rng.standard_normal((3, 12, layer.weights[0].shape[0]))
            mine = lstm(layer, x, m.keras3, act="tanh", rec_act="sigmoid")
            kernel, rec, bias = rnn_weights(layer)
            ref = tops.nn_lstm(tops.t(kernel.T), tops.t(rec.T), tops.t(bias), tops.t(x))
            ref = ref.numpy() if layer.cfg.get("return_sequences") else ref[:, -1].numpy()
            d = float(np.max(np.abs(mine - ref)))
            worst = max(worst, d)
            print(f"    {layer.name:10} weights, tanh/sigmoid: numpy lstm() vs torch.nn.LSTM max|diff| {d:.3e}")
    # No file has a reset_after=false GRU or a SimpleRNN: random weights.
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 9, 5))
    k, r, b = 0.5 * rng.standard_normal((5, 24)), 0.5 * rng.standard_normal((8, 24)), rng.standard_normal(24)
    layer = Layer("GRU", {"name": "gru_reset_before", "return_sequences": True, "reset_after": False}, [k, r, b], [])
    mine = gru(layer, x, False)
    tk, tr, tb, h, hs = tops.t(k), tops.t(r), tops.t(b), torch.zeros(3, 8, dtype=torch.float64), []
    for t in range(9):  # torch loop, gates sliced from the transposed matrices
        xz = tops.t(x[:, t]) @ tk + tb
        z = torch.sigmoid(xz[:, :8] + h @ tr[:, :8])
        rr = torch.sigmoid(xz[:, 8:16] + h @ tr[:, 8:16])
        h = z * h + (1 - z) * torch.tanh(xz[:, 16:] + (rr * h) @ tr[:, 16:])
        hs.append(h)
    d = float(np.max(np.abs(mine - torch.stack(hs, 1).numpy())))
    worst = max(worst, d)
    print(f"synthetic GRU reset_after=false: numpy gru() vs torch loop max|diff| {d:.3e}")
    k, r, b = k[:, :8], r[:, :8], b[:8]
    layer = Layer("SimpleRNN", {"name": "rnn", "return_sequences": True}, [k, r, b], [])
    net = torch.nn.RNN(5, 8, batch_first=True).double()
    with torch.no_grad():
        net.weight_ih_l0.copy_(tops.t(k.T))
        net.weight_hh_l0.copy_(tops.t(r.T))
        net.bias_ih_l0.copy_(tops.t(b))
        net.bias_hh_l0.zero_()
        ref = net(tops.t(x))[0].numpy()
    d = float(np.max(np.abs(simple_rnn(layer, x, False) - ref)))
    worst = max(worst, d)
    print(f"synthetic SimpleRNN: numpy simple_rnn() vs torch.nn.RNN max|diff| {d:.3e}")
    ok = worst <= 1e-9
    print("ok" if ok else "FAILED", f"(worst relative difference {worst:.3e}, limit 1e-9)")
    return ok


def sensitivity(h5_dir, out_dir):
    """Can the golden data catch an importer's likely mistakes? Each row
    makes one mistake in this reference, reruns the committed x*.npy and
    prints the worst |y - golden| / (atol + rtol*|golden|); it must exceed 1
    (the test would fail)."""
    manifest = json.load(open(os.path.join(out_dir, "manifest.json")))
    tol = {e["file"]: e["tolerance"] for e in manifest["models"]}
    g = globals()

    def layers(m, cls):
        return [l for l in m.layers.values() if l.cls == cls]

    def swap_blocks(a, u, i, j):
        a = a.copy()
        a[..., i * u:(i + 1) * u], a[..., j * u:(j + 1) * u] = a[..., j * u:(j + 1) * u].copy(), a[..., i * u:(i + 1) * u].copy()
        return a

    def same_pads_before(size, k, s, d):
        b, a = SAME_PADS(size, k, s, d)
        return a, b

    def flatten_channels_first(ops, layer, xs, k3):
        if layer.cls == "Flatten" and xs[0].ndim > 2:
            return np.moveaxis(xs[0], -1, 1).reshape(xs[0].shape[0], -1)
        return FORWARD_LAYER(ops, layer, xs, k3)

    def dropout_scaled(ops, layer, xs, k3):
        if layer.cls == "Dropout":
            return xs[0] / (1 - layer.cfg["rate"])
        return FORWARD_LAYER(ops, layer, xs, k3)

    def bn_no_eps(m):
        for l in layers(m, "BatchNormalization"):
            l.cfg["epsilon"] = 0.0

    def gru_reset_before(m):
        for l in layers(m, "GRU"):
            l.cfg["reset_after"] = False
            l.weights[2] = l.weights[2].sum(axis=0)

    def gru_zr(m):
        for l in layers(m, "GRU"):
            u = l.weights[1].shape[0]
            l.weights = [swap_blocks(w, u, 0, 1) for w in l.weights]

    def lstm_fc(m):
        for l in layers(m, "LSTM"):
            u = l.weights[1].shape[0]
            l.weights = [swap_blocks(w, u, 1, 2) for w in l.weights]

    def kernel_flipped(m):
        for cls in ("Conv1D", "Conv2D", "DepthwiseConv2D"):
            for l in layers(m, cls):
                k = l.weights[0]
                l.weights[0] = np.flip(k, axis=tuple(range(k.ndim - 2))).copy()

    def keras3_hard_sigmoid(m):
        m.keras3 = True

    def outputs_swapped(m):
        m.outputs = m.outputs[::-1]

    cases = [
        ("cnn_lenet_mnist_k2.1.5", "Flatten in channels-first order", None, ("forward_layer", flatten_channels_first)),
        ("cnn_lenet_mnist_k2.1.5", "conv kernel flipped (true convolution)", kernel_flipped, None),
        ("cnn_resnet8_cifar10_k2.4.0", "same padding: odd cell before", None, ("same_pads", same_pads_before)),
        ("cnn_resnet8_cifar10_k2.4.0", "BatchNormalization epsilon ignored", bn_no_eps, None),
        ("dscnn_wakeword_k2.14.0", "BatchNormalization epsilon ignored", bn_no_eps, None),
        ("dscnn_wakeword_k2.14.0", "depthwise kernel flipped", kernel_flipped, None),
        ("lstm_stacked_stock_k2.12.0", "LSTM gates f and c swapped", lstm_fc, None),
        ("lstm_stacked_stock_k2.12.0", "Dropout scaled as in training", None, ("forward_layer", dropout_scaled)),
        ("gru_battery_soh_k3.10.0", "GRU bias rows summed, reset before", gru_reset_before, None),
        ("gru_battery_soh_k3.10.0", "GRU gates z and r swapped", gru_zr, None),
        ("func_2in2out_concat_k2.4.0", "outputs in the other order", outputs_swapped, None),
        ("func_10in2out_lstm_conv1d_k2.2.4", "Keras 3 hard_sigmoid in a Keras 2 file", keras3_hard_sigmoid, None),
        ("func_10in2out_lstm_conv1d_k2.2.4", "same padding: odd cell before", None, ("same_pads", same_pads_before)),
        ("func_10in2out_lstm_conv1d_k2.2.4", "LSTM gates f and c swapped", lstm_fc, None),
    ]
    ok = True
    for stem, what, mutate, patch in cases:
        m = Model(os.path.join(h5_dir, stem + ".h5"))
        d = os.path.join(out_dir, stem)
        xs = [np.load(os.path.join(d, f"x{i}.npy")) for i in range(len(m.inputs))]
        golden = [np.load(os.path.join(d, f"y{i}.npy")) for i in range(len(m.outputs))]
        if mutate:
            mutate(m)
        if patch:
            saved = g[patch[0]]
            g[patch[0]] = patch[1]
        try:
            ys = predict(m, xs)
        finally:
            if patch:
                g[patch[0]] = saved
        t = tol[stem + ".h5"]
        ratio = max(float(np.max(np.abs(y - gy) / (t["atol"] + t["rtol"] * np.abs(gy)))) for y, gy in zip(ys, golden))
        ok &= ratio > 1
        print(f"{stem:36} {what:42} error/tolerance {ratio:10.3g} {'caught' if ratio > 1 else 'MISSED'}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--h5-dir", default=os.path.join(REPO, "..", "shared", "keras_h5"))
    ap.add_argument("--out", default=os.path.join(HERE, "golden"))
    ap.add_argument("--check-fashion", action="store_true")
    ap.add_argument("--cross-check", action="store_true")
    ap.add_argument("--sensitivity", action="store_true")
    a = ap.parse_args()
    h5_dir = os.path.normpath(a.h5_dir)
    if a.check_fashion or a.cross_check or a.sensitivity:
        ok = True
        if a.check_fashion:
            ok &= check_fashion(h5_dir)
        if a.cross_check:
            ok &= cross_check(h5_dir)
        if a.sensitivity:
            ok &= sensitivity(h5_dir, a.out)
        return 0 if ok else 1
    generate(h5_dir, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
