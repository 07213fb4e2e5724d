"""One epoch of the digits example's training loop, tracegrad against the same loop in PyTorch.

    python -m benchmarks.epoch_bench [--repeats 5] [--threads 2] [--batch-size 64]

tracegrad: the example's network, data split, DataLoader (shuffle, last_batch="discard"),
Adam with the cosine schedule and the hybridized step under `tracegrad.jit`, exactly as
`tracegrad.examples.digits.train` runs them (evaluation left out). PyTorch: the same
network as `nn.Sequential`, `torch.utils.data.DataLoader` over a `TensorDataset` (shuffle,
drop_last), `torch.optim.Adam` with a per-step cosine `LambdaLR`, the idiomatic eager loop.
Both read the loss of every batch as a Python float, as the example does. The first epoch
of each (compile, warm-up) is not timed; then the epochs alternate, `--repeats` each, and
the line printed gives the medians, minima and their ratio tracegrad / PyTorch (issue 10's
target: at most 1.2).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from typing import Any, Callable


def _set_threads(n: int) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
                "TRACEGRAD_NUM_THREADS"):
        os.environ[var] = str(n)


def tracegrad_epoch(batch_size: int, lr: float, epochs: int, seed: int = 0) -> Callable[[], float]:
    """A function running one training epoch of the digits example; returns the mean loss."""
    from tracegrad import npx
    from tracegrad.examples import digits

    npx.set_np()
    _, _, loader, step = digits.setup(epochs, batch_size, lr, seed)

    def epoch() -> float:
        total, count = 0.0, 0
        for X, y in loader:
            loss = step(X, y)
            total += float(loss.sum())
            count += X.shape[0]
        return total / count

    return epoch


def torch_epoch(batch_size: int, lr: float, epochs: int, threads: int, seed: int = 0) -> Callable[[], float]:
    """The same epoch written the idiomatic PyTorch way."""
    import torch
    from torch import nn

    from tracegrad.examples import digits

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    Xtr, ytr, _, _ = digits.load_digits(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 2 * 2, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 10))
    data = torch.utils.data.TensorDataset(torch.from_numpy(Xtr), torch.from_numpy(ytr).long())
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=True)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    total_steps = epochs * len(loader)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: 0.02 + 0.98 * (1 + math.cos(math.pi * min(t, total_steps) / total_steps)) / 2)
    loss_fn = nn.CrossEntropyLoss(reduction="none")
    net.train()

    def epoch() -> float:
        total, count = 0.0, 0
        for X, y in loader:
            opt.zero_grad()
            loss = loss_fn(net(X), y)
            loss.mean().backward()
            opt.step()
            sched.step()
            total += float(loss.detach().sum())
            count += X.shape[0]
        return total / count

    return epoch


def main(argv: Any = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.epoch_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="timed epochs of each, alternating")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.003)
    a = p.parse_args(argv)
    _set_threads(a.threads)  # before numpy, numba and torch load their thread pools
    epochs = a.repeats + 1
    runs = {"tracegrad": tracegrad_epoch(a.batch_size, a.lr, epochs),
            "torch": torch_epoch(a.batch_size, a.lr, epochs, a.threads)}
    times: dict = {k: [] for k in runs}
    for name, fn in runs.items():
        t = time.perf_counter()
        loss = fn()
        print(f"{name}: first epoch {time.perf_counter() - t:.2f} s (compile and warm-up), loss {loss:.4f}")
    for _ in range(a.repeats):
        for name, fn in runs.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    low = {k: min(v) for k, v in times.items()}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    for k in runs:
        print(f"{k}: epoch median {med[k] * 1e3:.1f} ms, min {low[k] * 1e3:.1f} ms")
    print(f"ratio tracegrad / torch: median {med['tracegrad'] / med['torch']:.2f}, "
          f"min {low['tracegrad'] / low['torch']:.2f} (target <= 1.2; {a.threads} threads, "
          f"load average {load:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
