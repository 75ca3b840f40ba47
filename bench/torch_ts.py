#!/usr/bin/python3
"""PyTorch baseline for the time-series models ts_lstm, ts_conv1d_gru and ts_wavenet (bench/README.md).

Run:  /usr/bin/python3 bench/torch_ts.py [--model ts_lstm|ts_conv1d_gru|ts_wavenet|all] [--epochs 3] [--threads 2]

The models of models/ts_lstm.yaml, models/ts_conv1d_gru.yaml and
models/ts_wavenet.yaml (the Keras notes' chapter 15 sequence-to-sequence
forecasters) in PyTorch on CPU, batch_first:
  ts_lstm        LSTM 20 -> LSTM 20 (full sequences) -> Linear 10 on every
                 step (= TimeDistributed Dense 10); Adam lr 0.01
  ts_conv1d_gru  Conv1d 1->20 k4 s2 (valid, on NCL: a transpose in and out;
                 50 -> 24 steps) -> GRU 20 -> GRU 20 -> Linear 10 per step;
                 Adam lr 0.001
  ts_wavenet     8 causal Conv1d 20 k2, dilations 1 2 4 8 1 2 4 8, relu (a
                 left zero pad of the dilation, then a valid conv), then a
                 1x1 Conv1d to 10; Adam lr 0.001
mse loss, Adam with Keras' epsilon 1e-7, Keras initializers (glorot_uniform
input kernels, orthogonal recurrent kernels, zero biases, LSTM forget-gate
bias 1; torch's GRU is Keras' reset_after=True GRU).

Data: the shape of nncc's time_series dataset (model-format.md §4, the notes'
generate_time_series): 10000 seeded series of 60 values, each the sum of two
sines plus noise; x = the first 50, seq2seq targets Y[i, t, k] = series[i,
t + k + 1] (ts_conv1d_gru: Y[:, 3::2], 24 steps); split 70/20/10, so 7000
training series, 219 steps of 32 per epoch, 2000 for validation. The values
are numpy's, not nncc's random stream: same sizes and distribution.

Timed per epoch with time.perf_counter, like nncc's epoch line: the training
loop (shuffle, batch gather, zero_grad, forward, loss, backward, Adam step,
the loss and last-time-step MSE summed per step) plus validation (eval mode,
torch.no_grad(), batches of 32, as nncc's evaluate). Printed: a Keras-style
line per epoch, then per model a machine-readable line

    torch model=ts_lstm epoch_s=1.234 ms_step=5.635 train_s=1.100 val_s=0.134 steps=219 epochs=3 threads=2 omp_wait=passive

with medians over the epochs; ms_step = epoch_s / steps (nncc's ms/step is
the same quotient). OMP_WAIT_POLICY defaults to PASSIVE (see
bench/README.md); set it in the environment to override.
"""

import argparse
import os
import statistics
import sys
import time

# As in torch_fashion_mlp.py: spinning OpenMP workers make 2 threads slower
# than 1 on this 2-vCPU machine. Read by libgomp when torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

N_STEPS, AHEAD, UNITS = 50, 10, 20
MODELS = ("ts_lstm", "ts_conv1d_gru", "ts_wavenet")


def generate_time_series(count, n_steps, rng):
    """The notes' generate_time_series: (count, n_steps) float32."""
    freq1, freq2, offsets1, offsets2 = rng.random((4, count, 1))
    t = np.linspace(0, 1, n_steps)
    series = 0.5 * np.sin((t - offsets1) * (freq1 * 10 + 10))
    series += 0.2 * np.sin((t - offsets2) * (freq2 * 20 + 20))
    series += 0.1 * (rng.random((count, n_steps)) - 0.5)
    return series.astype(np.float32)


def make_data(count, seed, target_start, target_stride):
    """x (count, 50, 1), y (count, ysteps, 10) as nncc's seq2seq time_series."""
    series = generate_time_series(count, N_STEPS + AHEAD, np.random.default_rng(seed))
    x = series[:, :N_STEPS, None]
    y = np.empty((count, N_STEPS, AHEAD), np.float32)
    for k in range(AHEAD):
        y[:, :, k] = series[:, k + 1:k + 1 + N_STEPS]
    y = y[:, target_start::target_stride]
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))


def keras_init(module):
    for name, p in module.named_parameters():
        if name.startswith("weight_ih"):
            torch.nn.init.xavier_uniform_(p)      # Keras kernel: glorot_uniform
        elif name.startswith("weight_hh"):
            torch.nn.init.orthogonal_(p)          # Keras recurrent_kernel: orthogonal
        elif name.startswith("bias"):
            torch.nn.init.zeros_(p)
            if isinstance(module, torch.nn.LSTM) and name.startswith("bias_ih"):
                with torch.no_grad():
                    p[UNITS:2 * UNITS] = 1.0      # unit_forget_bias (gates i, f, g, o)
        elif name == "weight":
            torch.nn.init.xavier_uniform_(p)      # Conv1D / Dense kernel: glorot_uniform
        else:
            torch.nn.init.zeros_(p)


class TsLstm(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm1 = torch.nn.LSTM(1, UNITS, batch_first=True)
        self.lstm2 = torch.nn.LSTM(UNITS, UNITS, batch_first=True)
        self.dense = torch.nn.Linear(UNITS, AHEAD)

    def forward(self, x):                          # (B, 50, 1)
        h, _ = self.lstm1(x)
        h, _ = self.lstm2(h)
        return self.dense(h)                       # (B, 50, 10): Linear on every step


class TsConv1dGru(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(1, UNITS, kernel_size=4, stride=2)
        self.gru1 = torch.nn.GRU(UNITS, UNITS, batch_first=True)
        self.gru2 = torch.nn.GRU(UNITS, UNITS, batch_first=True)
        self.dense = torch.nn.Linear(UNITS, AHEAD)

    def forward(self, x):                          # (B, 50, 1)
        h = self.conv(x.transpose(1, 2))           # (B, 20, 24)
        h, _ = self.gru1(h.transpose(1, 2))        # (B, 24, 20)
        h, _ = self.gru2(h)
        return self.dense(h)                       # (B, 24, 10)


class TsWavenet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rates = (1, 2, 4, 8) * 2
        self.convs = torch.nn.ModuleList(
            torch.nn.Conv1d(1 if i == 0 else UNITS, UNITS, kernel_size=2, dilation=r)
            for i, r in enumerate(self.rates))
        self.out = torch.nn.Conv1d(UNITS, AHEAD, kernel_size=1)

    def forward(self, x):                          # (B, 50, 1)
        h = x.transpose(1, 2)                      # (B, 1, 50)
        for conv, r in zip(self.convs, self.rates):
            h = torch.relu(conv(torch.nn.functional.pad(h, (r, 0))))  # causal: (k - 1) * r zeros before
        return self.out(h).transpose(1, 2)         # (B, 50, 10)


# name -> (module class, Adam learning rate, target start, target stride)
SPECS = {
    "ts_lstm": (TsLstm, 0.01, 0, 1),
    "ts_conv1d_gru": (TsConv1dGru, 0.001, 3, 2),
    "ts_wavenet": (TsWavenet, 0.001, 0, 1),
}


def run(name, args):
    cls, lr, t_start, t_stride = SPECS[name]
    torch.manual_seed(args.seed)
    x, y = make_data(args.count, args.seed, t_start, t_stride)
    n_train = round(args.count * 0.7)
    n_val = round(args.count * 0.2)
    x_train, y_train = x[:n_train], y[:n_train]
    x_val, y_val = x[n_train:n_train + n_val], y[n_train:n_train + n_val]
    bs = args.batch_size
    steps = (n_train + bs - 1) // bs

    model = cls()
    for m in model.modules():
        if m is not model:
            keras_init(m)
    loss_fn = torch.nn.MSELoss()
    opt = torch.optim.Adam(model.parameters(), lr=lr, eps=1e-7)
    gen = torch.Generator().manual_seed(args.seed)

    epoch_s, train_s, val_s = [], [], []
    for epoch in range(1, args.epochs + 1):
        model.train()
        start = time.perf_counter()
        order = torch.randperm(n_train, generator=gen)
        loss_sum = torch.zeros(())
        last_sum = torch.zeros(())
        for i in range(0, n_train, bs):
            idx = order[i:i + bs]
            xb, yb = x_train[idx], y_train[idx]
            out = model(xb)
            loss = loss_fn(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                n = xb.shape[0]
                loss_sum += loss.detach() * n
                last_sum += torch.mean((out[:, -1] - yb[:, -1]) ** 2) * n
        mid = time.perf_counter()

        model.eval()
        v_loss = v_last = 0.0
        with torch.no_grad():
            for i in range(0, n_val, bs):
                xb, yb = x_val[i:i + bs], y_val[i:i + bs]
                out = model(xb)
                v_loss += float(loss_fn(out, yb)) * xb.shape[0]
                v_last += float(torch.mean((out[:, -1] - yb[:, -1]) ** 2)) * xb.shape[0]
        end = time.perf_counter()

        train_s.append(mid - start)
        val_s.append(end - mid)
        epoch_s.append(end - start)
        print(f"{name} epoch {epoch}/{args.epochs}: {steps}/{steps} - {end - start:.3f}s "
              f"{1000 * (end - start) / steps:.3f}ms/step (train {mid - start:.3f}s, "
              f"validation {end - mid:.3f}s) - loss: {float(loss_sum) / n_train:.4f} "
              f"- last_time_step_mse: {float(last_sum) / n_train:.4f} "
              f"- val_loss: {v_loss / n_val:.4f} - val_last_time_step_mse: {v_last / n_val:.4f}",
              flush=True)

    med = statistics.median(epoch_s)
    print(f"torch model={name} epoch_s={med:.4f} ms_step={1000 * med / steps:.4f} "
          f"train_s={statistics.median(train_s):.4f} val_s={statistics.median(val_s):.4f} "
          f"steps={steps} epochs={args.epochs} threads={torch.get_num_threads()} "
          f"omp_wait={os.environ['OMP_WAIT_POLICY'].lower()}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=MODELS + ("all",), default="all")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    if args.epochs < 1 or args.batch_size < 1 or args.threads < 1 or args.count < 10:
        sys.exit("torch_ts: --epochs, --batch-size and --threads must be >= 1, --count >= 10")

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch {args.batch_size}; "
          f"epoch = training loop + validation", flush=True)
    for name in MODELS if args.model == "all" else (args.model,):
        run(name, args)


if __name__ == "__main__":
    main()
