"""The machine's floors, measured in the same run: STREAM-like triad bandwidth and W3's matmuls.

    python -m benchmarks.bandwidth [--n 16777216] [--reps 10]

Triad a = b + s*c over float32 arrays in a numba prange loop with two threads; bandwidth is
the best of `reps` (STREAM convention: 3 arrays x 4 bytes per element, write-allocate not
counted — the W1/W2 minimal traffic is counted the same way). The W3 floor is the median
time of the step's five matmuls through numpy's BLAS.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any, Optional

from . import common


def triad_bandwidth(n: int, reps: int) -> dict[str, Any]:
    """Best-of-`reps` triad bandwidth in bytes/s (numba, BENCH_THREADS threads)."""
    import numpy as np
    from numba import njit, prange

    @njit(parallel=True)
    def triad(a, b, c, s):
        for i in prange(a.size):
            a[i] = b[i] + s * c[i]

    b = np.ones(n, np.float32)
    c = np.full(n, 2.0, np.float32)
    a = np.empty(n, np.float32)
    s = np.float32(3.0)
    triad(a, b, c, s)  # compile + first touch
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        triad(a, b, c, s)
        best = min(best, time.perf_counter() - t0)
    if not (a[:8] == 7.0).all():
        raise RuntimeError("triad kernel produced a wrong result")
    return {"triad_bytes_per_s": 3 * 4 * n / best, "triad_n": n, "triad_best_s": best}


def matmul_floor(size: Any, reps: int) -> dict[str, Any]:
    """Median time of W3's five matmuls (forward 2, backward 3) through numpy's BLAS."""
    import numpy as np

    batch, d_in, hidden, classes = size
    rng = np.random.default_rng(0)
    X = rng.standard_normal((batch, d_in), dtype=np.float32)
    W1 = rng.standard_normal((d_in, hidden), dtype=np.float32)
    W2 = rng.standard_normal((hidden, classes), dtype=np.float32)
    h = np.empty((batch, hidden), np.float32)
    g = np.empty((batch, classes), np.float32)
    gh = np.empty_like(h)
    gW1, gW2 = np.empty_like(W1), np.empty_like(W2)
    times = []
    for _ in range(reps + 2):
        t0 = time.perf_counter()
        np.matmul(X, W1, out=h)
        np.matmul(h, W2, out=g)
        np.matmul(h.T, g, out=gW2)
        np.matmul(g, W2.T, out=gh)
        np.matmul(X.T, gh, out=gW1)
        times.append(time.perf_counter() - t0)
    return {"w3_matmul_s": statistics.median(times[2:])}


def measure(n: int, reps: int, w3_size: Optional[Any]) -> dict[str, Any]:
    """Triad bandwidth, and the W3 matmul floor when a size is given."""
    res: dict[str, Any] = {"threads": int(os.environ.get("BENCH_THREADS", common.THREADS))}
    res.update(triad_bandwidth(n, reps))
    if w3_size is not None:
        res.update(matmul_floor(w3_size, max(reps, 5)))
    return res


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1 << 24)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--sizes", default="full", help="preset whose W3 size sets the matmul floor")
    a = p.parse_args(argv)
    from .workloads import SIZES

    try:
        res = measure(a.n, a.reps, SIZES[a.sizes]["W3"])
        res["status"] = "OK"
    except Exception as e:  # reported to the parent, which prints the bound as unknown
        res = {"status": "ERROR", "reason": f"{type(e).__name__}: {e}"}
    common.emit(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
