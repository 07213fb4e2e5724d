"""Convolution forward+backward (the three table rows' host code) against its GEMMs alone.

    python -m benchmarks.nn_conv

Run it with OPENBLAS_NUM_THREADS=1 for the work ratio (CPU time, one BLAS thread).
The GEMM floor is the three numpy.matmul calls of the same sizes on ready operands
(forward W @ cols, backward data W^T @ gy, backward weight gy @ cols^T).
"""

from __future__ import annotations

import time

import os

import numpy

from tracegrad.ir import TABLE, Op

# CPU time is steadier than wall time on a shared machine; TG_BENCH_WALL=1 for wall time
CLOCK = time.perf_counter if os.environ.get("TG_BENCH_WALL") == "1" else time.process_time

SHAPES = {  # name: (x shape, w shape, pad)
    "W9 conv3x3 (32, 64->64, 16x16, pad 1)": ((32, 64, 16, 16), (64, 64, 3, 3), 1),
    "LeNet conv1 (256, 1->6, 28x28, 5x5 pad 2)": ((256, 1, 28, 28), (6, 1, 5, 5), 2),
    "LeNet conv2 (256, 6->16, 14x14, 5x5)": ((256, 6, 14, 14), (16, 6, 5, 5), 0),
}


def _best(f, reps: int = 7) -> float:
    f()
    ts = []
    for _ in range(reps):
        t = CLOCK()
        f()
        ts.append(CLOCK() - t)
    return min(ts)


def measure(xs, ws, pad) -> tuple[float, float, dict]:
    rs = numpy.random.RandomState(0)
    x = rs.uniform(-1, 1, xs).astype(numpy.float32)
    w = rs.uniform(-1, 1, ws).astype(numpy.float32)
    p = {"stride": (1, 1), "pad": (pad, pad), "dilate": (1, 1), "groups": 1}
    y = TABLE[Op.CONV].impl(x, w, **p)
    gy = rs.uniform(-1, 1, y.shape).astype(numpy.float32)
    parts = {
        "fwd": lambda: TABLE[Op.CONV].impl(x, w, **p),
        "bwd_data": lambda: TABLE[Op.CONV_BWD_DATA].impl(gy, w, x_shape=xs, **p),
        "bwd_weight": lambda: TABLE[Op.CONV_BWD_WEIGHT].impl(x, gy, w_shape=ws, **p),
    }
    times = {k: _best(f) for k, f in parts.items()}
    ck = ws[1] * ws[2] * ws[3]
    npix = y.shape[0] * y.shape[2] * y.shape[3]
    wm = w.reshape(ws[0], ck)
    cols = rs.uniform(-1, 1, (ck, npix)).astype(numpy.float32)
    g2 = rs.uniform(-1, 1, (ws[0], npix)).astype(numpy.float32)
    gemm = _best(lambda: (wm @ cols, wm.T @ g2, g2 @ cols.T))
    return sum(times.values()), gemm, times


def main() -> None:
    for name, (xs, ws, pad) in SHAPES.items():
        total, gemm, parts = measure(xs, ws, pad)
        detail = ", ".join(f"{k} {v * 1e3:.2f}" for k, v in parts.items())
        print(f"{name}: fwd+bwd {total * 1e3:.2f} ms ({detail}); GEMMs alone {gemm * 1e3:.2f} ms; "
              f"ratio {total / gemm:.2f}x")


if __name__ == "__main__":
    main()
