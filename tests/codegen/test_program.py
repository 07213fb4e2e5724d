"""Programs: guards before any write, destinations (aliasing inputs), determinism across
thread counts, float32 sum accuracy, flat memory over many calls."""

from __future__ import annotations

import tracemalloc

import numpy
import pytest

from tracegrad.codegen import compile_trace, pool
from tracegrad.errors import GuardFailure
from tracegrad.runtime.interpret import eval_trace

from cg_helpers import make

F32 = numpy.dtype("float32")


def _guarded(b, x, g):
    s = b.reduce_sum(x, axes=(0,), keepdims=False)
    b.guard(b.gt(s, 0.0), expect=True, where="test.py:1")
    m = b.reduce_max(x, axes=(0,), keepdims=False)
    b.guard(b.lt(m, 10.0), expect=True, where="test.py:2")
    return [b.add(g, b.mul(x, 2.0)), b.mul(x, x)]


def test_guards_fail_before_any_write():
    t = make(_guarded, ((1000,), F32), ((1000,), F32))
    prog = compile_trace(t)
    x = numpy.linspace(0.1, 1, 1000).astype(numpy.float32)
    g = numpy.ones(1000, numpy.float32)
    d0, d1 = g, numpy.zeros(1000, numpy.float32)  # d0 aliases the input g (grad_req='add')
    prog([x, g], [d0, d1])
    numpy.testing.assert_allclose(d0, 1 + 2 * x, rtol=1e-6)
    numpy.testing.assert_allclose(d1, x * x, rtol=1e-6)
    for bad, index in [(-x, 0), (x * 20, 1)]:
        before = (d0.copy(), d1.copy())
        with pytest.raises(GuardFailure) as ei:
            prog([bad, d0], [d0, d1])
        assert ei.value.index == index and ei.value.seen is False
        with pytest.raises(GuardFailure) as ej:
            eval_trace(t, [bad, d0])
        assert ej.value.index == index
        numpy.testing.assert_array_equal(d0, before[0])
        numpy.testing.assert_array_equal(d1, before[1])


def test_dest_aliasing_an_input_read_elsewhere():
    """out = g + reverse(g)[...] written into g itself: must not read already-written data."""

    def fn(b, g):
        r = b.slice(g, index=((None, None, -1),))
        return b.add(g, b.mul(r, 10.0))

    t = make(fn, ((300000,), F32))
    prog = compile_trace(t)
    g = numpy.arange(300000, dtype=numpy.float32)
    want = g + 10 * g[::-1]
    prog([g], [g])
    numpy.testing.assert_array_equal(g, want)


def test_results_do_not_depend_on_thread_count():
    n = 3 * (1 << 16) + 123
    t = make(lambda b, x: [b.reduce_sum(b.mul(x, x), axes=(0,), keepdims=False),
                           b.reduce_max(x, axes=(0,), keepdims=False), b.tanh(x)], ((n,), F32))
    prog = compile_trace(t, par_min=1 << 12)
    assert any(k.parallel for k in prog.plan.kernels())
    x = numpy.random.RandomState(0).randn(n).astype(numpy.float32)
    old = pool.get_num_threads()
    try:
        pool.set_num_threads(1)
        one = prog([x])
        pool.set_num_threads(2)
        two = prog([x])
        pool.set_num_threads(3)
        three = prog([x])
    finally:
        pool.set_num_threads(old)
    for a, b, c in zip(one, two, three):
        assert a.tobytes() == b.tobytes() == c.tobytes()


def test_float32_sum_is_accurate():
    n = 1 << 22
    x = (numpy.random.RandomState(1).rand(n) + 1e-3).astype(numpy.float32)
    t = make(lambda b, a: [b.reduce_sum(a, axes=(0,), keepdims=False), b.reduce_sum(b.reshape(a, shape=(1024, n // 1024)), axes=(1,), keepdims=False)], ((n,), F32))
    s, rows = compile_trace(t)([x])
    ref = x.astype(numpy.float64).sum()
    assert abs(float(s) - ref) / ref < 2e-6
    numpy.testing.assert_allclose(rows, x.astype(numpy.float64).reshape(1024, -1).sum(1), rtol=2e-7)


def test_memory_stays_flat_over_many_calls():
    t = make(lambda b, x, g: [b.add(g, b.tanh(x)), b.reduce_sum(x, axes=(0,), keepdims=False)], ((64,), F32), ((64,), F32))
    prog = compile_trace(t)
    x = numpy.ones(64, numpy.float32)
    g = numpy.zeros(64, numpy.float32)
    for _ in range(50):
        prog([x, g], [g, None])
    tracemalloc.start()
    a = tracemalloc.take_snapshot()
    for _ in range(1000):
        prog([x, g], [g, None])
    b = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in b.compare_to(a, "filename"))
    assert grown < 64 * 1024, grown


def test_strided_inputs_and_matmul_into_destinations():
    def fn(b, x, w, g):
        return [b.matmul(x, w), b.add(g, b.mul(b.transpose(x, perm=(1, 0)), 2.0))]

    t = make(fn, ((4, 3), F32), ((3, 5), F32), ((3, 4), F32))
    prog = compile_trace(t)
    rs = numpy.random.RandomState(5)
    big = rs.randn(8, 3).astype(numpy.float32)
    x = big[::2]  # not contiguous
    w = rs.randn(3, 5).astype(numpy.float32)
    g = numpy.ones((3, 4), numpy.float32)
    d0 = numpy.zeros((4, 5), numpy.float32)
    out = prog([x, w, g], [d0, g])
    numpy.testing.assert_allclose(d0, x @ w, rtol=1e-5)
    numpy.testing.assert_allclose(g, 1 + 2 * x.T, rtol=1e-6)
    assert out[0] is d0 and out[1] is g


def test_broadcast_of_leading_dims_in_flat_loops():
    """A bias broadcast over rows, in a serial and in a parallel (unsigned index) flat loop."""
    for rows, par_min in [(3, None), (256, 1 << 10)]:
        def fn(b, x, v):
            return b.mul(x, b.broadcast_to(v, shape=(rows, 256)))

        t = make(fn, ((rows, 256), F32), ((256,), F32))
        rs = numpy.random.RandomState(rows)
        x, v = rs.randn(rows, 256).astype(numpy.float32), rs.randn(256).astype(numpy.float32)
        prog = compile_trace(t, par_min=par_min, generic=False)  # literal sizes: `i % 256`
        assert all(not k.nested for k in prog.plan.kernels())
        assert any(k.parallel for k in prog.plan.kernels()) == (par_min is not None)
        numpy.testing.assert_array_equal(prog([x, v])[0], x * v)
        # sizes as arguments: no division per element, a loop nest over (rows, 256) instead
        prog = compile_trace(t, par_min=par_min, generic=True)
        assert all(k.nested for k in prog.plan.kernels()) and "%" not in prog.source.split("_ONE = 1")[1]
        assert any(k.parallel for k in prog.plan.kernels()) == (par_min is not None)
        numpy.testing.assert_array_equal(prog([x, v])[0], x * v)
