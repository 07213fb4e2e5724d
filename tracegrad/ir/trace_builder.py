"""The IR's own emitter: gradient rules append eqns to a list, so backward is a `Trace`.

`vjp_trace(trace)` and `grad_trace(trace)` turn a forward trace into one program that
computes the forward outputs and the gradients of its inputs, using the same table rules
and the same `autodiff.backward_pass` as the tracer. Pure IR: no arrays are run.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy

from .autodiff import Node, backward_pass
from .builder import Builder
from .core import Eqn, Lit, Trace, Var, freeze_params
from .ops import TABLE, Op


class TraceEmitter:
    """An `ir.builder.Emitter` whose values are `Var`s and whose ops become `Eqn`s."""

    def __init__(self) -> None:
        self.eqns: list[Eqn] = []

    def emit(self, op: Op, ins: Sequence[Any], params: dict[str, Any]) -> list[Var]:
        avals = TABLE[op].infer(*ins, **params)
        outs = tuple(Var(tuple(shape), numpy.dtype(dt)) for shape, dt in avals)
        self.eqns.append(Eqn(op, tuple(ins), outs, freeze_params(params)))
        return list(outs)

    def lit(self, value: Any, dtype: numpy.dtype) -> Lit:
        dtype = numpy.dtype(dtype)
        return Lit(dtype.type(value).item(), dtype)


def vjp_trace(trace: Trace, wrt: Optional[Sequence[int]] = None) -> Trace:
    """The trace `(*inputs, *cotangents) -> (*outputs, *grads)`.

    One cotangent input per output of `trace` (same shape and dtype); one gradient output
    per input listed in `wrt` (indices into `trace.inputs`, all floating inputs by
    default). Forward eqns (guards included) come first, then the backward eqns.
    """
    cts = tuple(Var(v.shape, v.dtype) for v in trace.outputs)
    return _backward(trace, wrt, list(cts), extra_inputs=cts)


def grad_trace(trace: Trace, wrt: Optional[Sequence[int]] = None) -> Trace:
    """The trace `inputs -> (*outputs, *grads)` with the outputs' cotangents set to ones.

    For a non-scalar output this is the gradient of `sum(output)`, as `y.backward()` does.
    """
    em = TraceEmitter()
    b = Builder(em)
    ones = [b.broadcast(em.lit(1, v.dtype), v.shape) for v in trace.outputs]
    return _backward(trace, wrt, ones, extra_inputs=(), emitter=em)


def _backward(
    trace: Trace,
    wrt: Optional[Sequence[int]],
    cts: list[Any],
    extra_inputs: tuple[Var, ...],
    emitter: Optional[TraceEmitter] = None,
) -> Trace:
    em = emitter or TraceEmitter()
    b = Builder(em)
    if wrt is None:
        wrt = [i for i, v in enumerate(trace.inputs) if v.dtype.kind == "f"]
    nodes = [Node(e.op, e.p, e.ins, e.outs) for e in trace.eqns if e.outs]
    ct = backward_pass(nodes, list(zip(trace.outputs, cts)), b, key=id)
    grads = []
    for i in wrt:
        x = trace.inputs[i]
        g = ct.get(id(x))
        grads.append(g if g is not None else b.zeros_like(x))
    outputs = tuple(trace.outputs) + tuple(grads)
    return Trace(trace.inputs + tuple(extra_inputs), tuple(trace.eqns) + _live(em.eqns, outputs), outputs)


def _live(eqns: Sequence[Eqn], outputs: Sequence[Var]) -> tuple[Eqn, ...]:
    """The backward eqns that reach an output (rules also emit gradients nobody needs)."""
    needed = {id(v) for v in outputs}
    keep = []
    for e in reversed(eqns):
        if any(id(o) in needed for o in e.outs):
            keep.append(e)
            needed.update(id(a) for a in e.ins if isinstance(a, Var))
    return tuple(reversed(keep))
