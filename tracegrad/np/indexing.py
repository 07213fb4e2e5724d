"""Indexing: `x[key]` as SLICE (basic) or GATHER (integer and boolean arrays), `x[key] = v`."""

from __future__ import annotations

from typing import Any

import numpy

from ..errors import DTypeError, IndexOutOfRangeError, ShapeError
from ..ir.ops import Op
from ..tracer.array import Array
from ..tracer.hooks import capturing, hooks
from ..tracer.lazy import apply
from ..where import user_line_long
from ..device import UNPLACED
from ._core import as_array, at, cast, normalize_axis, wrap

__all__ = ["getitem", "setitem", "take"]


def _is_advanced(k: Any) -> bool:
    return isinstance(k, (list, numpy.ndarray, Array, range))


def _expand(key: Any, ndim: int) -> tuple:
    if not isinstance(key, tuple):
        key = (key,)
    n_ell = sum(1 for k in key if k is Ellipsis)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis ('...')" + at())
    used = sum(1 for k in key if k is not None and k is not Ellipsis)
    used += sum(_bool_dims(k) - 1 for k in key if _bool_dims(k) > 1)
    if used > ndim:
        raise IndexError(f"too many indices for array: array is {ndim}-dimensional, but {used} were indexed" + at())
    out: list[Any] = []
    for k in key:
        if k is Ellipsis:
            out.extend([slice(None)] * (ndim - used))
        else:
            out.append(k)
    if n_ell == 0:
        out.extend([slice(None)] * (ndim - used))
    return tuple(out)


def _bool_dims(k: Any) -> int:
    if isinstance(k, Array) and k.dtype == numpy.bool_:
        return k.ndim
    if isinstance(k, numpy.ndarray) and k.dtype == numpy.bool_:
        return k.ndim
    return 0


def _basic_param(key: tuple, shape: tuple) -> tuple:
    """Normalized basic index: ints in range, (start, stop, step) triples, None."""
    out, dim = [], 0
    for k in key:
        if k is None:
            out.append(None)
            continue
        n = shape[dim]
        if isinstance(k, slice):
            out.append(_slice_param(k, n))
        else:
            i = int(k)
            if not -n <= i < n:
                raise IndexOutOfRangeError(f"index {i} is out of bounds for axis {dim} with size {n}" + at())
            out.append(i % n)
        dim += 1
    return tuple(out)


def _slice_param(k: slice, n: int) -> tuple:
    """A slice as a (start, stop, step) triple that means the same when rebuilt.

    `slice(*k.indices(n))` is not `k` for negative steps: `indices` gives stop -1 for "run
    to the front", which a rebuilt slice reads as "up to the last element".
    """
    start, stop, step = k.indices(n)
    if step < 0 and stop < 0:
        stop = None
    return (start, stop, step)


def _index_array(k: Any, dim_size: int, axis: int, shape: tuple = ()) -> Any:
    if isinstance(k, Array):
        if k.dtype.kind == "f":
            k = cast(k, numpy.dtype("int64"))  # MXNet accepts float labels as indices
        elif k.dtype.kind not in "iu":
            raise DTypeError(f"index arrays must be integers, got {k.dtype}" + at())
        if k._dev is None or k._dev is UNPLACED:  # GPU: not checked
            if k._data is not None:
                _check_bounds(k._data, dim_size, axis, shape)
            elif not capturing():  # computed inside record(): checked here, at the op
                _check_bounds(k._value(), dim_size, axis, shape)
            # (in a jit capture the index stays lazy: the gather itself raises when it runs)
        return k
    a = numpy.asarray(list(k) if isinstance(k, range) else k)
    if a.dtype.kind == "f":
        a = a.astype(numpy.int64)
    if a.dtype.kind not in "iu":
        raise DTypeError(f"index arrays must be integers, got {a.dtype}" + at())
    _check_bounds(a, dim_size, axis, shape)
    out = wrap(a.astype(numpy.int64))
    out._dev = UNPLACED  # a host index constant follows the indexed array's device (issue 5)
    return out


def _check_bounds(a: numpy.ndarray, n: int, axis: int, shape: tuple = ()) -> None:
    if a.size and (a.max() >= n or a.min() < -n):
        bad = a.max() if a.max() >= n else a.min()
        raise IndexOutOfRangeError(f"gather: index {bad} is out of bounds for axis {axis} with size {n} "
                                   f"(array shape {tuple(shape)}, index shape {a.shape})" + at())


def getitem(x: Array, key: Any) -> Array:
    key = _expand(key, x.ndim)
    if not any(_is_advanced(k) for k in key):
        index = _basic_param(key, x.shape)
        on_gpu = x._dev is not None and x._dev is not UNPLACED  # issue 5: GPU slices are lazy views
        if x._data is not None and not on_gpu and not (x._in_graph and _recording()):
            from ..tracer.state import STATE

            if not STATE.force_lazy and not capturing():
                v = x._data[tuple(slice(*i) if isinstance(i, tuple) else i for i in index)]
                if v.flags.c_contiguous and v.base is not None or v.ndim == 0:
                    return _view(x, v)
                return wrap(numpy.array(v, copy=True))
        return apply(Op.SLICE, [x], {"index": index})[0]
    # advanced: boolean masks become integer arrays (their shape depends on the data)
    expanded: list[Any] = []
    for k in key:
        if _bool_dims(k):
            mask = k._value() if isinstance(k, Array) else numpy.asarray(k)
            expanded.extend(numpy.nonzero(mask))
        else:
            expanded.append(k)
    template, idx, dim = [], [], 0
    for k in expanded:
        if k is None:
            template.append(None)
            continue
        if _is_advanced(k):
            idx.append(_index_array(k, x.shape[dim], dim, x.shape))
            template.append("@")
        elif isinstance(k, slice):
            template.append(_slice_param(k, x.shape[dim]))
        else:
            template.append(int(k))
        dim += 1
    return apply(Op.GATHER, [x] + idx, {"key": tuple(template)})[0]


def _recording() -> bool:
    from ..tracer.state import STATE

    return STATE.recording


def _view(x: Array, v: numpy.ndarray) -> Array:
    root = x._root if x._root is not None else x
    return type(x)._wrap(v, root=root)


def setitem(x: Array, key: Any, value: Any) -> None:
    hooks().on_setitem(x, key, value, _setitem)  # jit (issue 4): a write of the captured step


def _setitem(x: Array, key: Any, value: Any) -> None:
    x._prepare_write()
    if isinstance(value, Array):
        value = value._value()
    key = tuple(k._value() if isinstance(k, Array) else k for k in key) if isinstance(key, tuple) else (
        key._value() if isinstance(key, Array) else key
    )
    try:
        x._data[key] = value
    except ValueError as exc:
        raise ShapeError(f"setitem: {exc} (array shape {x.shape})\n  (at {user_line_long()})") from None


def take(a: Any, indices: Any, axis: Any = None, mode: str = "raise") -> Array:
    """Elements at `indices` along `axis` (repeated indices accumulate in the gradient)."""
    x = as_array(a)
    if axis is None:
        from .shape import ravel

        x, axis = ravel(x), 0
    ax = normalize_axis(axis, x.ndim, "take")
    n = x.shape[ax]
    idx = indices._value() if isinstance(indices, Array) else numpy.asarray(indices)
    idx = idx.astype(numpy.int64)
    if mode == "clip":
        idx = numpy.clip(idx, 0, n - 1)
    elif mode == "wrap":
        idx = numpy.mod(idx, n)
    elif mode != "raise":
        raise ValueError(f"take: mode must be 'raise', 'clip' or 'wrap', got {mode!r}")
    key = (slice(None),) * ax + (idx,)
    return getitem(x, key)
