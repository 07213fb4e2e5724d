"""The Numba window kernels (tracegrad.kernels.window) behind the conv and max-pool rows:
equal to the rows' numpy im2col/window path, and bitwise the same for 1 and 2 threads."""

from __future__ import annotations

import numpy
import pytest

from tracegrad.codegen import pool
from tracegrad.ir import TABLE, Op
from tracegrad.kernels import window

CONV_CASES = [  # (spatial, C, F, K, stride, pad, dilate, groups)
    ((9, 7), 6, 6, 3, 1, 1, 1, 1),
    ((9, 7), 4, 6, 3, 1, 2, 2, 1),  # stride 1, output as wide as the input: im2col's shifted runs
    ((9, 6), 3, 4, 5, 1, 1, 1, 1),  # ... with a tap row wholly in the padding
    ((9, 7), 6, 6, 3, 2, 0, 2, 3),
    ((11,), 4, 6, 3, 3, 2, 1, 2),
    ((8, 8), 32, 32, 3, 1, 1, 1, 1),  # weight gradient through BLAS (large GEMM output)
]
POOL_CASES = [((10, 9), 2, 2, 0, False), ((9, 8), 3, 2, 1, True), ((11,), 3, 1, 1, False),
              ((10, 8), 2, 2, 0, False), ((12,), 3, 3, 0, False)]  # windows tiling x


def _conv_all(x, w, gy, p):
    return (TABLE[Op.CONV].impl(x, w, **p),
            TABLE[Op.CONV_BWD_DATA].impl(gy, w, x_shape=x.shape, **p),
            TABLE[Op.CONV_BWD_WEIGHT].impl(x, gy, w_shape=w.shape, **p))


def _conv_case(case, dtype, n=5):
    sp, c, f, k, s, pd, d, g = case
    nd = len(sp)
    rs = numpy.random.RandomState(0)
    x = rs.randn(n, c, *sp).astype(dtype)
    w = rs.randn(f, c // g, *([k] * nd)).astype(dtype)
    p = dict(stride=(s,) * nd, pad=(pd,) * nd, dilate=(d,) * nd, groups=g)
    y = TABLE[Op.CONV].impl(x, w, **p)
    return x, w, rs.randn(*y.shape).astype(dtype), p


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_kernels_match_numpy_path(monkeypatch, case, dtype):
    x, w, gy, p = _conv_case(case, dtype)
    got = _conv_all(x, w, gy, p)
    monkeypatch.setattr(window, "supported", lambda *a: False)
    want = _conv_all(x, w, gy, p)
    tol = 2e-6 if dtype == numpy.float32 else 1e-13
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == b.dtype
        numpy.testing.assert_allclose(a, b, rtol=tol, atol=tol * numpy.abs(b).max())


def _pool_all(x, p):
    y = TABLE[Op.POOL].impl(x, pool_type="max", count_include_pad=True, **p)
    rs = numpy.random.RandomState(1)
    g = rs.randn(*y.shape).astype(x.dtype)
    h = rs.randn(*x.shape).astype(x.dtype)
    return y, TABLE[Op.POOL_MAX_BWD].impl(x, y, g, **p), TABLE[Op.POOL_MAX_SELECT].impl(x, y, h, **p)


@pytest.mark.parametrize("case", POOL_CASES)
def test_maxpool_kernels_match_numpy_path(monkeypatch, case):
    sp, k, s, pd, full = case
    nd = len(sp)
    x = numpy.random.RandomState(0).randn(3, 4, *sp).astype(numpy.float32)
    x[0, 0, 0] = numpy.nan  # NaN propagates to its windows
    x[1, 1, 1] = x[1, 1, 2]  # ties: the first maximum takes the gradient
    p = dict(kernel=(k,) * nd, stride=(s,) * nd, pad=(pd,) * nd, full=full)
    got = _pool_all(x, p)
    monkeypatch.setattr(window, "supported", lambda *a: False)
    want = _pool_all(x, p)
    numpy.testing.assert_array_equal(got[0], want[0])
    numpy.testing.assert_array_equal(got[2], want[2])
    # overlapping windows add into one element in another order: rounding differs
    numpy.testing.assert_allclose(got[1], want[1], rtol=1e-6, atol=1e-6)


def test_bitwise_same_for_one_and_two_threads(monkeypatch):
    monkeypatch.setattr(window, "PAR_MIN", 1)  # split even these small sizes
    before = pool.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            pool.set_num_threads(threads)
            out = []
            for case in (CONV_CASES[0], CONV_CASES[3]):
                out += _conv_all(*_conv_case(case, numpy.float32, n=19)[:3], _conv_case(case, numpy.float32, n=19)[3])
            x = numpy.random.RandomState(2).randn(5, 3, 12, 12).astype(numpy.float32)
            out += _pool_all(x, dict(kernel=(3, 3), stride=(2, 2), pad=(1, 1), full=False))
            results.append(out)
    finally:
        pool.set_num_threads(before)
    for a, b in zip(*results):
        assert a.tobytes() == b.tobytes()

