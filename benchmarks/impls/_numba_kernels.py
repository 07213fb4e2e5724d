"""Hand-written fused Numba kernels: the "what fusion can reach" reference.

Imported only after NUMBA_CACHE_DIR / NUMBA_NUM_THREADS are set (benchmarks.impls.numba_impl).
float32 arithmetic (constants are float32), float64 loss accumulators.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

F2 = np.float32(2.0)
F4 = np.float32(4.0)
HALF = np.float32(0.5)
ONE = np.float32(1.0)
C = np.float32(0.7978845608)
A = np.float32(0.044715)
A3 = np.float32(3 * 0.044715)
HC = np.float32(0.5 * 0.7978845608)


@njit(parallel=True, cache=True)
def square_grad(x, gx):  # W1: x.grad = 4x in one pass (y is never read, so never written)
    for i in prange(x.size):
        gx[i] = F4 * x[i]


@njit(cache=True, inline="always")
def _gelu_mse_elem(x, t, w, b, inv):
    z = x * w + b
    z2 = z * z
    th = np.float32(math.tanh(C * (z + A * z * z2)))
    h = HALF * z * (ONE + th)
    r = h - t
    dh = HALF * (ONE + th) + HC * z * (ONE - th * th) * (ONE + A3 * z2)
    return inv * r * dh, r * r


@njit(parallel=True, cache=True)
def gelu_mse_par(x, t, w, b, gw, gb):  # W2: forward, loss and both gradients in one pass
    n = x.size
    inv = np.float32(2.0 / n)
    acc = 0.0
    for i in prange(n):
        g, r2 = _gelu_mse_elem(x[i], t[i], w[i], b[i], inv)
        gw[i] = g * x[i]
        gb[i] = g
        acc += r2
    return acc / n


@njit(cache=True)
def gelu_mse_ser(x, t, w, b, gw, gb):  # W4: the same, serial (n=64)
    n = x.size
    inv = np.float32(2.0 / n)
    acc = 0.0
    for i in range(n):
        g, r2 = _gelu_mse_elem(x[i], t[i], w[i], b[i], inv)
        gw[i] = g * x[i]
        gb[i] = g
        acc += r2
    return acc / n


@njit(parallel=True, cache=True)
def bias_tanh(z, b):  # W3: h = tanh(z + b) in place
    rows, cols = z.shape
    for i in prange(rows):
        for j in range(cols):
            z[i, j] = np.float32(math.tanh(z[i, j] + b[j]))


@njit(cache=True)
def softmax_xent(logits, b2, y, g, gb2):  # W3: loss, dlogits and db2 (small: serial)
    rows, cols = logits.shape
    inv = np.float32(1.0 / rows)
    loss = 0.0
    for j in range(cols):
        gb2[j] = 0
    for i in range(rows):
        m = logits[i, 0] + b2[0]
        for j in range(cols):
            m = max(m, logits[i, j] + b2[j])
        s = np.float32(0.0)
        for j in range(cols):
            e = np.float32(math.exp(logits[i, j] + b2[j] - m))
            g[i, j] = e
            s += e
        loss -= logits[i, y[i]] + b2[y[i]] - m - math.log(s)
        for j in range(cols):
            v = g[i, j] / s
            if j == y[i]:
                v -= ONE
            v *= inv
            g[i, j] = v
            gb2[j] += v
    return loss / rows


@njit(parallel=True, cache=True)
def tanh_back(gh, h, gb1):  # W3: gz = gh * (1 - h^2) in place, gb1 = column sums
    rows, cols = gh.shape
    for j in prange(cols):
        s = np.float32(0.0)
        for i in range(rows):
            v = gh[i, j] * (ONE - h[i, j] * h[i, j])
            gh[i, j] = v
            s += v
        gb1[j] = s


@njit(parallel=True, cache=True)
def sgd(p, g, lr):  # p -= lr * g (flat views)
    for i in prange(p.size):
        p[i] -= lr * g[i]


@njit(cache=True)
def cflow(a):  # W5: the tutorial's f(a) and dc/da
    b0 = a[0] * F2
    b1 = a[1] * F2
    scale = np.float32(2.0)
    while abs(b0) + abs(b1) < 1000:
        b0 *= F2
        b1 *= F2
        scale *= F2
    if b0 + b1 >= 0:
        return b0, scale, np.float32(0.0)
    return b1, np.float32(0.0), scale
