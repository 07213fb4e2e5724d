"""The machine's floors, measured in the same run: memory bandwidth, W3's matmuls, W9's GEMMs.

    python -m benchmarks.bandwidth [--n 16777216] [--reps 10]

Bandwidth is the best over several STREAM-like kernels (numba prange over float32 arrays,
BENCH_THREADS threads; write-allocate not counted, as in STREAM and in the W1/W2 minimal
traffic): copy (1 read, 1 write), scale, add and triad, and one kernel with W2's own pattern
(4 reads, 2 writes), each the best of `reps` runs. The harness measures the floors before and
after the rows and keeps the best of both (`merge`); a measured row that still beats the
resulting bound lowers it (benchmarks.report). The matmul floors are the best time of the
GEMMs alone through numpy's BLAS: W3's five matmuls, and W9c's: the three im2col GEMMs of one
3x3 convolution's forward and backward on W9's shape.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any, Callable, Optional

from . import common


def _kernels() -> dict[str, tuple[Callable, int, int]]:
    """name -> (numba kernel over (out0, out1, in0..in3), arrays read, arrays written)."""
    from numba import njit, prange

    @njit(parallel=True)
    def copy(a, a2, b, c, d, e):
        for i in prange(a.size):
            a[i] = b[i]

    @njit(parallel=True)
    def scale(a, a2, b, c, d, e):
        for i in prange(a.size):
            a[i] = 3.0 * b[i]

    @njit(parallel=True)
    def add(a, a2, b, c, d, e):
        for i in prange(a.size):
            a[i] = b[i] + c[i]

    @njit(parallel=True)
    def triad(a, a2, b, c, d, e):
        for i in prange(a.size):
            a[i] = b[i] + 3.0 * c[i]

    @njit(parallel=True)
    def read4_write2(a, a2, b, c, d, e):
        for i in prange(a.size):
            s = b[i] * c[i] + d[i]
            a[i] = s - e[i]
            a2[i] = s
    return {"copy": (copy, 1, 1), "scale": (scale, 1, 1), "add": (add, 2, 1),
            "triad": (triad, 2, 1), "read4_write2": (read4_write2, 4, 2)}


def bandwidths(n: int, reps: int) -> dict[str, Any]:
    """Each kernel's best-of-`reps` bandwidth (bytes/s) and the best of them."""
    import numpy as np

    ins = [np.full(n, v, np.float32) for v in (1.0, 2.0, 3.0, 4.0)]
    out0, out1 = np.empty(n, np.float32), np.empty(n, np.float32)
    res: dict[str, Any] = {"bw_n": n, "bw_kernels": {}}
    for name, (kernel, reads, writes) in _kernels().items():
        kernel(out0, out1, *ins)  # compile + first touch
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            kernel(out0, out1, *ins)
            best = min(best, time.perf_counter() - t0)
        want = {"copy": 1.0, "scale": 3.0, "add": 3.0, "triad": 7.0, "read4_write2": 1.0}[name]
        if not (out0[:8] == want).all():
            raise RuntimeError(f"bandwidth kernel {name} produced a wrong result")
        res["bw_kernels"][name] = (reads + writes) * 4 * n / best
    best_name = max(res["bw_kernels"], key=res["bw_kernels"].get)
    res["bw_bytes_per_s"] = res["bw_kernels"][best_name]
    res["bw_kernel"] = best_name
    res["triad_bytes_per_s"] = res["bw_kernels"]["triad"]
    return res


def _best(fn: Callable[[], None], reps: int) -> tuple[float, float]:
    times = []
    for _ in range(reps + 2):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times[2:]), statistics.median(times[2:])


def matmul_floor(size: Any, reps: int) -> dict[str, Any]:
    """Best (and median) time of W3's five matmuls (forward 2, backward 3) through numpy's BLAS."""
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

    def five() -> None:
        np.matmul(X, W1, out=h)
        np.matmul(h, W2, out=g)
        np.matmul(h.T, g, out=gW2)
        np.matmul(g, W2.T, out=gh)
        np.matmul(X.T, gh, out=gW1)

    best, med = _best(five, reps)
    return {"w3_matmul_s": best, "w3_matmul_median_s": med}


def conv_gemm_floor(size: Any, reps: int) -> dict[str, Any]:
    """Best time of one 3x3 convolution's GEMMs (stride 1, pad 1, C -> C channels on W9's
    shape) as im2col writes them: forward (N*H*W, 9C) @ (9C, C), input gradient
    (N*H*W, C) @ (C, 9C), weight gradient (C, N*H*W) @ (N*H*W, 9C); no im2col/col2im."""
    import numpy as np

    batch, ch, hw = size[:3]
    m, k = batch * hw * hw, 9 * ch
    rng = np.random.default_rng(0)
    cols = rng.standard_normal((m, k), dtype=np.float32)
    w = rng.standard_normal((k, ch), dtype=np.float32)
    gy = rng.standard_normal((m, ch), dtype=np.float32)
    y, gcols, gw = np.empty((m, ch), np.float32), np.empty((m, k), np.float32), np.empty((ch, k), np.float32)

    def three() -> None:
        np.matmul(cols, w, out=y)
        np.matmul(gy, w.T, out=gcols)
        np.matmul(gy.T, cols, out=gw)

    best, med = _best(three, reps)
    return {"w9c_gemm_s": best, "w9c_gemm_median_s": med}


def measure(n: int, reps: int, w3_size: Optional[Any], w9c_size: Optional[Any] = None) -> dict[str, Any]:
    """Bandwidths, and the matmul floors for the sizes given."""
    res: dict[str, Any] = {"threads": int(os.environ.get("BENCH_THREADS", common.THREADS))}
    res.update(bandwidths(n, reps))
    if w3_size is not None:
        res.update(matmul_floor(w3_size, max(reps, 5)))
    if w9c_size is not None:
        res.update(conv_gemm_floor(w9c_size, max(reps, 5)))
    return res


def merge(*floors: dict[str, Any]) -> dict[str, Any]:
    """The best of several floor measurements: the highest bandwidth per kernel, the lowest
    GEMM times; `measurements` counts how many were OK."""
    ok = [f for f in floors if f and f.get("status") == "OK"]
    if not ok:
        return floors[0] if floors else {"status": "ERROR", "reason": "no floor measurement"}
    out = dict(ok[0])
    out["measurements"] = len(ok)
    kernels: dict[str, float] = {}
    for f in ok:
        for name, bw in (f.get("bw_kernels") or {}).items():
            kernels[name] = max(kernels.get(name, 0.0), bw)
    if kernels:
        out["bw_kernels"] = kernels
        out["bw_kernel"] = max(kernels, key=kernels.get)
        out["bw_bytes_per_s"] = kernels[out["bw_kernel"]]
        out["triad_bytes_per_s"] = kernels.get("triad")
    for key in ("w3_matmul_s", "w9c_gemm_s"):
        vals = [f[key] for f in ok if f.get(key)]
        if vals:
            out[key] = min(vals)
    return out


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1 << 24)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--sizes", default="full", help="preset whose W3/W9c sizes set the matmul floors")
    a = p.parse_args(argv)
    from .workloads import SIZES

    try:
        res = measure(a.n, a.reps, SIZES[a.sizes]["W3"], SIZES[a.sizes]["W9c"])
        res["status"] = "OK"
    except Exception as e:  # reported to the parent, which prints the bound as unknown
        res = {"status": "ERROR", "reason": f"{type(e).__name__}: {e}"}
    common.emit(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
