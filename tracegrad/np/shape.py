"""Shape and layout functions of the numpy interface."""

from __future__ import annotations

from typing import Any, Sequence

import numpy

from ..errors import ShapeError
from ..ir import dtypes
from ..ir.ops import Op
from ..tracer.array import Array
from ..tracer.lazy import apply
from ._core import as_array, at, broadcast, cast, normalize_axes, normalize_axis
from ._core import reshape as _reshape

__all__ = [
    "reshape", "transpose", "swapaxes", "moveaxis", "expand_dims", "squeeze", "ravel",
    "broadcast_to", "concatenate", "stack", "split", "array_split", "flip", "tile", "repeat",
    "hstack", "vstack",
]  # fmt: skip


def _resolve_shape(shape: Any, size: int, old: tuple) -> tuple[int, ...]:
    if isinstance(shape, (int, numpy.integer)):
        shape = (int(shape),)
    shape = [int(s) for s in shape]
    if shape.count(-1) > 1:
        raise ShapeError(f"reshape: can only specify one unknown dimension, got {tuple(shape)}" + at())
    if -1 in shape:
        known = int(numpy.prod([s for s in shape if s != -1], dtype=numpy.int64))
        if known == 0 or size % known:
            raise ShapeError(f"reshape: cannot reshape array of shape {old} into shape {tuple(shape)}" + at())
        shape[shape.index(-1)] = size // known
    return tuple(shape)


def reshape(a: Any, newshape: Any = None, order: str = "C", *, shape: Any = None) -> Array:
    """`a` with a new shape (one dimension may be -1); numpy 2's `shape=` keyword works too."""
    if shape is not None:
        newshape = shape
    if newshape is None:
        raise TypeError("reshape: the new shape is missing")
    if order != "C":
        from ..errors import UnsupportedError

        raise UnsupportedError(f"reshape: only order='C' is supported, got order={order!r}" + at())
    x = as_array(a)
    return _reshape(x, _resolve_shape(newshape, x.size, x.shape))


def transpose(a: Any, axes: Any = None) -> Array:
    x = as_array(a)
    perm = tuple(reversed(range(x.ndim))) if axes is None else tuple(int(p) % max(x.ndim, 1) for p in axes)
    if perm == tuple(range(x.ndim)):
        return x
    return apply(Op.TRANSPOSE, [x], {"perm": perm})[0]


def swapaxes(a: Any, axis1: int, axis2: int) -> Array:
    x = as_array(a)
    perm = list(range(x.ndim))
    i, j = normalize_axis(axis1, x.ndim, "swapaxes"), normalize_axis(axis2, x.ndim, "swapaxes")
    perm[i], perm[j] = perm[j], perm[i]
    return transpose(x, perm)


def moveaxis(a: Any, source: int, destination: int) -> Array:
    x = as_array(a)
    s, d = normalize_axis(source, x.ndim, "moveaxis"), normalize_axis(destination, x.ndim, "moveaxis")
    perm = [i for i in range(x.ndim) if i != s]
    perm.insert(d, s)
    return transpose(x, perm)


def expand_dims(a: Any, axis: int) -> Array:
    x = as_array(a)
    ax = normalize_axis(axis, x.ndim + 1, "expand_dims")
    shape = list(x.shape)
    shape.insert(ax, 1)
    return _reshape(x, tuple(shape))


def squeeze(a: Any, axis: Any = None) -> Array:
    x = as_array(a)
    if axis is None:
        return _reshape(x, tuple(n for n in x.shape if n != 1))
    axes = normalize_axes(axis, x.ndim, "squeeze")
    for ax in axes:
        if x.shape[ax] != 1:
            raise ShapeError(f"squeeze: cannot select an axis to squeeze out which has size not equal to one (axis {ax} of shape {x.shape})" + at())
    return _reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in axes))


def ravel(a: Any) -> Array:
    x = as_array(a)
    return _reshape(x, (x.size,))


def broadcast_to(a: Any, shape: Any) -> Array:
    x = as_array(a)
    shape = (int(shape),) if isinstance(shape, (int, numpy.integer)) else tuple(int(s) for s in shape)
    return broadcast(x, shape)


def concatenate(seq: Sequence[Any], axis: int = 0) -> Array:
    xs = [as_array(x) for x in seq]
    if not xs:
        raise ValueError("concatenate: need at least one array")
    dt = dtypes.promote(*[x.dtype for x in xs])
    xs = [cast(x, dt) for x in xs]
    if axis is None:  # numpy: flatten first
        xs, axis = [ravel(x) for x in xs], 0
    if any(x.ndim == 0 for x in xs):
        raise ShapeError("concatenate: zero-dimensional arrays cannot be concatenated" + at())
    ax = normalize_axis(axis, xs[0].ndim, "concatenate")
    if len(xs) == 1:
        return xs[0]
    return apply(Op.CONCATENATE, xs, {"axis": ax})[0]


def stack(arrays: Sequence[Any], axis: int = 0) -> Array:
    xs = [as_array(x) for x in arrays]
    shapes = {x.shape for x in xs}
    if len(shapes) != 1:
        raise ShapeError(f"stack: all input arrays must have the same shape, got {sorted(shapes)}" + at())
    return concatenate([expand_dims(x, axis) for x in xs], axis=axis)


def hstack(tup: Sequence[Any]) -> Array:
    xs = [as_array(x) for x in tup]
    return concatenate(xs, axis=0 if xs[0].ndim == 1 else 1)


def vstack(tup: Sequence[Any]) -> Array:
    xs = [as_array(x) for x in tup]
    xs = [reshape(x, (1, -1)) if x.ndim == 1 else x for x in xs]
    return concatenate(xs, axis=0)


def _take_slice(x: Array, axis: int, start: int, stop: int) -> Array:
    index = tuple((start, stop, 1) if i == axis else (None, None, None) for i in range(x.ndim))
    return apply(Op.SLICE, [x], {"index": index})[0]


def split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Array]:
    x = as_array(ary)
    ax = normalize_axis(axis, x.ndim, "split")
    n = x.shape[ax]
    if isinstance(indices_or_sections, (int, numpy.integer)):
        k = int(indices_or_sections)
        if k <= 0 or n % k:
            raise ShapeError(f"split: array split does not result in an equal division ({n} into {k})" + at())
        bounds = [i * (n // k) for i in range(k + 1)]
    else:
        bounds = [0] + [int(i) for i in indices_or_sections] + [n]
    return [_take_slice(x, ax, bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def array_split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Array]:
    x = as_array(ary)
    ax = normalize_axis(axis, x.ndim, "array_split")
    if isinstance(indices_or_sections, (int, numpy.integer)):
        n, k = x.shape[ax], int(indices_or_sections)
        sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
        return split(x, list(numpy.cumsum(sizes)[:-1]), axis=ax)
    return split(x, indices_or_sections, axis=ax)


def flip(m: Any, axis: Any = None) -> Array:
    x = as_array(m)
    axes = normalize_axes(axis, x.ndim, "flip")
    index = tuple((None, None, -1) if i in axes else (None, None, None) for i in range(x.ndim))
    return apply(Op.SLICE, [x], {"index": index})[0]


def tile(a: Any, reps: Any) -> Array:
    x = as_array(a)
    reps = (int(reps),) if isinstance(reps, (int, numpy.integer)) else tuple(int(r) for r in reps)
    nd = max(x.ndim, len(reps))
    reps = (1,) * (nd - len(reps)) + reps
    x = _reshape(x, (1,) * (nd - x.ndim) + x.shape)
    mid = tuple(s for pair in zip(reps, x.shape) for s in pair)
    x = _reshape(x, tuple(s for n in x.shape for s in (1, n)))
    return _reshape(broadcast(x, mid), tuple(r * n for r, n in zip(reps, x.shape[1::2])))


def repeat(a: Any, repeats: int, axis: Any = None) -> Array:
    """Repeat elements; the gradient sums over the repeats (MXNet 2.0.0b1 gives zeros)."""
    x = as_array(a)
    if axis is None:
        x, ax = ravel(x), 0
    else:
        ax = normalize_axis(axis, x.ndim, "repeat")
    r = int(repeats)
    shape = x.shape[: ax + 1] + (1,) + x.shape[ax + 1 :]
    big = broadcast(_reshape(x, shape), x.shape[: ax + 1] + (r,) + x.shape[ax + 1 :])
    out = list(x.shape)
    out[ax] *= r
    return _reshape(big, tuple(out))
