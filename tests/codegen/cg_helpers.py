"""Build IR traces directly and compare the compiled program with the interpreter."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy

from tracegrad.codegen import compile_trace
from tracegrad.ir import Builder, Trace, Var
from tracegrad.ir.trace_builder import TraceEmitter
from tracegrad.runtime.interpret import eval_trace


def make(fn: Callable, *avals) -> Trace:
    """A trace over inputs of `avals` ((shape, dtype) pairs); `fn(b, *vars)` emits its outputs."""
    em = TraceEmitter()
    b = Builder(em)
    ins = [Var(tuple(s), numpy.dtype(d)) for s, d in avals]
    outs = fn(b, *ins)
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    return Trace(tuple(ins), tuple(em.eqns), tuple(outs))


def assert_same(got: Sequence, want: Sequence, rtol: float = 1e-5, atol: float = 1e-6, what: str = "") -> None:
    assert len(got) == len(want)
    for j, (g, w) in enumerate(zip(got, want)):
        g, w = numpy.asarray(g), numpy.asarray(w)
        assert g.shape == w.shape, f"{what} output {j}: shape {g.shape} != {w.shape}"
        assert g.dtype == w.dtype, f"{what} output {j}: dtype {g.dtype} != {w.dtype}"
        if g.dtype.kind in "biu":
            numpy.testing.assert_array_equal(g, w, err_msg=f"{what} output {j}")
        else:
            numpy.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True, err_msg=f"{what} output {j}")


def check(trace: Trace, args: Sequence[numpy.ndarray], rtol: float = 1e-5, atol: float = 1e-6, par_min=None):
    """Compile `trace`, run it and the interpreter on `args`, and compare; returns the program."""
    prog = compile_trace(trace, par_min=par_min)
    want = eval_trace(trace, [a.copy() for a in args])
    got = prog([a.copy() for a in args])
    assert_same(got, want, rtol, atol, what=str(trace)[:2000])
    ref = prog.call_generic([a.copy() for a in args])  # the driver's reference: the slot loop
    assert_same(ref, want, rtol, atol, what="call_generic: " + str(trace)[:2000])
    return prog
