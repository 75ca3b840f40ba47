#!/usr/bin/python3
"""Reference trajectories for nncc's optimizers, computed without nncc.

Run (Debian's python3: torch, numpy, h5py, PyYAML):

    /usr/bin/python3 tests/optimizers/make_refs.py

from any folder. Every configs/<name>.yaml is one optimizer configuration of
the same model: input [4] -> Dense 3 -> Dense 2 (layers dense, dense_1, both
linear), loss mse, one fixed batch of 8 samples. The script reads the
optimizer section of each file itself (Keras defaults for what it omits) and
writes, deterministically (a rerun gives byte-identical files):

    x.npy, y.npy    the batch: x (8, 4), y (8, 2), float32
    w0.h5           the initial weights in the Keras HDF5 layout, as tf.keras
                    2.4 model.save writes an untrained Sequential model
                    (model_weights/dense/dense/kernel:0 ...; no
                    training_config, since the file serves every
                    configuration, and no optimizer_weights)
    refs/<name>/w.npy       (10, 23) float64: all weights after train steps
                            1..10, flattened in the model's order (dense
                            kernel [4, 3] row-major, dense bias, dense_1
                            kernel [3, 2], dense_1 bias)
    refs/<name>/loss.npy    (10,) float64: the loss each step reports (at the
                            weights before its update)
    refs/<name>/state5.npy  (k, 23) float64: the optimizer state after 5
                            steps, one row per Keras slot, in the order
                            tf.keras <= 2.10 lists them in optimizer_weights
                            (absent when the optimizer has no slots)
    refs/<name>/state5.json the names tf.keras <= 2.10 gives the saved
                            optimizer weights ("Adam/iter:0",
                            "Adam/dense/kernel/m:0", ...), for check_state.py

Everything is float64, with the hyperparameters as Keras holds them: as
float32 values (float32(0.999) = 0.99900001287, whose 1 - beta_2 is 1.3e-5
away from 0.001; at the test's 1e-6 that matters wherever the rounding
does not cancel, e.g. Adam with a large epsilon, where sqrt(1 - beta_2^t)
in the step size no longer meets the (1 - beta_2) inside v). Nadam's
constants 0.96 and 0.004 stay exact (their rounding moves the schedule by
under 1e-9). Gradients come from torch autograd (and are checked
against the closed form of this linear model). The updates are the Keras
formulas, written out below in numpy, not taken from torch.optim or nncc
(shared/spec/keras-numerics.md; tf.keras 2.x optimizer_v2, with Nadam as
tf.keras <= 2.10 defines it and AdamW as tf.keras 2.11+ does):

    clipping    (OptimizerV2._transform_gradients order) clipvalue:
                g = clip(g, -c, c); then clipnorm: g *= c / max(|g|, c) per
                tensor; then global_clipnorm: g *= c / max(|all g|, c)
    schedules   at step = iterations before the update:
                ExponentialDecay  lr0 * rate ^ (step / decay_steps), the
                                  exponent floored when staircase
                PiecewiseConstantDecay  values[0] while step <= b[0],
                                  values[i] while b[i-1] < step <= b[i],
                                  values[-1] after b[-1]
    SGD         v = m v - lr g; w += v; nesterov: w += m v - lr g;
                without momentum w -= lr g
    Adagrad     acc (starts at initial_accumulator_value) += g^2;
                w -= lr g / (sqrt(acc) + eps)
    RMSprop     ms = rho ms + (1-rho) g^2; centered: mg = rho mg + (1-rho) g,
                den = ms - mg^2, else den = ms;
                without momentum: w -= lr g / (sqrt(den) + eps);
                with momentum: mom = m mom + lr g / sqrt(den + eps); w -= mom
    Adam        m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
                amsgrad: vhat = max(vhat, v), used for v below;
                w -= lr sqrt(1-b2^t) / (1-b1^t) m / (sqrt(v) + eps), t = step+1
    AdamW       w -= lr wd w, then the Adam step (lr: the scheduled rate)
    Nadam       mu_t = b1 (1 - 0.5 * 0.96^(0.004 t)), mu_next likewise at t+1,
                prod_t = prod_{t-1} mu_t (the saved momentum_cache),
                m, v as Adam; w -= lr ((1-mu_t) g / (1-prod_t)
                + mu_next m / (1 - prod_t mu_next)) / (sqrt(v / (1-b2^t)) + eps)
    Adamax      m as Adam; u = max(b2 u, |g|); w -= lr / (1-b1^t) m / (u + eps)

Cross-checks, which stop the script on any disagreement: the autograd
gradients against the closed form; each trajectory against torch.optim run
on the same model, where torch's definition equals Keras's: SGD (momentum,
nesterov: torch's buffer is -v/lr, equal for a constant rate), Adagrad (with
initial_accumulator_value and eps set as Keras's), RMSprop (equal without
momentum; with momentum only for epsilon 0, as torch adds eps outside the
root, so that variant runs both with eps 0), Adam and AdamW (torch's eps is
Keras's eps / sqrt(1-b2^t), set per step), NAdam (torch's momentum_decay
0.004 is tf.keras <= 2.10's schedule; run with foreach=True, since torch
1.13's single-tensor NAdam multiplies mu_t into the next product twice,
mu_product * mu * mu_next, while its foreach path and Keras use
mu_product * mu_next), Adamax (equal for eps 0 only: torch
adds eps inside the max); the clip functions against torch.nn.utils'
(clip_grad_norm_ adds 1e-6 to the norm: 1e-5 there); the schedules against
torch.optim.lr_scheduler (ExponentialLR, StepLR, and LambdaLR over a bisect
of the boundaries). It also checks that each configuration exercises what
it names: a clip that actually clips (and, for clipvalue, leaves some
components alone), amsgrad's vhat above v at some step, and no gradient
component under 1e-5 of the largest: float32 gradients carry noise of about
1e-7 of the largest component, which sign-like optimizers (Adam, RMSprop,
Adagrad) would turn into a full-size error for a component near 0.
"""

import bisect
import copy
import glob
import json
import os
import sys

import h5py
import numpy as np
import torch
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS, SAVE_AT, BATCH, SEED = 10, 5, 8, 96
LAYERS = [("dense", 4, 3), ("dense_1", 3, 2)]          # name, in, out
KERAS_VERSION = "2.4.0"

torch.set_default_dtype(torch.float64)

# Keras's class names and defaults (tf.keras 2.x; AdamW from 2.11).
DEFAULTS = {
    "SGD": dict(learning_rate=0.01, momentum=0.0, nesterov=False),
    "Adagrad": dict(learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7),
    "RMSprop": dict(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False),
    "Adam": dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False),
    "Nadam": dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7),
    "Adamax": dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7),
    "AdamW": dict(learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                  amsgrad=False),
}
CLIPS = ("clipvalue", "clipnorm", "global_clipnorm")


def fail(msg):
    sys.exit(f"make_refs: {msg}")


# ---- the model, the data, the gradients ---------------------------------------

def make_data():
    rng = np.random.default_rng(SEED)
    x = rng.normal(0.3, 1.0, (BATCH, 4)).astype(np.float32)
    y = (rng.normal(0.0, 1.0, (BATCH, 2)) + np.array([1.0, -0.5])).astype(np.float32)
    w0 = []
    for _, fan_in, fan_out in LAYERS:  # kernel glorot_uniform, bias small (not Keras's zeros)
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        w0.append(rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32))
        w0.append(rng.uniform(-0.1, 0.1, (fan_out,)).astype(np.float32))
    return x, y, w0


def loss_and_grads(x, y, ws):
    """mse of the two linear Dense layers, and its gradients (autograd)."""
    t = [torch.tensor(w, requires_grad=True) for w in ws]
    out = (torch.tensor(x, dtype=torch.float64) @ t[0] + t[1]) @ t[2] + t[3]
    loss = ((out - torch.tensor(y, dtype=torch.float64)) ** 2).mean()
    grads = torch.autograd.grad(loss, t)
    return loss.item(), [g.numpy().copy() for g in grads]


def closed_form_grads(x, y, ws):
    x = x.astype(np.float64)
    h = x @ ws[0] + ws[1]
    out = h @ ws[2] + ws[3]
    d = 2.0 * (out - y) / out.size           # d mean((out - y)^2) / d out
    dh = d @ ws[2].T
    return [x.T @ dh, dh.sum(0), h.T @ d, d.sum(0)]


# ---- the optimizer configuration ------------------------------------------------

def f32(v):
    return float(np.float32(v))


def read_config(path):
    with open(path) as f:
        model = yaml.safe_load(f)
    opt = model["compile"]["optimizer"]
    if isinstance(opt, str):
        name, args = opt, {}
    else:
        (name, args), = opt.items()
        args = dict(args or {})
    match = [k for k in DEFAULTS if k.lower() == name.lower()]
    if not match:
        fail(f"{path}: unknown optimizer {name}")
    name = match[0]
    cfg = dict(DEFAULTS[name])
    for k in args:
        if k not in cfg and k not in CLIPS:
            fail(f"{path}: {name} takes no {k}")
    cfg.update({k: v for k, v in args.items() if k != "learning_rate"})
    lr = args.get("learning_rate", cfg["learning_rate"])
    if isinstance(lr, dict):
        (kind, sargs), = lr.items()
        cfg["schedule"] = (kind, sargs)
        cfg["learning_rate"] = None
    else:
        cfg["schedule"] = None
        cfg["learning_rate"] = float(lr)
    cfg["name"] = name
    # Keras holds every hyperparameter as a float32 value (OptimizerV2's
    # _get_hyper(name, var_dtype), convert_to_tensor(epsilon, var_dtype),
    # schedules casting theirs to the rate's dtype): the reference uses those
    # values, in float64 arithmetic.
    for k, v in cfg.items():
        if isinstance(v, float):
            cfg[k] = f32(v)
    if cfg["schedule"]:
        kind, sargs = cfg["schedule"]
        cfg["schedule"] = (kind, {k: ([f32(b) for b in v] if isinstance(v, list) else
                                      v if isinstance(v, bool) else f32(v)) for k, v in sargs.items()})
    rest = {k: v for k, v in model.items() if k not in ("name", "compile")}
    return cfg, rest, {k: v for k, v in model["compile"].items() if k != "optimizer"}


def learning_rate(cfg, step):
    """The rate used by the update that takes iterations from step to step + 1."""
    if cfg["schedule"] is None:
        return cfg["learning_rate"]
    kind, a = cfg["schedule"]
    if kind == "ExponentialDecay":
        p = step / a["decay_steps"]
        if a.get("staircase", False):
            p = np.floor(p)
        return a["initial_learning_rate"] * a["decay_rate"] ** p
    if kind == "PiecewiseConstantDecay":
        b, v = a["boundaries"], a["values"]
        if step <= b[0]:
            return v[0]
        if step > b[-1]:
            return v[-1]
        for low, high, val in zip(b[:-1], b[1:], v[1:-1]):
            if low < step <= high:
                return val
    fail(f"unknown schedule {kind}")


def clip(cfg, grads, seen):
    """tf.keras <= 2.10's order: clipvalue, then clipnorm, then global_clipnorm.
    seen records whether each kind changed anything (and, for clipvalue,
    whether some components were left alone)."""
    if cfg.get("clipvalue"):
        c = cfg["clipvalue"]
        over = sum(int((np.abs(g) > c).sum()) for g in grads)
        seen["clipvalue clipped"] |= over > 0
        seen["clipvalue left some"] |= over < sum(g.size for g in grads)
        grads = [np.clip(g, -c, c) for g in grads]
    if cfg.get("clipnorm"):
        c = cfg["clipnorm"]
        norms = [np.sqrt((g * g).sum()) for g in grads]
        seen["clipnorm clipped"] |= any(n > c for n in norms)
        seen["clipnorm left some"] |= any(n <= c for n in norms)
        grads = [g * c / max(n, c) for g, n in zip(grads, norms)]
    if cfg.get("global_clipnorm"):
        c = cfg["global_clipnorm"]
        n = np.sqrt(sum((g * g).sum() for g in grads))
        seen["global_clipnorm clipped"] |= n > c
        grads = [g * c / max(n, c) for g in grads]
    return grads


class KerasOptimizer:
    """One optimizer instance: slots per weight tensor, in Keras's slot order."""

    def __init__(self, cfg, shapes):
        self.cfg, self.iterations, self.extra = cfg, 0, {}
        n = cfg["name"]
        names = {"SGD": ["momentum"] if cfg.get("momentum") else [],
                 "Adagrad": ["accumulator"],
                 "RMSprop": ["rms"] + (["momentum"] if cfg.get("momentum") else []) + (["mg"] if cfg.get("centered") else []),
                 "Adam": ["m", "v"] + (["vhat"] if cfg.get("amsgrad") else []),
                 "AdamW": ["m", "v"] + (["vhat"] if cfg.get("amsgrad") else []),
                 "Nadam": ["m", "v"],
                 "Adamax": ["m", "v"]}[n]
        self.slot_names = names
        self.slots = {s: [np.zeros(sh) for sh in shapes] for s in names}
        if n == "Adagrad":
            self.slots["accumulator"] = [np.full(sh, float(cfg["initial_accumulator_value"])) for sh in shapes]
        if n == "Nadam":
            self.extra["momentum_cache"] = 1.0
        self.amsgrad_active = False

    def step(self, ws, grads):
        c, t = self.cfg, self.iterations + 1
        lr = learning_rate(c, self.iterations)
        out = []
        for i, (w, g) in enumerate(zip(ws, grads)):
            s = {k: v[i] for k, v in self.slots.items()}
            out.append(getattr(self, "_" + c["name"].lower())(w, g, s, lr, t))
        if c["name"] == "Nadam":
            self.extra["momentum_cache"] *= self._mu(t)
        self.iterations += 1
        return out

    def _sgd(self, w, g, s, lr, t):
        m = self.cfg["momentum"]
        if not m:
            return w - lr * g
        v = s["momentum"]
        v[...] = m * v - lr * g
        return w + (m * v - lr * g if self.cfg["nesterov"] else v)

    def _adagrad(self, w, g, s, lr, t):
        acc = s["accumulator"]
        acc += g * g
        return w - lr * g / (np.sqrt(acc) + self.cfg["epsilon"])

    def _rmsprop(self, w, g, s, lr, t):
        c = self.cfg
        ms = s["rms"]
        ms[...] = c["rho"] * ms + (1 - c["rho"]) * g * g
        den = ms.copy()
        if c["centered"]:
            mg = s["mg"]
            mg[...] = c["rho"] * mg + (1 - c["rho"]) * g
            den = ms - mg * mg
        if not c["momentum"]:
            return w - lr * g / (np.sqrt(den) + c["epsilon"])
        mom = s["momentum"]
        mom[...] = c["momentum"] * mom + lr * g / np.sqrt(den + c["epsilon"])
        return w - mom

    def _adam(self, w, g, s, lr, t):
        c = self.cfg
        m, v = s["m"], s["v"]
        m[...] = c["beta_1"] * m + (1 - c["beta_1"]) * g
        v[...] = c["beta_2"] * v + (1 - c["beta_2"]) * g * g
        den = v
        if c["amsgrad"]:
            vhat = s["vhat"]
            self.amsgrad_active |= bool((vhat > v).any())
            vhat[...] = np.maximum(vhat, v)
            den = vhat
        lr_t = lr * np.sqrt(1 - c["beta_2"] ** t) / (1 - c["beta_1"] ** t)
        return w - lr_t * m / (np.sqrt(den) + c["epsilon"])

    def _adamw(self, w, g, s, lr, t):
        return self._adam(w - lr * self.cfg["weight_decay"] * w, g, s, lr, t)

    def _mu(self, t):
        return self.cfg["beta_1"] * (1 - 0.5 * 0.96 ** (0.004 * t))

    def _nadam(self, w, g, s, lr, t):
        c = self.cfg
        mu_t, mu_next = self._mu(t), self._mu(t + 1)
        prod = self.extra["momentum_cache"] * mu_t
        m, v = s["m"], s["v"]
        m[...] = c["beta_1"] * m + (1 - c["beta_1"]) * g
        v[...] = c["beta_2"] * v + (1 - c["beta_2"]) * g * g
        m_bar = (1 - mu_t) * g / (1 - prod) + mu_next * m / (1 - prod * mu_next)
        return w - lr * m_bar / (np.sqrt(v / (1 - c["beta_2"] ** t)) + c["epsilon"])

    def _adamax(self, w, g, s, lr, t):
        c = self.cfg
        m, u = s["m"], s["v"]
        m[...] = c["beta_1"] * m + (1 - c["beta_1"]) * g
        u[...] = np.maximum(c["beta_2"] * u, np.abs(g))
        return w - lr / (1 - c["beta_1"] ** t) * m / (u + c["epsilon"])

    def keras_names(self):
        """optimizer_weights' weight_names as tf.keras <= 2.10 saves them."""
        n = self.cfg["name"]
        names = [f"{n}/iter:0"] + [f"{n}/{k}:0" for k in self.extra]
        for s in self.slot_names:
            for layer, _, _ in LAYERS:
                names += [f"{n}/{layer}/kernel/{s}:0", f"{n}/{layer}/bias/{s}:0"]
        return names


def trajectory(cfg, x, y, w0):
    """Weights after each of STEPS steps, the losses, the state after SAVE_AT."""
    ws = [w.astype(np.float64) for w in w0]
    opt = KerasOptimizer(cfg, [w.shape for w in ws])
    seen = {k: False for k in ("clipvalue clipped", "clipvalue left some", "clipnorm clipped",
                               "clipnorm left some", "global_clipnorm clipped")}
    weights, losses, min_ratio, state = [], [], np.inf, None
    for step in range(STEPS):
        loss, grads = loss_and_grads(x, y, ws)
        for a, b in zip(grads, closed_form_grads(x, y, ws)):
            if not np.allclose(a, b, rtol=1e-12, atol=1e-14):
                fail(f"{cfg['file']}: autograd and the closed form disagree")
        flat = np.concatenate([g.ravel() for g in grads])
        min_ratio = min(min_ratio, np.abs(flat).min() / np.abs(flat).max())
        grads = clip(cfg, grads, seen)
        ws = opt.step(ws, grads)
        weights.append(np.concatenate([w.ravel() for w in ws]))
        losses.append(loss)
        if step + 1 == SAVE_AT:
            state = (np.array([np.concatenate([a.ravel() for a in opt.slots[s]]) for s in opt.slot_names]),
                     {"iterations": opt.iterations, "names": opt.keras_names(),
                      "extra": dict(opt.extra)})
    return np.array(weights), np.array(losses), state, seen, min_ratio, opt


# ---- cross-checks with torch -------------------------------------------------------

def torch_trajectory(cfg, x, y, w0):
    """The same steps with torch.optim, where its definition equals Keras's
    (None where it has none). Returns (weights per step, tolerance)."""
    n, c = cfg["name"], cfg
    params = [torch.tensor(w.astype(np.float64), requires_grad=True) for w in w0]
    lr0 = c["learning_rate"] if c["schedule"] is None else learning_rate(c, 0)
    if n == "SGD":
        if c["momentum"] and c["schedule"]:
            return None, "torch's momentum buffer leaves the rate out: equal only at a constant rate"
        opt = torch.optim.SGD(params, lr=lr0, momentum=c["momentum"], nesterov=c["nesterov"])
    elif n == "Adagrad":
        opt = torch.optim.Adagrad(params, lr=lr0, initial_accumulator_value=c["initial_accumulator_value"],
                                  eps=c["epsilon"])
    elif n == "RMSprop":
        opt = torch.optim.RMSprop(params, lr=lr0, alpha=c["rho"], eps=c["epsilon"], momentum=c["momentum"],
                                  centered=c["centered"])
    elif n in ("Adam", "AdamW"):
        cls = torch.optim.Adam if n == "Adam" else torch.optim.AdamW
        kw = {"weight_decay": c["weight_decay"]} if n == "AdamW" else {}
        opt = cls(params, lr=lr0, betas=(c["beta_1"], c["beta_2"]), eps=c["epsilon"], amsgrad=c["amsgrad"], **kw)
    elif n == "Nadam":
        opt = torch.optim.NAdam(params, lr=lr0, betas=(c["beta_1"], c["beta_2"]), eps=c["epsilon"],
                                momentum_decay=0.004, foreach=True)  # see the docstring
    elif n == "Adamax":
        opt = torch.optim.Adamax(params, lr=lr0, betas=(c["beta_1"], c["beta_2"]), eps=c["epsilon"])
    sched = None
    if c["schedule"]:
        kind, a = c["schedule"]
        if kind == "ExponentialDecay" and a.get("staircase"):
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=a["decay_steps"], gamma=a["decay_rate"])
        elif kind == "ExponentialDecay":
            sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=a["decay_rate"] ** (1 / a["decay_steps"]))
        else:
            b, v = a["boundaries"], a["values"]
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: v[bisect.bisect_left(b, s)] / v[0])
    tol = 1e-10
    out = []
    X, Y = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    for step in range(STEPS):
        opt.zero_grad()
        loss = (((X @ params[0] + params[1]) @ params[2] + params[3] - Y) ** 2).mean()
        loss.backward()
        if c.get("clipvalue"):
            torch.nn.utils.clip_grad_value_(params, c["clipvalue"])
        if c.get("clipnorm"):
            for p in params:
                torch.nn.utils.clip_grad_norm_([p], c["clipnorm"])
            tol = 1e-5   # torch divides by norm + 1e-6
        if c.get("global_clipnorm"):
            torch.nn.utils.clip_grad_norm_(params, c["global_clipnorm"])
            tol = 1e-5
        if n in ("Adam", "AdamW"):  # Keras's epsilon-hat, in torch's form
            opt.param_groups[0]["eps"] = c["epsilon"] / np.sqrt(1 - c["beta_2"] ** (step + 1))
        if sched is not None and abs(opt.param_groups[0]["lr"] - learning_rate(c, step)) > 1e-12 * learning_rate(c, step):
            fail(f"{c['file']}: the torch scheduler's rate at step {step} is {opt.param_groups[0]['lr']}, "
                 f"the Keras schedule's {learning_rate(c, step)}")
        opt.step()
        if sched is not None:
            sched.step()
        out.append(np.concatenate([p.detach().numpy().ravel() for p in params]))
    return np.array(out), tol


def cross_check(cfg, x, y, w0, weights):
    c = copy.deepcopy(cfg)
    mine = weights
    note = ""
    # torch puts eps elsewhere for RMSprop with momentum and for Adamax: compare both at eps 0
    if (c["name"] == "RMSprop" and c["momentum"]) or c["name"] == "Adamax":
        c["epsilon"] = 0.0
        mine = trajectory(c, x, y, w0)[0]
        note = " (both with epsilon 0)"
    theirs, tol = torch_trajectory(c, x, y, w0)
    if theirs is None:
        return f"no torch.optim equivalent: {tol}"
    rel = np.abs(theirs - mine).max() / np.abs(mine).max()
    if not rel <= tol:
        fail(f"{cfg['file']}: torch.optim disagrees with the Keras formulas{note}: relative {rel:.2e} > {tol:.0e}")
    return f"torch.optim agrees{note}: relative {rel:.1e}"


# ---- files -------------------------------------------------------------------------

def write_w0_h5(path, w0):
    """tf.keras 2.4 model.save of an untrained Sequential(Dense 3, Dense 2)
    (string attribute types as tests/golden/make_golden.py writes them)."""
    utf8, ascii_ = h5py.string_dtype("utf-8"), h5py.string_dtype("ascii")
    layers = [{"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "dtype": "float32",
                                                      "sparse": False, "ragged": False, "name": "x"}}]
    for name, _, units in LAYERS:
        layers.append({"class_name": "Dense", "config": {
            "name": name, "trainable": True, "dtype": "float32", "units": units, "activation": "linear",
            "use_bias": True, "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
            "bias_initializer": {"class_name": "Zeros", "config": {}}, "kernel_regularizer": None,
            "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None,
            "bias_constraint": None}})
    config = {"class_name": "Sequential", "config": {"name": "optimizer_test", "layers": layers}}
    tmp = path + ".tmp"
    with h5py.File(tmp, "w", track_order=False) as f:
        f.attrs.create("keras_version", KERAS_VERSION, dtype=utf8)
        f.attrs.create("backend", "tensorflow", dtype=utf8)
        f.attrs.create("model_config", json.dumps(config).encode(), dtype=ascii_)
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = np.array([name.encode() for name, _, _ in LAYERS])
        g.attrs.create("backend", b"tensorflow", dtype=ascii_)
        g.attrs.create("keras_version", KERAS_VERSION.encode(), dtype=ascii_)
        for i, (name, _, _) in enumerate(LAYERS):
            lg = g.create_group(name)
            wnames = [f"{name}/kernel:0", f"{name}/bias:0"]
            lg.attrs["weight_names"] = np.array([n.encode() for n in wnames])
            for k, wname in enumerate(wnames):
                lg.create_dataset(wname, data=w0[2 * i + k].astype("<f4"), track_times=False)
    os.replace(tmp, path)


def save_npy(path, a):
    tmp = path + ".tmp.npy"
    np.save(tmp, a)
    os.replace(tmp, path)


def main():
    x, y, w0 = make_data()
    save_npy(os.path.join(HERE, "x.npy"), x)
    save_npy(os.path.join(HERE, "y.npy"), y)
    write_w0_h5(os.path.join(HERE, "w0.h5"), w0)
    files = sorted(glob.glob(os.path.join(HERE, "configs", "*.yaml")))
    if not files:
        fail("no configs/*.yaml")
    common = None
    for path in files:
        name = os.path.splitext(os.path.basename(path))[0]
        cfg, model, compile_rest = read_config(path)
        cfg["file"] = os.path.relpath(path, HERE)
        if common is None:
            common = (model, compile_rest)
        elif (model, compile_rest) != common:
            fail(f"{cfg['file']}: the model differs from the other configurations'")
        weights, losses, state, seen, min_ratio, opt = trajectory(cfg, x, y, w0)
        # each configuration exercises what it names
        for kind in CLIPS:
            if cfg.get(kind):
                for what, hit in seen.items():
                    if what.startswith(kind + " ") and not hit and not (kind == "clipnorm" and "left" in what):
                        fail(f"{cfg['file']}: {what} never happens in {STEPS} steps")
        if cfg.get("amsgrad") and not opt.amsgrad_active:
            fail(f"{cfg['file']}: amsgrad's vhat never exceeds v in {STEPS} steps")
        if min_ratio < 1e-5:  # float32 gradients carry noise of ~1e-7 of the largest component
            fail(f"{cfg['file']}: a gradient component falls to {min_ratio:.1e} of the largest")
        out = os.path.join(HERE, "refs", name)
        os.makedirs(out, exist_ok=True)
        save_npy(os.path.join(out, "w.npy"), weights)
        save_npy(os.path.join(out, "loss.npy"), losses)
        slots, info = state
        state_path = os.path.join(out, "state5.npy")
        if len(slots):
            save_npy(state_path, slots)
        elif os.path.exists(state_path):
            os.remove(state_path)
        with open(os.path.join(out, "state5.json"), "w") as f:
            json.dump(info, f, indent=1)
            f.write("\n")
        check = cross_check(cfg, x, y, w0, weights)
        moved = np.abs(weights[-1] - np.concatenate([w.ravel() for w in w0])).max()
        print(f"{name:34s} loss {losses[0]:.4f} -> {losses[-1]:.4f}, max |w10 - w0| {moved:.3f}, "
              f"min |g|/max|g| {min_ratio:.1e}; {check}")
    # the clip helpers themselves against torch.nn.utils on the first gradients
    _, g = loss_and_grads(x, y, [w.astype(np.float64) for w in w0])
    for kind, c in (("clipvalue", 0.5), ("clipnorm", 1.0), ("global_clipnorm", 1.5)):
        mine = clip({kind: c}, [a.copy() for a in g], {k: False for k in (
            "clipvalue clipped", "clipvalue left some", "clipnorm clipped", "clipnorm left some",
            "global_clipnorm clipped")})
        t = [torch.tensor(a) for a in g]
        ps = [torch.zeros_like(a, requires_grad=True) for a in t]
        for p, a in zip(ps, t):
            p.grad = a.clone()
        if kind == "clipvalue":
            torch.nn.utils.clip_grad_value_(ps, c)
        elif kind == "clipnorm":
            for p in ps:
                torch.nn.utils.clip_grad_norm_([p], c)
        else:
            torch.nn.utils.clip_grad_norm_(ps, c)
        for a, p in zip(mine, ps):
            if not np.allclose(a, p.grad.numpy(), rtol=1e-5, atol=0):
                fail(f"{kind}: torch.nn.utils disagrees")
    print(f"wrote {len(files)} references under {os.path.join(HERE, 'refs')}")


if __name__ == "__main__":
    main()
