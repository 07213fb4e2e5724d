"""Hand-written fused Numba kernels: the "what fusion can reach" reference.

Imported only after NUMBA_CACHE_DIR / NUMBA_NUM_THREADS are set (benchmarks.impls.numba_impl).
float32 arithmetic (constants are float32), float64 loss accumulators. tanh is Eigen's float32
rational approximation (clamp, polynomial, one division; <= 3e-7 absolute error), saturated
to exactly +-1 beyond the clamp (otherwise W2's gradients come out ~3.5e-5 normwise relative,
over the harness's 1e-5 gate): `math.tanh` is a scalar
libm call that llvmlite cannot vectorize (no SVML) and would dominate W2; fastmath is
reassociation/contraction only, which lets the float64 loss sum vectorize. The W3 kernels are
serial: their 2^17-element loops sit between BLAS calls, whose threads spin after each matmul
and fight a second thread pool on 2 cores.
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


# reassociation/contraction only (lets the loss sum vectorize); never nnan/ninf/arcp
FM = {"contract", "reassoc"}

# Eigen's generic_fast_tanh_float coefficients
_CLAMP = np.float32(7.90531110763549805)
_TINY = np.float32(0.0004)
_A1 = np.float32(4.89352455891786e-03)
_A3 = np.float32(6.37261928875436e-04)
_A5 = np.float32(1.48572235717979e-05)
_A7 = np.float32(5.12229709037114e-08)
_A9 = np.float32(-8.60467152213735e-11)
_A11 = np.float32(2.00018790482477e-13)
_A13 = np.float32(-2.76076847742355e-16)
_B0 = np.float32(4.89352518554385e-03)
_B2 = np.float32(2.26843463243900e-03)
_B4 = np.float32(1.18534705686654e-04)
_B6 = np.float32(1.19825839466702e-06)


@njit(cache=True, inline="always")
def tanh32(u):
    x = min(max(u, -_CLAMP), _CLAMP)
    x2 = x * x
    p = x2 * _A13 + _A11
    p = x2 * p + _A9
    p = x2 * p + _A7
    p = x2 * p + _A5
    p = x2 * p + _A3
    p = x2 * p + _A1
    p = x * p
    q = x2 * _B6 + _B4
    q = x2 * q + _B2
    q = x2 * q + _B0
    r = p / q
    r = min(max(r, -ONE), ONE)
    # beyond the clamp tanh is 1 to float32 precision; p/q there can be 1 - 2^-24, whose
    # 1 - tanh^2 of 1.2e-7 W2's z^3 factor would amplify past the 1e-5 gate
    r = ONE if u >= _CLAMP else (-ONE if u <= -_CLAMP else r)
    return u if abs(u) < _TINY else r


@njit(parallel=True, cache=True)
def square_grad(x, gx):  # W1: x.grad = 4x in one pass (y is never read, so never written)
    for i in prange(x.size):
        gx[i] = F4 * x[i]


@njit(cache=True, inline="always")
def _gelu_mse_elem(x, t, w, b, inv):
    z = x * w + b
    z2 = z * z
    th = tanh32(C * (z + A * z * z2))
    h = HALF * z * (ONE + th)
    r = h - t
    dh = HALF * (ONE + th) + HC * z * (ONE - th * th) * (ONE + A3 * z2)
    return inv * r * dh, r * r


@njit(parallel=True, cache=True, fastmath=FM)
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


@njit(cache=True, fastmath=FM)
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


@njit(cache=True, fastmath=FM)
def bias_tanh(z, b):  # W3: h = tanh(z + b) in place
    rows, cols = z.shape
    for i in range(rows):
        for j in range(cols):
            z[i, j] = tanh32(z[i, j] + b[j])


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


@njit(cache=True, fastmath=FM)
def tanh_back(gh, h, gb1):  # W3: gz = gh * (1 - h^2) in place, gb1 = column sums (row order)
    rows, cols = gh.shape
    for j in range(cols):
        gb1[j] = 0
    for i in range(rows):
        for j in range(cols):
            v = gh[i, j] * (ONE - h[i, j] * h[i, j])
            gh[i, j] = v
            gb1[j] += v


@njit(cache=True)
def sgd(p, g, lr):  # p -= lr * g (flat views)
    for i in range(p.size):
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
