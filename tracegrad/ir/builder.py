"""`Builder`: how gradient rules and composite ops emit eqns, whatever holds the values.

An emitter is anything with `emit(op, ins, params) -> list[value]` and
`lit(value, dtype) -> value`; values are anything with `.shape` and `.dtype`. The IR's own
trace builder and the tracer's lazy arrays both implement it, so one gradient rule serves
`backward()`, `create_graph=True` and the compiled step.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy

from . import dtypes
from .core import Lit
from .ops import Op


class Emitter(Protocol):
    def emit(self, op: Op, ins: Sequence[Any], params: dict[str, Any]) -> list[Any]: ...

    def lit(self, value: Any, dtype: numpy.dtype) -> Any: ...


class Builder:
    """Op calls by name (`b.mul(x, y)`), with Python scalars turned into literals."""

    __slots__ = ("e",)

    def __init__(self, emitter: Emitter) -> None:
        self.e = emitter

    def op(self, op: Op, *ins: Any, **params: Any) -> Any:
        like = next((a for a in ins if not _is_scalar(a)), None)
        atoms = [self.e.lit(a, dtypes.of(like)) if _is_scalar(a) else a for a in ins]
        outs = self.e.emit(op, atoms, params)
        return outs[0] if len(outs) == 1 else outs

    def __getattr__(self, name: str) -> Any:
        op = Op[name.upper()]
        return lambda *ins, **params: self.op(op, *ins, **params)

    # helpers used by many rules -------------------------------------------------------
    def zeros_like(self, x: Any) -> Any:
        return self.broadcast(self.e.lit(0, dtypes.of(x)), x.shape)

    def broadcast(self, x: Any, shape: tuple[int, ...]) -> Any:
        """`x` broadcast to `shape` (numpy rules); a no-op when it already has that shape.

        A literal always becomes an eqn output (even for shape ()), so seeds and zeros are
        values that can be outputs, materialized and written into gradient buffers.
        """
        if tuple(x.shape) == tuple(shape) and not isinstance(x, Lit):
            return x
        return self.op(Op.BROADCAST_TO, x, shape=tuple(shape))

    def sum_to(self, g: Any, shape: tuple[int, ...]) -> Any:
        """Undo numpy broadcasting: sum `g` down to `shape`."""
        shape = tuple(shape)
        if tuple(g.shape) == shape:
            return g
        lead = len(g.shape) - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1
        )
        out = self.op(Op.REDUCE_SUM, g, axes=axes, keepdims=False) if axes else g
        return self.reshape(out, shape)

    def reshape(self, x: Any, shape: tuple[int, ...]) -> Any:
        if tuple(x.shape) == tuple(shape):
            return x
        return self.op(Op.RESHAPE, x, shape=tuple(shape))

    def cast(self, x: Any, dtype: numpy.dtype) -> Any:
        if dtypes.of(x) == dtype:
            return x
        return self.op(Op.CAST, x, dtype=numpy.dtype(dtype))

    def where(self, cond: Any, x: Any, y: Any) -> Any:
        return self.op(Op.SELECT, cond, x, y)

    def keep_reduced(self, g: Any, x_shape: tuple[int, ...], axes: tuple[int, ...], keepdims: bool) -> Any:
        """A reduction's output gradient broadcast back to the reduced input's shape."""
        if not keepdims:
            kshape = tuple(1 if i in axes else n for i, n in enumerate(x_shape))
            g = self.reshape(g, kshape)
        return self.broadcast(g, x_shape)

    def is_float(self, x: Any) -> bool:
        return dtypes.is_float(dtypes.of(x))


def _is_scalar(a: Any) -> bool:
    return isinstance(a, (bool, int, float, numpy.number, numpy.bool_))
