"""The recording as IR: recorded producers laid out as one `Trace`.

A producer is one recorded eqn (`op`, `params`/`fparams`, `ins`: arrays and `Lit`s,
`avals`, weakly held `outs`, a creation `serial`). `TraceRecorder` turns producers into
`Eqn`s over `Var`s, mapping arrays to variables by identity; it is an `ir.builder`
emitter too, so gradient rules and extra eqns go into the same list. It is the one way the
recording becomes a trace: computing values (`build_trace`), the cached backward
(tracer/fastgrad.py), printing (tracer/show.py) and the jit capture (jit/capture.py)
all use it, overriding `operand`/`bind_output` where their variables differ.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from ..errors import TracegradError
from ..ir.core import Eqn, Lit, Trace, Var
from ..ir.trace_builder import TraceEmitter


class TraceRecorder(TraceEmitter):
    """Producers and arrays in, `Eqn`s over `Var`s out (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.env: dict[int, Var] = {}

    def input(self, a: Any) -> Var:
        """A new trace input for the concrete array `a`."""
        v = self.env[id(a)] = Var(a._shape, a._dtype)
        return v

    def operand(self, x: Any, p: Any) -> Any:
        """The atom an eqn of producer `p` reads for its operand `x`."""
        return x if type(x) is Lit else self.env[id(x)]

    def bind_output(self, o: Any, v: Var) -> None:
        """Name the live output array `o` by `v` (a concrete sibling stays an input)."""
        if id(o) not in self.env:
            self.env[id(o)] = v

    def add(self, p: Any, outs: Optional[Sequence[Any]] = None) -> tuple[Var, ...]:
        """Append the eqn of producer `p` (live outputs `outs`, else its weak references)."""
        ins = tuple(self.operand(x, p) for x in p.ins)
        ovars = tuple(Var(shape, dt) for shape, dt in p.avals)
        if outs is None:
            outs = [r() if r is not None else None for r in p.outs]
        for o, v in zip(outs, ovars):
            if o is not None:
                self.bind_output(o, v)
        self.eqns.append(Eqn(p.op, ins, ovars, p.fparams))
        return ovars

    def trace(self, inputs: Sequence[Var], outputs: Sequence[Var]) -> Trace:
        return Trace(tuple(inputs), tuple(self.eqns), tuple(outputs))


def collect(targets: Sequence[Any], through_concrete: bool = False) -> tuple[list, list]:
    """Producers needed to compute `targets` (in creation order) and the concrete inputs.

    With `through_concrete`, the walk continues through recorded arrays that already have
    values (backward needs their producers; their values still come in as inputs).
    """
    seen: set[int] = set()
    prods: dict[int, Any] = {}
    inputs: dict[int, Any] = {}
    stack = list(targets)
    while stack:
        a = stack.pop()
        if id(a) in seen:
            continue
        seen.add(id(a))
        p = a._prod
        if a._data is not None:
            inputs[id(a)] = a
            if not (through_concrete and p is not None):
                continue
        if p is None:
            raise TracegradError(f"internal: array {a.shape} has neither value nor producer")
        if id(p) not in prods:
            prods[id(p)] = p
            for x in p.ins:
                if type(x) is not Lit:
                    stack.append(x)
    order = sorted(prods.values(), key=lambda p: p.serial)
    return order, list(inputs.values())


def build_trace(targets: Sequence[Any]) -> tuple[Trace, list]:
    """The linear trace that computes `targets` from concrete arrays, and those arrays."""
    order, inputs = collect(targets)
    rec = TraceRecorder()
    in_vars = [rec.input(a) for a in inputs]
    for p in order:
        rec.add(p)
    return rec.trace(in_vars, [rec.env[id(t)] for t in targets]), inputs
