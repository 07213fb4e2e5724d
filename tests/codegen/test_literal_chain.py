"""A layout chain over a splat literal (the seed of a scalar head's backward) compiles."""

import numpy

from tracegrad.ir.core import Eqn, Lit, Trace, Var, freeze_params
from tracegrad.ir.ops import Op
from tracegrad.runtime.interpret import eval_trace


def test_layout_chain_from_literal_compiles_and_matches():
    from tracegrad.codegen import compile_trace

    f32 = numpy.dtype("float32")
    x = Var((2, 3), f32)
    d, e, f, g, out = Var((), f32), Var((1, 1), f32), Var((2, 1), f32), Var((2, 3), f32), Var((2, 3), f32)
    eqns = (
        Eqn(Op.BROADCAST_TO, (Lit(1.0, f32),), (d,), freeze_params({"shape": ()})),
        Eqn(Op.RESHAPE, (d,), (e,), freeze_params({"shape": (1, 1)})),
        Eqn(Op.BROADCAST_TO, (e,), (f,), freeze_params({"shape": (2, 1)})),
        Eqn(Op.BROADCAST_TO, (f,), (g,), freeze_params({"shape": (2, 3)})),
        Eqn(Op.MUL, (g, x), (out,), ()),
    )
    trace = Trace((x,), eqns, (out, g))
    arg = numpy.arange(6, dtype=f32).reshape(2, 3)
    got = compile_trace(trace)([arg], None)
    for a, b in zip(got, eval_trace(trace, [arg])):
        numpy.testing.assert_array_equal(a, b)
