"""np.linalg.norm: vector p-norms and matrix norms (fro, nuc, 1, -1, 2, -2, inf, -inf).

Built from table ops, so it fuses and differentiates to any order. Roots are taken as
`where(s == 0, 0, root(where(s == 0, 1, s)))`: the gradient at the zero vector is the zero
subgradient (numpy-style formulas give 0/0 = NaN there), and the second branch keeps
inf/NaN out of higher-order gradients as well.
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from ..errors import ShapeError
from ..ir import dtypes
from ..tracer.array import Array
from ._core import as_array, at, cast, default_float, normalize_axes, reshape
from .decomp import lapack_operand, svd
from .math import abs as _abs
from .math import equal, multiply, not_equal, power, sqrt, where
from .reductions import max as _max
from .reductions import min as _min
from .reductions import sum as _sum
from .shape import transpose

__all__ = ["norm"]


def _safe_root(s: Array, p: float) -> Array:
    zero = equal(s, 0.0)
    safe = where(zero, 1.0, s)
    root = sqrt(safe) if p == 2 else power(safe, 1.0 / p)
    return where(zero, 0.0, root)


def _vector(x: Array, ord: Any, axes: tuple, keepdims: bool) -> Array:
    if ord is None or ord == 2:
        return _safe_root(_sum(multiply(x, x), axis=axes, keepdims=keepdims), 2)
    if isinstance(ord, str):
        raise ShapeError(f"norm: invalid norm order {ord!r} for vectors" + at())
    if ord == math.inf:
        return _max(_abs(x), axis=axes, keepdims=keepdims)
    if ord == -math.inf:
        return _min(_abs(x), axis=axes, keepdims=keepdims)
    if ord == 0:
        return _sum(cast(not_equal(x, 0.0), x.dtype), axis=axes, keepdims=keepdims)
    if ord == 1:
        return _sum(_abs(x), axis=axes, keepdims=keepdims)
    p = float(ord)
    return _safe_root(_sum(power(_abs(x), p), axis=axes, keepdims=keepdims), p)


def _keep(out: Array, shape: tuple, axes: tuple) -> Array:
    return reshape(out, tuple(1 if i in axes else n for i, n in enumerate(shape)))


def _matrix(x: Array, ord: Any, axes: tuple, keepdims: bool) -> Array:
    row, col = axes
    both = tuple(sorted(axes))
    if ord is None or ord == "fro":
        return _safe_root(_sum(multiply(x, x), axis=both, keepdims=keepdims), 2)
    if ord in ("nuc", 2, -2):
        rest = [i for i in range(x.ndim) if i not in axes]
        s = svd(transpose(lapack_operand(x), rest + [row, col]))[1]
        if ord == "nuc":
            out = _sum(s, axis=-1)
        else:
            out = s[..., 0] if ord == 2 else s[..., -1]
        return _keep(out, x.shape, axes) if keepdims else out
    if ord in (1, -1, math.inf, -math.inf):
        summed, kept = (row, col) if ord in (1, -1) else (col, row)
        red = _max if ord in (1, math.inf) else _min
        s = _sum(_abs(x), axis=summed, keepdims=True)
        out = red(s, axis=kept, keepdims=True)
        return out if keepdims else reshape(out, tuple(n for i, n in enumerate(x.shape) if i not in axes))
    raise ShapeError(f"norm: invalid norm order {ord!r} for matrices" + at())


def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Array:
    """Matrix or vector norm (numpy.linalg.norm's `ord`, `axis`, `keepdims`)."""
    a = as_array(x)
    if not dtypes.is_float(a.dtype):
        a = cast(a, default_float())
    if axis is None:
        if ord is None:
            return _vector(a, None, tuple(range(a.ndim)), keepdims)
        if a.ndim == 1:
            return _vector(a, ord, (0,), keepdims)
        if a.ndim == 2:
            return _matrix(a, ord, (0, 1), keepdims)
        raise ShapeError(f"norm: improper number of dimensions to norm: shape {a.shape} with ord={ord!r}" + at())
    if isinstance(axis, (int, numpy.integer)):
        axis = (int(axis),)
    axis = tuple(axis)
    if len(axis) == 1:
        return _vector(a, ord, normalize_axes(axis, a.ndim, "norm"), keepdims)
    if len(axis) == 2:
        normalize_axes(axis, a.ndim, "norm")  # (range and repeat checks)
        row, col = (int(i) % a.ndim for i in axis)
        return _matrix(a, ord, (row, col), keepdims)
    raise ShapeError(f"norm: improper number of dimensions to norm: axis={axis}" + at())
