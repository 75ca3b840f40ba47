#!/usr/bin/python3
"""PyTorch baseline for the Fashion-MNIST CNN: training step and inference (bench/README.md).

Run:  /usr/bin/python3 bench/torch_fashion_cnn.py [--train-steps N] [--infer-batches N] [--threads 2]

The network of models/fashion_cnn.yaml in PyTorch on CPU, NCHW:
Conv2d 7x7 1->64 relu (padding='same') -> MaxPool 2 -> Conv 3x3 64->128 relu
-> Conv 3x3 128->128 relu -> MaxPool 2 -> Conv 3x3 128->256 relu -> Conv 3x3
256->256 relu -> MaxPool 2 (7 -> 3, floor, as Keras' 'valid' pooling) ->
Flatten 2304 -> Dense 128 relu -> Dropout 0.5 -> Dense 64 relu -> Dropout 0.5
-> Dense 10; CrossEntropyLoss on the logits (= softmax + sparse categorical
cross-entropy); the optimizer of the YAML model, Keras defaults: --optimizer
nadam (default: torch.optim.NAdam, lr 0.001, eps 1e-7, momentum_decay 0.004 =
Keras' schedule) or adam (torch.optim.Adam, lr 0.001, eps 1e-7).

Timed with time.perf_counter, each call separately, after --warmup untimed
calls; medians reported (with min and max):
  train  one step on a batch of 32 random 28x28 images in [0,1) and random
         labels: zero_grad, forward, loss, backward, optimizer step (train mode,
         Dropout on).
  infer  forward + softmax of a batch of 256 such images under
         torch.no_grad() in eval mode.
Inputs cycle through a few batches drawn beforehand. The FLOPs per step are
counted as bench_cnn.c counts them (2 * MACs of the conv and dense layers,
training = 3 x forward). Last line, machine-readable:

    torch train_ms=... infer_ms=... train_gflops=... infer_gflops=... threads=2 omp_wait=passive optimizer=nadam

OMP_WAIT_POLICY defaults to PASSIVE (see bench/README.md); set it in the
environment to override.
"""

import argparse
import os
import statistics
import sys
import time

# As in torch_fashion_mlp.py: spinning OpenMP workers make 2 threads slower
# than 1 on this 2-vCPU machine. Read by libgomp when torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

TRAIN_BATCH = 32
INFER_BATCH = 256
POOL = 4

# (out h, out w, in channels, out channels, kernel side): as in bench_cnn.c
LAYERS = [(28, 28, 1, 64, 7), (14, 14, 64, 128, 3), (14, 14, 128, 128, 3),
          (7, 7, 128, 256, 3), (7, 7, 256, 256, 3),
          (1, 1, 2304, 128, 1), (1, 1, 128, 64, 1), (1, 1, 64, 10, 1)]
FWD_FLOP = sum(2 * h * w * ci * co * k * k for h, w, ci, co, k in LAYERS)


def fashion_cnn():
    conv = lambda ci, co, k: torch.nn.Conv2d(ci, co, k, padding="same")  # noqa: E731
    model = torch.nn.Sequential(
        conv(1, 64, 7), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        conv(64, 128, 3), torch.nn.ReLU(),
        conv(128, 128, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        conv(128, 256, 3), torch.nn.ReLU(),
        conv(256, 256, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(2304, 128), torch.nn.ReLU(), torch.nn.Dropout(0.5),
        torch.nn.Linear(128, 64), torch.nn.ReLU(), torch.nn.Dropout(0.5),
        torch.nn.Linear(64, 10),
    )
    for m in model:
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.xavier_uniform_(m.weight)  # = Keras glorot_uniform
            torch.nn.init.zeros_(m.bias)
    return model


def timed(fn, warmup, n):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--infer-batches", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--optimizer", choices=["nadam", "adam"], default="nadam")
    args = ap.parse_args()
    if min(args.train_steps, args.infer_batches, args.warmup, args.threads) < 1:
        sys.exit("torch_fashion_cnn: --train-steps, --infer-batches, --warmup and --threads must be >= 1")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    params = sum(co * ci * k * k + co for _, _, ci, co, k in LAYERS)
    model = fashion_cnn()
    assert sum(p.numel() for p in model.parameters()) == params, "layer table out of date"
    loss_fn = torch.nn.CrossEntropyLoss()
    if args.optimizer == "nadam":
        opt = torch.optim.NAdam(model.parameters(), lr=0.001, eps=1e-7, momentum_decay=0.004)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=0.001, eps=1e-7)

    tx = [torch.rand(TRAIN_BATCH, 1, 28, 28) for _ in range(POOL)]
    ty = [torch.randint(0, 10, (TRAIN_BATCH,)) for _ in range(POOL)]
    ix = [torch.rand(INFER_BATCH, 1, 28, 28) for _ in range(POOL)]
    state = {"i": 0, "loss": float("nan")}

    def train_step():
        i = state["i"] % POOL
        state["i"] += 1
        loss = loss_fn(model(tx[i]), ty[i])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        state["loss"] = loss.detach()

    def infer():
        i = state["i"] % POOL
        state["i"] += 1
        with torch.no_grad():
            state["probs"] = torch.softmax(model(ix[i]), dim=1)

    model.train()
    tr = timed(train_step, args.warmup, args.train_steps)
    model.eval()
    state["i"] = 0
    pr = timed(infer, args.warmup, args.infer_batches)

    train_flop = 3 * FWD_FLOP * TRAIN_BATCH
    infer_flop = FWD_FLOP * INFER_BATCH
    train_gflops = train_flop / tr[0] / 1e9
    infer_gflops = infer_flop / pr[0] / 1e9
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"mkldnn {torch.backends.mkldnn.is_available()}, {type(opt).__name__}; "
          f"forward {FWD_FLOP / 1e6:.1f} MFLOP/sample")
    print(f"train  b{TRAIN_BATCH}: {1e3 * tr[0]:.2f} ms/step median (min {1e3 * tr[1]:.2f}, "
          f"max {1e3 * tr[2]:.2f}; {args.train_steps} steps after {args.warmup} warm-up), "
          f"{train_gflops:.1f} GFLOP/s; last loss {float(state['loss']):.4f}")
    print(f"infer  b{INFER_BATCH}: {1e3 * pr[0]:.2f} ms/batch median (min {1e3 * pr[1]:.2f}, "
          f"max {1e3 * pr[2]:.2f}; {args.infer_batches} batches after {args.warmup} warm-up), "
          f"{infer_gflops:.1f} GFLOP/s")
    print(f"torch train_ms={1e3 * tr[0]:.3f} infer_ms={1e3 * pr[0]:.3f} "
          f"train_gflops={train_gflops:.2f} infer_gflops={infer_gflops:.2f} "
          f"threads={torch.get_num_threads()} omp_wait={os.environ['OMP_WAIT_POLICY'].lower()} "
          f"optimizer={args.optimizer}")


if __name__ == "__main__":
    main()
