"""The row of the allreduce across ranks (issue 12): a host step inside compiled programs.

`allreduce[reduce, names, prescale, postscale](x1, ..., xn) -> (y1, ..., yn)` reduces the
arrays over every rank of `tracegrad.distributed`'s world (fused into few MPI messages);
each `yi` has the shape and dtype of `xi`. `reduce` is a `tracegrad.distributed.ReduceOp`
value (average, sum, min, max, product). Every rank runs the same program, so the
collectives meet in the same order everywhere. The host code lives in
`tracegrad.distributed` and is imported when the step first runs (so `ir` never imports
MPI); the row is not differentiable (gradients are reduced, not differentiated through).
"""

from __future__ import annotations

from typing import Any

from . import dtypes
from ..errors import DTypeError
from .ops import Kind, Op, OpDef, register


def _allreduce_infer(*xs: Any, reduce: int, names: tuple, prescale: float, postscale: float) -> list:
    if len(names) != len(xs):
        raise ValueError(f"allreduce: {len(names)} names for {len(xs)} arrays")
    if (prescale != 1.0 or postscale != 1.0) and not all(dtypes.is_float(dtypes.of(x)) for x in xs):
        raise DTypeError("allreduce: prescale/postscale factors need floating-point arrays")
    return [(tuple(x.shape), dtypes.of(x)) for x in xs]


def _allreduce_impl(*xs: Any, reduce: int, names: tuple, prescale: float, postscale: float) -> Any:
    from ..distributed.collectives import reduce_in_program  # host code, imported on first run

    outs = reduce_in_program(xs, reduce, names, prescale, postscale)
    return outs[0] if len(outs) == 1 else tuple(outs)


register(OpDef(
    Op.ALLREDUCE, Kind.HOST, _allreduce_infer, _allreduce_impl, None, differentiable=False,
    doc="reduce the arrays over every rank (tracegrad.distributed), fused into few messages",
))
