#!/usr/bin/env python3
"""ctc_torch.py - PyTorch's nn.CTCLoss on the CPU at the shapes and on the very inputs
of bench/ctc_bench.c, timed the same way: one step is the loss and its gradient with
respect to the logits (log_softmax in the graph, as nn.CTCLoss needs it, then
CTCLoss(reduction='sum', blank=0) and backward).

Inputs: the counter-based splitmix64 of ctc_bench.c, so both programs see the same
logits and labels: logit i = U(-1, 1) from draw i of the seed, label j = 1 + (draw j
of seed ^ LABEL_SALT) mod (A - 1).

Run with the OpenMP OpenBLAS (the one recur links):
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 bench/ctc_torch.py
Prints lines in ctc_bench's format (no warp-ctc column)."""
import argparse
import sys
import time

import numpy as np
import torch

LABEL_SALT = 0x5BD1E9955BD1E995
SHAPES = {"a28": (150, 40, 28), "a5000": (150, 20, 5000)}
M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def draws(seed, n, chunk=1 << 22):
    """Draws 0..n-1 of the counter-based splitmix64 of ctc_bench.c, as uint64."""
    out = np.empty(n, dtype=np.uint64)
    golden = np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        for s in range(0, n, chunk):
            i = np.arange(s + 1, min(n, s + chunk) + 1, dtype=np.uint64)
            z = np.uint64(seed) + i * golden
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            out[s:s + len(i)] = z ^ (z >> np.uint64(31))
    return out


def inputs(T, L, A, B, seed):
    x = ((draws(seed, T * B * A) >> np.uint64(40)).astype(np.float64) * 2.0**-24 * 2.0 - 1.0).astype(np.float32)
    lab = 1 + (draws(seed ^ LABEL_SALT, B * L) % np.uint64(A - 1)).astype(np.int64)
    return x.reshape(T, B, A), lab.reshape(B, L)


def run(name, T, L, A, B, threads, reps, warmup, seed):
    torch.set_num_threads(threads)
    x, lab = inputs(T, L, A, B, seed)
    logits = torch.from_numpy(x).requires_grad_(True)
    targets = torch.from_numpy(lab)
    in_len = torch.full((B,), T, dtype=torch.long)
    tg_len = torch.full((B,), L, dtype=torch.long)
    ctc = torch.nn.CTCLoss(blank=0, reduction="sum", zero_infinity=False)
    ms = []
    for r in range(warmup + reps):
        logits.grad = None
        t0 = time.perf_counter()
        loss = ctc(logits.log_softmax(2), targets, in_len, tg_len)
        loss.backward()
        t1 = time.perf_counter()
        if r >= warmup:
            ms.append((t1 - t0) * 1e3)
    ms.sort()
    med = ms[len(ms) // 2] if len(ms) % 2 else 0.5 * (ms[len(ms) // 2 - 1] + ms[len(ms) // 2])
    print(f"{name:<6} {T:4d} {L:3d} {A:5d} {B:4d} {threads:3d} | {med:10.3f} {ms[0]:10.3f} {ms[-1]:10.3f} | "
          f"{loss.item():16.6f} | {'-':>8}", flush=True)


def ints(s):
    v = [int(t) for t in s.split(",") if t]
    if not v or min(v) < 1:
        raise argparse.ArgumentTypeError(f"bad list '{s}'")
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=ints, default=[1, 2])
    ap.add_argument("--B", type=ints, default=[1, 16, 32, 64, 128])
    ap.add_argument("--shapes", default="a28,a5000")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--T", type=int, default=0)
    ap.add_argument("--L", type=int, default=0)
    ap.add_argument("--A", type=int, default=0)
    a = ap.parse_args()
    custom = (a.T, a.L, a.A)
    if any(custom) and not all(custom):
        sys.exit("ctc_torch.py: --T, --L and --A go together")
    shapes = [("custom", custom)] if all(custom) else [(s, SHAPES[s]) for s in SHAPES if s in a.shapes]
    if not shapes:
        sys.exit(f"ctc_torch.py: no shape in '{a.shapes}' (a28, a5000)")
    print(f"# PyTorch {torch.__version__} nn.CTCLoss (log_softmax + loss + backward, sum reduction), "
          f"median of {a.reps} after {a.warmup} warm-up")
    print(f"{'shape':<6} {'T':>4} {'L':>3} {'A':>5} {'B':>4} {'thr':>3} | {'median_ms':>10} {'min_ms':>10} "
          f"{'max_ms':>10} | {'loss':>16} | {'warp_ms':>8}")
    for name, (T, L, A) in shapes:
        for B in a.B:
            for th in a.threads:
                run(name, T, L, A, B, th, a.reps, a.warmup, a.seed)


if __name__ == "__main__":
    main()
