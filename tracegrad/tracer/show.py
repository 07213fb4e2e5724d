"""The trace behind an array, guards included, for printing (`tracegrad.show`)."""

from __future__ import annotations

from typing import Any

from ..ir.core import Eqn, Lit, Trace, Var
from ..ir.ops import Op
from .array import Array
from .recording import TraceRecorder, collect
from .state import STATE


def trace_of(x: Array) -> Trace:
    """The recorded eqns that compute `x` and the guards logged on values they share."""
    order, inputs = collect([x], through_concrete=True)
    ancestors = {id(p) for p in order}
    guards = []
    for g in STATE.guards:
        gorder, ginputs = collect([g.array], through_concrete=True)
        if ancestors & {id(p) for p in gorder} or {id(a) for a in ginputs} & {id(a) for a in inputs}:
            guards.append((g, gorder, ginputs))
    prods = {id(p): p for p in order}
    all_inputs = {id(a): a for a in inputs if a._prod is None}
    for g, gorder, ginputs in guards:
        prods.update({id(p): p for p in gorder})
        all_inputs.update({id(a): a for a in ginputs if a._prod is None})
    rec = _ShowRecorder()
    in_vars = [rec.input(a) for a in all_inputs.values()]
    guard_at = {}
    for g, gorder, _ in guards:
        last = max((p.serial for p in gorder), default=-1)
        guard_at.setdefault(last, []).append(g)
    for p in sorted(prods.values(), key=lambda p: p.serial):
        rec.add(p)
        for g in guard_at.get(p.serial, []):
            rec.eqns.append(Eqn(Op.GUARD, (rec.env[id(g.array)],), (), (("expect", g.expect), ("where", g.where))))
    return rec.trace(in_vars, [rec.env[id(x)]])


class _ShowRecorder(TraceRecorder):
    """Every array read gets a variable; a live output names its producer's value."""

    def operand(self, x: Any, p: Any) -> Any:
        return x if type(x) is Lit else self.env.setdefault(id(x), Var(x.shape, x.dtype))

    def bind_output(self, o: Any, v: Var) -> None:
        self.env[id(o)] = v
