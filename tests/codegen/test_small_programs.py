"""Small programs: guards checked inside the generated functions (same index and seen value
as the interpreter, no visible write on failure), segment-local buffers, temporaries kept
by the program between calls (outputs stay fresh, concurrent calls stay apart), host steps
over literals folded once."""

from __future__ import annotations

import threading

import numpy
import pytest

from tracegrad.codegen import compile_trace
from tracegrad.codegen.runner import _GUARD
from tracegrad.errors import GuardFailure
from tracegrad.ir.core import Lit
from tracegrad.runtime.interpret import eval_trace

from cg_helpers import assert_same, make

F32 = numpy.dtype("float32")


def _cflow(b, x, g):
    """Like the tutorial's f(a): doublings with a bool guard each, a float guard, then a
    gradient-like output after the last guard and one before it."""
    y = x
    for _ in range(3):
        y = b.mul(y, 2.0)
        b.guard(b.lt(b.reduce_sum(b.abs(y), axes=(0,), keepdims=False), 20.0), expect=True, where="t.py:1")
    m = b.reduce_max(y, axes=(0,), keepdims=False)
    b.guard(m, expect=8.0, where="t.py:2")  # a float guard: the runner reads the seen value
    early = b.mul(y, 3.0)
    seed = b.broadcast_to(Lit(1.0, F32), shape=())
    grad = b.slice_vjp(seed, index=(0,), shape=(2,))
    return [b.add(g, b.mul(grad, 8.0)), early, m]


@pytest.mark.parametrize("runner", ["run", "call_generic"])  # the generated driver, the reference loop
def test_guards_inside_functions_match_the_interpreter(runner):
    t = make(_cflow, ((2,), F32), ((2,), F32))
    prog = compile_trace(t)
    call = getattr(prog, runner)
    assert not any(st[0] == _GUARD for st in prog.steps)  # all checked in generated code
    assert "return 3" in prog.source and prog.consts  # the literal slice_vjp is folded
    cases = [
        ([1.0, 0.5], None),  # all pass
        ([3.0, 1.0], (2, False)),  # sums 8, 16, 32: the third bool guard
        ([6.0, 1.0], (1, False)),
        ([11.0, 0.0], (0, False)),
        ([0.5, 0.25], (3, 4.0)),  # max after doublings is 4, not 8
    ]
    for xs, fail in cases:
        x = numpy.array(xs, numpy.float32)
        g = numpy.array([0.5, -0.5], numpy.float32)
        d0, d1 = g, numpy.full(2, 7.0, numpy.float32)  # d0 aliases the input g
        before = (d0.copy(), d1.copy())
        if fail is None:
            want = eval_trace(t, [x, g.copy()])
            got = call([x, g], [d0, d1, None])
            assert_same(got, want)
            assert got[0] is d0 and got[1] is d1
            continue
        with pytest.raises(GuardFailure) as ei:
            call([x, g], [d0, d1, None])
        with pytest.raises(GuardFailure) as ej:
            eval_trace(t, [x, g])
        assert (ei.value.index, ei.value.seen) == fail == (ej.value.index, ej.value.seen)
        assert type(ei.value.seen) is type(ej.value.seen)
        numpy.testing.assert_array_equal(d0, before[0])
        numpy.testing.assert_array_equal(d1, before[1])


def _pooled(b, x, w):
    h = b.tanh(b.mul(x, 2.0))  # kernel-written, read by the matmul: a kept temporary
    return [b.matmul(h, w), b.reduce_sum(h, axes=(0, 1), keepdims=False)]


@pytest.mark.parametrize("runner", ["run", "call_generic"])
def test_outputs_are_fresh_and_concurrent_calls_stay_apart(runner):
    t = make(_pooled, ((4, 3), F32), ((3, 2), F32))
    prog = getattr(compile_trace(t), runner)
    pooled = compile_trace(t).pooled
    assert pooled, "expected a temporary kept between calls"
    rs = numpy.random.RandomState(3)
    xs = [rs.randn(4, 3).astype(numpy.float32) for _ in range(4)]
    w = rs.randn(3, 2).astype(numpy.float32)
    wants = [eval_trace(t, [x, w]) for x in xs]
    first = prog([xs[0], w])
    kept = [a.copy() for a in first]
    second = prog([xs[1], w])
    assert all(a is not b for a, b in zip(first, second))
    assert_same(first, kept)  # the second call did not write into the first call's results
    assert_same(second, wants[1])
    errors = []

    def worker(j: int) -> None:
        try:
            for _ in range(200):
                assert_same(prog([xs[j], w]), wants[j])
        except Exception as exc:  # handed to the main thread
            errors.append(exc)

    ts = [threading.Thread(target=worker, args=(j,)) for j in range(4)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    assert not errors, errors[0]
