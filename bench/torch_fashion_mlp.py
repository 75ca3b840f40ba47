#!/usr/bin/python3
"""PyTorch baseline for the Fashion-MNIST seed MLP (bench/README.md).

Run:  /usr/bin/python3 bench/torch_fashion_mlp.py [--epochs N] [--threads 2]

Trains the Keras seed model (Flatten 784 -> Dense 300 relu -> Dense 100 relu
-> Dense 10 softmax, sparse categorical cross-entropy, SGD lr 0.01, batch 32)
in PyTorch on CPU: Linear layers with Keras's initializers (glorot_uniform
kernels, zero biases), CrossEntropyLoss on the logits (what Keras computes
for softmax + sparse CCE). Data as Keras's fit gets it: Debian's Fashion-MNIST
IDX files, pixels / 255, the first 5000 training images held out for
validation, the other 55000 shuffled every epoch (seeded), batches of 32 with
a smaller last one (1719 steps).

Timed: the training loop of each epoch (shuffle, batch gather, forward,
backward, update), not data loading and not validation. Printed: one
Keras-style line per epoch, then a machine-readable last line

    torch epoch_s=2.345 ms_step=1.364 val_acc=0.8123 peak_rss_mib=300 epochs=1 threads=2 omp_wait=passive

epoch_s and ms_step are means over the epochs; val_acc is measured after the
last epoch; peak_rss_mib is the process's peak resident set size (about 225
MiB of it is torch itself). OMP_WAIT_POLICY defaults to PASSIVE (see below);
set it in the environment to override.
"""

import argparse
import gzip
import os
import resource
import sys
import time

# libgomp's default lets idle OpenMP threads spin; on this 2-vCPU machine
# that makes 2 threads 2-4x slower than 1 (measured: 3-6.6 s vs 1.3 s per
# epoch), so unless the caller says otherwise they sleep. Read by libgomp
# when torch loads, hence before the import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

DATA_DIR = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """An IDX file (optionally gzipped) as a numpy array of its element type,
    read straight into the array (no second copy of the file in memory)."""
    dtypes = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        head = f.read(4)
        if len(head) != 4 or head[0] != 0 or head[1] != 0 or head[2] not in dtypes:
            sys.exit(f"{path}: not an IDX file")
        dims = f.read(4 * head[3])
        if len(dims) != 4 * head[3]:
            sys.exit(f"{path}: truncated IDX header")
        shape = tuple(int(d) for d in np.frombuffer(dims, ">u4"))
        data = np.empty(shape, dtypes[head[2]])
        view, filled = memoryview(data).cast("B"), 0
        while filled < len(view):
            got = f.readinto(view[filled:])
            if not got:
                sys.exit(f"{path}: truncated: {filled} of {len(view)} data bytes")
            filled += got
    return data


def keras_mlp():
    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(784, 300), torch.nn.ReLU(),
        torch.nn.Linear(300, 100), torch.nn.ReLU(),
        torch.nn.Linear(100, 10),
    )
    for m in model:
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(m.weight)  # = Keras glorot_uniform
            torch.nn.init.zeros_(m.bias)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--data-dir", default=DATA_DIR)
    args = ap.parse_args()
    if args.epochs < 1 or args.batch_size < 1 or args.threads < 1:
        sys.exit("torch_fashion_mlp: --epochs, --batch-size and --threads must be >= 1")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    images = read_idx(os.path.join(args.data_dir, "train-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(args.data_dir, "train-labels-idx1-ubyte.gz"))
    pixels = images.astype(np.float32)
    del images
    np.divide(pixels, np.float32(255.0), out=pixels)
    x = torch.from_numpy(pixels)                 # (60000, 28, 28), no copy
    y = torch.from_numpy(labels.astype(np.int64))              # (60000,)
    x_valid, y_valid = x[:5000], y[:5000]        # views: rows are contiguous
    x_train, y_train = x[5000:], y[5000:]
    n = x_train.shape[0]
    steps = (n + args.batch_size - 1) // args.batch_size

    model = keras_mlp()
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(args.seed)

    epoch_times = []
    for epoch in range(1, args.epochs + 1):
        model.train()
        start = time.perf_counter()
        order = torch.randperm(n, generator=gen)
        loss_sum = torch.zeros(())
        correct = torch.zeros((), dtype=torch.int64)
        for i in range(0, n, args.batch_size):
            idx = order[i:i + args.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            logits = model(xb)
            loss = loss_fn(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                loss_sum += loss.detach()
                correct += (logits.argmax(1) == yb).sum()
        seconds = time.perf_counter() - start
        epoch_times.append(seconds)

        model.eval()
        with torch.no_grad():
            logits = model(x_valid)
            val_loss = float(loss_fn(logits, y_valid))
            val_acc = float((logits.argmax(1) == y_valid).double().mean())
        print(f"Epoch {epoch}/{args.epochs}: {steps}/{steps} - {seconds:.3f}s "
              f"{1000 * seconds / steps:.3f}ms/step - loss: {float(loss_sum) / steps:.4f} "
              f"- accuracy: {int(correct) / n:.4f} - val_loss: {val_loss:.4f} "
              f"- val_accuracy: {val_acc:.4f}", flush=True)

    epoch_s = sum(epoch_times) / len(epoch_times)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{steps} steps of {args.batch_size}; training loop only")
    print(f"torch epoch_s={epoch_s:.3f} ms_step={1000 * epoch_s / steps:.3f} "
          f"val_acc={val_acc:.4f} peak_rss_mib={peak_mib:.0f} "
          f"epochs={args.epochs} threads={torch.get_num_threads()} "
          f"omp_wait={os.environ['OMP_WAIT_POLICY'].lower()}")


if __name__ == "__main__":
    main()
