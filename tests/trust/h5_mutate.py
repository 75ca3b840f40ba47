#!/usr/bin/python3
"""h5_mutate.py — a quick mutation fuzzer for the weights loader's HDF5 path.

usage: h5_mutate.py SEED.h5 RUNS COMMAND...   (COMMAND gets the mutated
file's path appended after a literal {} or at the end)

Each run copies SEED.h5 with 1 to 16 bytes overwritten (random bytes, bit
flips, 0x00/0xff runs; three in four inside the metadata, the first 12 KB),
or truncated, then runs COMMAND on it with a 30 s limit. Exit status 0 or 1
is an answer; a signal, another status or the limit is a failure, counted
and kept in ./h5_mutate_failures/. Prints the counts as one line:
  runs N ok N refused N crashed N hung N
Used to measure docs/security.md's defence (tests/trust/README.md). Not a
CTest test: it takes minutes and its outcome is random by design.
"""
import os, random, shutil, signal, subprocess, sys, tempfile

def mutate(data, rng):
    data = bytearray(data)
    if rng.random() < 0.05:
        return data[:rng.randrange(1, len(data))]
    for _ in range(rng.randint(1, 16)):
        limit = min(len(data), 12288) if rng.random() < 0.75 else len(data)
        at = rng.randrange(limit)
        kind = rng.random()
        if kind < 0.5:
            data[at] = rng.randrange(256)
        elif kind < 0.8:
            data[at] ^= 1 << rng.randrange(8)
        else:
            for k in range(at, min(at + rng.randint(1, 8), len(data))):
                data[k] = 0xff if kind < 0.9 else 0
    return data

def main():
    seed_file, runs, command = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    rng = random.Random(int(os.environ.get("MUTATE_SEED", "1")))
    data = open(seed_file, "rb").read()
    counts = dict(ok=0, refused=0, crashed=0, hung=0)
    keep = "h5_mutate_failures"
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "mutated.h5")
    for i in range(runs):
        with open(path, "wb") as f:
            f.write(mutate(data, rng))
        argv = [path if a == "{}" else a for a in command]
        if "{}" not in command:
            argv.append(path)
        try:
            rc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30).returncode
            kind = "ok" if rc == 0 else "refused" if rc == 1 else "crashed"
        except subprocess.TimeoutExpired:
            kind = "hung"
        counts[kind] += 1
        if (i + 1) % 100 == 0:  # a run cut short still leaves its figures
            print("after %d: %s" % (i + 1, counts), flush=True)
        if kind in ("crashed", "hung"):
            os.makedirs(keep, exist_ok=True)
            shutil.copy(path, os.path.join(keep, "%s_%d.h5" % (kind, i)))
    shutil.rmtree(tmp)
    print("runs %d ok %d refused %d crashed %d hung %d" %
          (runs, counts["ok"], counts["refused"], counts["crashed"], counts["hung"]))

main()
