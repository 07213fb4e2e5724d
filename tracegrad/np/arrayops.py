"""Arrays built from arrays: pad, tril, triu, meshgrid, cumsum."""

from __future__ import annotations

from typing import Any

import numpy

from ..errors import ShapeError
from ..ir import dtypes
from ..ir.ops import Op
from ..tracer.array import Array
from ..tracer.lazy import apply
from ._core import as_array, at, broadcast, cast, normalize_axis, reshape, to_dtype
from .shape import ravel

__all__ = ["pad", "tril", "triu", "meshgrid", "cumsum"]


def pad(array: Any, pad_width: Any, mode: str = "constant", constant_values: Any = 0, **kwargs: Any) -> Array:
    """numpy.pad with mode 'constant' (a scalar `constant_values`), 'edge', 'reflect' or
    'symmetric'; the gradient sums each padded copy back into its source."""
    x = as_array(array)
    if kwargs:
        raise ShapeError(f"pad: unsupported arguments {sorted(kwargs)}" + at())
    try:
        widths = numpy.broadcast_to(numpy.asarray(pad_width, dtype=numpy.int64), (x.ndim, 2))
    except ValueError:
        raise ShapeError(f"pad: pad_width {pad_width!r} does not fit an array of shape {x.shape}" + at()) from None
    if not numpy.isscalar(constant_values):
        raise ShapeError("pad: constant_values must be a scalar" + at())
    cv = float(constant_values) if dtypes.is_float(x.dtype) else int(constant_values)
    params = {"pad_width": tuple((int(a), int(b)) for a, b in widths), "mode": mode, "constant_values": cv}
    return apply(Op.PAD, [x], params)[0]


def _tri(m: Any, k: int, lower: bool) -> Array:
    x = as_array(m)
    if x.ndim == 0:
        raise ShapeError(f"{'tril' if lower else 'triu'}: needs an array of 1 or more dims" + at())
    if x.ndim == 1:  # numpy: a vector is the rows of a square matrix
        x = broadcast(x, (x.shape[0], x.shape[0]))
    return apply(Op.TRI, [x], {"k": int(k), "lower": lower})[0]


def tril(m: Any, k: int = 0) -> Array:
    """The lower triangle (on and below diagonal k) of the last two dims; zeros above."""
    return _tri(m, k, True)


def triu(m: Any, k: int = 0) -> Array:
    """The upper triangle (on and above diagonal k) of the last two dims; zeros below."""
    return _tri(m, k, False)


def meshgrid(*xi: Any, indexing: str = "xy", sparse: bool = False, copy: bool = True) -> list[Array]:
    """Coordinate arrays from coordinate vectors ('xy': Cartesian, 'ij': matrix indexing)."""
    if indexing not in ("xy", "ij"):
        raise ShapeError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}" + at())
    xs = [ravel(as_array(x)) for x in xi]
    n = len(xs)
    shape = [x.shape[0] for x in xs]
    order = list(range(n))
    if indexing == "xy" and n > 1:
        shape[0], shape[1] = shape[1], shape[0]
        order[0], order[1] = 1, 0
    out = []
    for i, x in enumerate(xs):
        one = [1] * n
        one[order[i]] = x.shape[0]
        v = reshape(x, tuple(one))
        out.append(v if sparse else broadcast(v, tuple(shape)))
    return out


def cumsum(a: Any, axis: Any = None, dtype: Any = None) -> Array:
    """Cumulative sum along `axis` (None: of the flattened array); small ints and bools sum
    as int64 (numpy), `dtype` sets the dtype."""
    x = as_array(a)
    if dtype is not None:
        x = cast(x, to_dtype(dtype))
    elif x.dtype.kind in "biu" and x.dtype.itemsize < 8:
        x = cast(x, dtypes.int64)
    if axis is None:
        x, ax = ravel(x), 0
    else:
        ax = normalize_axis(axis, max(x.ndim, 1), "cumsum")
        if x.ndim == 0:
            x = reshape(x, (1,))
    return apply(Op.CUMSUM, [x], {"axis": ax, "reverse": False})[0]
