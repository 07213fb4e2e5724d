"""Sorting: np.sort, np.argsort (MXNet's `descending`), npx.topk.

`sort` gathers the input at ARGSORT's indices (TAKE_ALONG), so its gradient routes the
cotangent back to the original positions. Descending orders are stable too: equal values
keep their original order.
"""

from __future__ import annotations

from typing import Any, Union

import numpy

from ..errors import ShapeError, UnsupportedError
from ..ir.ops import Op
from ..tracer.array import Array
from ..tracer.lazy import apply
from ._core import as_array, at, cast, normalize_axis, to_dtype
from .shape import ravel

__all__ = ["sort", "argsort", "topk"]


def _prepare(a: Any, axis: Any, name: str) -> tuple[Array, int]:
    x = as_array(a)
    if axis is None:
        return ravel(x), 0
    if x.ndim == 0:
        raise ShapeError(f"{name}: cannot sort a 0-d array along axis {axis}" + at())
    return x, normalize_axis(axis, x.ndim, name)


def _argsort(x: Array, axis: int, descending: bool) -> Array:
    return apply(Op.ARGSORT, [x], {"axis": axis, "descending": bool(descending)})[0]


def _take_along(x: Array, idx: Array, axis: int) -> Array:
    return apply(Op.TAKE_ALONG, [x, idx], {"axis": axis})[0]


def argsort(a: Any, axis: Any = -1, descending: bool = False, stable: bool = True) -> Array:
    """Indices (int64) that sort `a` along `axis` (None: the flattened array)."""
    x, ax = _prepare(a, axis, "argsort")
    return _argsort(x, ax, descending)


def sort(a: Any, axis: Any = -1, descending: bool = False, stable: bool = True) -> Array:
    """A sorted copy of `a` along `axis` (None: the flattened array)."""
    x, ax = _prepare(a, axis, "sort")
    return _take_along(x, _argsort(x, ax, descending), ax)


def topk(data: Any, axis: Any = -1, k: int = 1, ret_typ: str = "indices", is_ascend: bool = False,
         dtype: Any = "float32") -> Union[Array, list[Array]]:
    """MXNet's npx.topk: the k largest (smallest with `is_ascend`) along `axis`, sorted.

    ret_typ: 'value', 'indices' (of `dtype`, float32 by default as MXNet), 'mask' (0/1 of
    the data's dtype and shape) or 'both' ([values, indices]). k < 1 selects all.
    """
    if ret_typ not in ("value", "indices", "mask", "both"):
        raise UnsupportedError(f"topk: ret_typ must be 'value', 'indices', 'mask' or 'both', got {ret_typ!r}" + at())
    x, ax = _prepare(data, axis, "topk")
    n = x.shape[ax]
    k = n if k < 1 else int(k)
    if k > n:
        raise ShapeError(f"topk: k={k} is larger than the {n} elements along axis {ax} of shape {x.shape}" + at())
    idx = _argsort(x, ax, not is_ascend)
    if k < n:
        index = tuple((0, k, 1) if i == ax else (None, None, None) for i in range(x.ndim))
        idx = apply(Op.SLICE, [idx], {"index": index})[0]
    if ret_typ == "mask":
        ones = as_array(numpy.ones(idx.shape, x.dtype))  # a host constant: follows idx's device
        return apply(Op.PUT_ALONG, [ones, idx], {"axis": ax, "shape": x.shape})[0]
    indices = cast(idx, to_dtype(dtype))
    if ret_typ == "indices":
        return indices
    values = _take_along(x, idx, ax)
    return values if ret_typ == "value" else [values, indices]
