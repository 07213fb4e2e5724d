"""Runs a trace: the one door between the tracer and the back ends."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy

from ..ir.core import Trace
from ..runtime.interpret import eval_trace


def execute(
    trace: Trace,
    args: Sequence[numpy.ndarray],
    dests: Optional[Sequence[Optional[numpy.ndarray]]] = None,
) -> list[numpy.ndarray]:
    """Run `trace` on `args`; outputs with a destination buffer are written into it."""
    results = eval_trace(trace, args)
    if dests is not None:
        for d, r in zip(dests, results):
            if d is not None:
                d[...] = r
    return results
