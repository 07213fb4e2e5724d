"""The trace behind an array, guards included, for printing (`tracegrad.show`)."""

from __future__ import annotations

from ..ir.core import Eqn, Lit, Trace, Var
from ..ir.ops import Op
from .array import Array
from .lazy import _out_aval, collect
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
    env: dict[int, Var] = {}
    in_vars = []
    for a in all_inputs.values():
        env[id(a)] = Var(a.shape, a.dtype)
        in_vars.append(env[id(a)])
    eqns: list[Eqn] = []
    guard_at = {}
    for g, gorder, _ in guards:
        last = max((p.serial for p in gorder), default=-1)
        guard_at.setdefault(last, []).append(g)
    for p in sorted(prods.values(), key=lambda p: p.serial):
        ins = tuple(a if type(a) is Lit else env.setdefault(id(a), Var(a.shape, a.dtype)) for a in p.ins)
        outs = []
        for i, r in enumerate(p.outs):
            o = r() if r is not None else None
            shape, dt = _out_aval(p, i)
            v = Var(shape, dt)
            if o is not None:
                env[id(o)] = v
            outs.append(v)
        eqns.append(Eqn(p.op, ins, tuple(outs), p.fparams))
        for g in guard_at.get(p.serial, []):
            eqns.append(Eqn(Op.GUARD, (env[id(g.array)],), (), (("expect", g.expect), ("where", g.where))))
    return Trace(tuple(in_vars), tuple(eqns), (env[id(x)],))
