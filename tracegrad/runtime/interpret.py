"""The reference interpreter: runs any trace with the op table's numpy rules."""

from __future__ import annotations

from typing import Any, Sequence

import numpy

from ..errors import GuardFailure
from ..ir.core import Lit, Trace, Var
from ..ir.ops import TABLE, Op


def lit_value(a: Lit) -> Any:
    return a.dtype.type(a.value)


def eval_trace(trace: Trace, args: Sequence[numpy.ndarray]) -> list[numpy.ndarray]:
    """Run `trace` on `args`; raises GuardFailure (with the guard's index) if a guard fails."""
    env: dict[Var, Any] = dict(zip(trace.inputs, args))
    guard_index = 0
    for e in trace.eqns:
        vals = [lit_value(a) if isinstance(a, Lit) else env[a] for a in e.ins]
        row = TABLE[e.op]
        if e.op is Op.GUARD:
            try:
                row.impl(*vals, **e.p)
            except GuardFailure as exc:
                raise GuardFailure(guard_index, exc.seen) from None
            guard_index += 1
            continue
        out = row.impl(*vals, **e.p)
        if len(e.outs) == 1:
            out = (out,)
        for v, x in zip(e.outs, out):
            env[v] = numpy.asarray(x, dtype=v.dtype)
    return [env[v] for v in trace.outputs]
