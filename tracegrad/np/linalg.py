"""Products (dot, matmul, tensordot, inner, outer, vdot, batch_dot); as `np.linalg` it also
holds norm and the factorizations (from norms.py and decomp.py)."""

from __future__ import annotations

from typing import Any

import numpy

from ..errors import ShapeError
from ..ir import dtypes
from ..ir.ops import Op
from ..tracer.array import Array
from ..tracer.lazy import apply
from ._core import as_array, at, cast, reshape
from .math import multiply
from .reductions import sum as _sum
from .shape import transpose

__all__ = ["dot", "matmul", "tensordot", "inner", "outer", "vdot", "batch_dot",
           # numpy/linalg ops (issue 9): np.linalg.*
           "norm", "inv", "det", "slogdet", "solve", "cholesky", "eigh", "svd"]


def _same(a: Array, b: Array) -> tuple[Array, Array]:
    dt = dtypes.promote(a.dtype, b.dtype)
    return cast(a, dt), cast(b, dt)


def matmul(a: Any, b: Any) -> Array:
    """numpy matmul: batched, 1-D operands promoted and squeezed again."""
    x, y = _same(as_array(a), as_array(b))
    if x.ndim == 0 or y.ndim == 0:
        raise ShapeError(f"matmul: operands cannot be scalars (shapes {x.shape}, {y.shape})" + at())
    xv = reshape(x, (1,) + x.shape) if x.ndim == 1 else x
    yv = reshape(y, y.shape + (1,)) if y.ndim == 1 else y
    out = apply(Op.MATMUL, [xv, yv], {})[0]
    shape = out.shape
    if x.ndim == 1:
        shape = shape[:-2] + shape[-1:]
    if y.ndim == 1:
        shape = shape[:-1]
    return reshape(out, shape)


def dot(a: Any, b: Any) -> Array:
    """numpy dot: products over the last axis of a and the second-to-last of b."""
    x, y = as_array(a), as_array(b)
    if x.ndim == 0 or y.ndim == 0:
        return multiply(x, y)
    if y.ndim <= 2:
        return matmul(x, y)
    return tensordot(x, y, axes=([x.ndim - 1], [y.ndim - 2]))


def tensordot(a: Any, b: Any, axes: Any = 2) -> Array:
    x, y = as_array(a), as_array(b)
    if isinstance(axes, (int, numpy.integer)):
        ax_a = list(range(x.ndim - int(axes), x.ndim))
        ax_b = list(range(int(axes)))
    else:
        ax_a, ax_b = ([axes[0]] if isinstance(axes[0], int) else list(axes[0])), (
            [axes[1]] if isinstance(axes[1], int) else list(axes[1])
        )
    ax_a = [i % x.ndim for i in ax_a]
    ax_b = [i % y.ndim for i in ax_b]
    if [x.shape[i] for i in ax_a] != [y.shape[i] for i in ax_b]:
        raise ShapeError(f"tensordot: shape-mismatch for sum: {x.shape} and {y.shape} over axes {axes}" + at())
    free_a = [i for i in range(x.ndim) if i not in ax_a]
    free_b = [i for i in range(y.ndim) if i not in ax_b]
    k = int(numpy.prod([x.shape[i] for i in ax_a], dtype=numpy.int64))
    xa = reshape(transpose(x, free_a + ax_a), (int(numpy.prod([x.shape[i] for i in free_a], dtype=numpy.int64)), k))
    yb = reshape(transpose(y, ax_b + free_b), (k, int(numpy.prod([y.shape[i] for i in free_b], dtype=numpy.int64))))
    out = matmul(xa, yb)
    return reshape(out, tuple(x.shape[i] for i in free_a) + tuple(y.shape[i] for i in free_b))


def inner(a: Any, b: Any) -> Array:
    x, y = as_array(a), as_array(b)
    return tensordot(x, y, axes=([x.ndim - 1], [y.ndim - 1]))


def outer(a: Any, b: Any) -> Array:
    x, y = as_array(a), as_array(b)
    return multiply(reshape(x, (x.size, 1)), reshape(y, (1, y.size)))


def vdot(a: Any, b: Any) -> Array:
    x, y = as_array(a), as_array(b)
    return _sum(multiply(reshape(x, (x.size,)), reshape(y, (y.size,))))


def batch_dot(a: Any, b: Any, transpose_a: bool = False, transpose_b: bool = False) -> Array:
    """Batched matrix product of equal-batch 3-D (or more) arrays, with optional transposes."""
    from .shape import swapaxes

    x, y = as_array(a), as_array(b)
    if x.ndim < 3 or y.ndim < 3 or x.shape[:-2] != y.shape[:-2]:
        raise ShapeError(f"batch_dot: needs arrays of 3+ dims with equal batch shapes, got {x.shape} and {y.shape}" + at())
    if transpose_a:
        x = swapaxes(x, -1, -2)
    if transpose_b:
        y = swapaxes(y, -1, -2)
    return matmul(x, y)


# numpy/linalg ops (issue 9): np.linalg's decompositions and norm live in their own modules
from .decomp import cholesky, det, eigh, inv, slogdet, solve, svd  # noqa: E402,F401
from .norms import norm  # noqa: E402,F401
