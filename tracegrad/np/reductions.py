"""Reductions of the numpy interface (all with axis and keepdims)."""

from __future__ import annotations

import builtins
from typing import Any

from ..ir import dtypes
from ..ir.ops import Op
from ..tracer.array import Array
from ..tracer.lazy import apply
from ..where import warn_user
from ._core import as_array, cast, default_float, normalize_axes, normalize_axis, reduce, to_dtype
from .math import divide, multiply, sqrt, subtract

__all__ = ["sum", "mean", "max", "min", "amax", "amin", "prod", "var", "std", "argmax", "argmin"]


def sum(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Array:  # noqa: A001
    out = reduce(Op.REDUCE_SUM, a, axis, keepdims)
    return cast(out, dtype) if dtype is not None else out


def _count(x: Array, axis: Any) -> int:
    n = 1
    for a in normalize_axes(axis, x.ndim, "mean"):
        n *= x.shape[a]
    return n


def mean(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Array:
    """The average; floating inputs keep their dtype (float64 stays float64), ints give
    the default float; `dtype` sets the dtype the sum is computed and returned in. An empty
    slice gives NaN and a RuntimeWarning (numpy)."""
    x = as_array(a)
    if dtype is not None:
        x = cast(x, to_dtype(dtype))
    return _mean(x, axis, keepdims, warn=True)


def _mean(x: Array, axis: Any, keepdims: bool, warn: bool) -> Array:
    if not dtypes.is_float(x.dtype):
        x = cast(x, default_float())
    n = _count(x, axis)
    if n == 0 and warn:
        warn_user("Mean of empty slice", RuntimeWarning)
    return divide(reduce(Op.REDUCE_SUM, x, axis, keepdims), float(n))  # 0/0: NaN


def max(a: Any, axis: Any = None, keepdims: bool = False) -> Array:  # noqa: A001
    """The maximum; every element equal to it gets the full gradient (MXNet)."""
    return reduce(Op.REDUCE_MAX, a, axis, keepdims)


def min(a: Any, axis: Any = None, keepdims: bool = False) -> Array:  # noqa: A001
    return reduce(Op.REDUCE_MIN, a, axis, keepdims)


amax, amin = max, min


def prod(a: Any, axis: Any = None, keepdims: bool = False) -> Array:
    """The product; its gradient is exact at zeros (MXNet gives NaN there)."""
    return reduce(Op.REDUCE_PROD, a, axis, keepdims)


def var(a: Any, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Array:
    """The variance with its true gradient (MXNet registers zero). With `ddof` >= the count
    (an empty slice included): inf or NaN and a RuntimeWarning (numpy)."""
    x = as_array(a)
    if not dtypes.is_float(x.dtype):
        x = cast(x, default_float())
    d = subtract(x, _mean(x, axis, True, warn=False))
    dof = _count(x, axis) - ddof
    if dof <= 0:
        warn_user("Degrees of freedom <= 0 for slice", RuntimeWarning)
    return divide(reduce(Op.REDUCE_SUM, multiply(d, d), axis, keepdims), float(builtins.max(dof, 0)))


def std(a: Any, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Array:
    return sqrt(var(a, axis, ddof, keepdims))


def _arg(op: Op, a: Any, axis: Any, keepdims: bool) -> Array:
    x = as_array(a)
    ax = None if axis is None else normalize_axis(axis, x.ndim, op.value)
    return apply(op, [x], {"axis": ax, "keepdims": bool(keepdims)})[0]


def argmax(a: Any, axis: Any = None, keepdims: bool = False) -> Array:
    return _arg(Op.ARGMAX, a, axis, keepdims)


def argmin(a: Any, axis: Any = None, keepdims: bool = False) -> Array:
    return _arg(Op.ARGMIN, a, axis, keepdims)
