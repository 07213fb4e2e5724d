"""Hand-written numba-cuda fused kernels for benchmarks/gpu.py (imported only on demand).

Module-level so that numba resolves `cuda`, `math` and the float32 constants as globals (the
CUDA simulator swaps the `cuda` global of a kernel's module; closures would miss that).
"""

from __future__ import annotations

import math

import numpy
from numba import cuda

F05 = numpy.float32(0.5)
F1 = numpy.float32(1.0)
F2 = numpy.float32(2.0)
F3 = numpy.float32(3.0)
F4 = numpy.float32(4.0)
C = numpy.float32(0.7978845608)
A = numpy.float32(0.044715)
BLOCK = 256


@cuda.jit
def square_grad(x, gx):  # W1: x.grad = 4x, grid-stride
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        gx[i] = F4 * x[i]


@cuda.jit
def gelu_mse(x, t, w, b, gw, gb, acc):  # W2: both gradients + the loss sum in one pass
    n = x.size
    inv = F2 / numpy.float32(n)
    s = cuda.shared.array(BLOCK, numpy.float64)
    local = 0.0
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        z = x[i] * w[i] + b[i]
        z2 = z * z
        th = math.tanh(C * (z + A * z * z2))
        h = F05 * z * (F1 + th)
        r = h - t[i]
        dh = F05 * (F1 + th) + F05 * C * z * (F1 - th * th) * (F1 + F3 * A * z2)
        g = inv * r * dh
        gw[i] = g * x[i]
        gb[i] = g
        local += r * r
    tid = cuda.threadIdx.x
    s[tid] = local
    cuda.syncthreads()
    half = BLOCK // 2
    while half > 0:
        if tid < half:
            s[tid] += s[tid + half]
        cuda.syncthreads()
        half //= 2
    if tid == 0:
        cuda.atomic.add(acc, 0, s[0])
