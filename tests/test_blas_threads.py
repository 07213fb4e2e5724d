"""OpenBLAS held at one thread while the convolution kernels' pool threads call it
(tracegrad.codegen.blas_threads): the count inside and after, and results that do not
depend on it."""

from __future__ import annotations

import numpy
import pytest

from tracegrad.codegen import blas_threads, pool
from tracegrad.ir import TABLE, Op
from tracegrad.kernels import window


def _numpy_uses_openblas() -> bool:
    cfg = numpy.show_config(mode="dicts")
    blas = cfg.get("Build Dependencies", {}).get("blas", {})
    return "openblas" in str(blas.get("name", "")).lower()


@pytest.fixture
def two_blas_threads():
    if not _numpy_uses_openblas():
        pytest.skip("numpy is not built on OpenBLAS here")
    before = blas_threads.threads()
    assert before is not None, "numpy's OpenBLAS thread control was not found"
    blas_threads.set_threads(2)
    yield
    blas_threads.set_threads(before)


def test_single_holds_one_thread_and_restores(two_blas_threads):
    assert blas_threads.threads() == 2
    with blas_threads.single():
        assert blas_threads.threads() == 1
        with blas_threads.single():  # nested: the inner exit does not restore
            assert blas_threads.threads() == 1
        assert blas_threads.threads() == 1
    assert blas_threads.threads() == 2
    with pytest.raises(ZeroDivisionError):
        with blas_threads.single():
            1 / 0
    assert blas_threads.threads() == 2


def _conv_all(x, w, gy, p):
    return (TABLE[Op.CONV].impl(x, w, **p),
            TABLE[Op.CONV_BWD_DATA].impl(gy, w, x_shape=x.shape, **p),
            TABLE[Op.CONV_BWD_WEIGHT].impl(x, gy, w_shape=w.shape, **p))


def _case(n=9):
    rs = numpy.random.RandomState(0)
    x = rs.randn(n, 32, 12, 12).astype(numpy.float32)
    w = rs.randn(48, 32, 3, 3).astype(numpy.float32)
    gy = rs.randn(n, 48, 12, 12).astype(numpy.float32)
    return x, w, gy, dict(stride=(1, 1), pad=(1, 1), dilate=(1, 1), groups=1)


def test_conv_pool_threads_call_blas_single_threaded(two_blas_threads, monkeypatch):
    seen = []
    run = pool.run

    def spy(fn, args, units):
        seen.append(blas_threads.threads())
        run(fn, args, units)

    monkeypatch.setattr(pool, "run", spy)
    before = pool.get_num_threads()
    pool.set_num_threads(2)
    try:
        _conv_all(*_case())
    finally:
        pool.set_num_threads(before)
    assert seen == [1, 1, 1]
    assert blas_threads.threads() == 2


def test_conv_results_do_not_depend_on_blas_threads(two_blas_threads, monkeypatch):
    """The serial path (below PAR_MIN) with the process's BLAS at 2 threads, and the pool
    path: bitwise the same (OpenBLAS's own results differ between its thread counts)."""
    x, w, gy, p = _case()
    monkeypatch.setattr(window, "PAR_MIN", 1 << 40)
    serial = _conv_all(x, w, gy, p)
    assert blas_threads.threads() == 2
    monkeypatch.setattr(window, "PAR_MIN", 1)
    before = pool.get_num_threads()
    pool.set_num_threads(2)
    try:
        pooled = _conv_all(x, w, gy, p)
    finally:
        pool.set_num_threads(before)
    for a, b in zip(serial, pooled):
        assert a.tobytes() == b.tobytes()
