"""np.linalg's factorizations and solvers: inv, det, slogdet, solve, cholesky, eigh, svd.

Each is one host row (numpy/LAPACK between fused kernels); integer operands become the
default float. A singular or non-positive-definite matrix raises `tracegrad.LinAlgError`
(a `numpy.linalg.LinAlgError`) naming the op and the operands.
"""

from __future__ import annotations

from typing import Any

from ..errors import ShapeError
from ..ir import dtypes
from ..ir.ops import Op
from ..tracer.array import Array
from ..tracer.lazy import apply, note_recorded_at
from ._core import as_array, at, cast, default_float, reshape

__all__ = ["inv", "det", "slogdet", "solve", "cholesky", "eigh", "svd"]


def lapack_operand(a: Any) -> Array:
    """`a` as a float32/float64 array (ints, bools and float16 become the default float)."""
    x = as_array(a)
    if x.dtype not in (dtypes.float32, dtypes.float64):
        x = cast(x, default_float())
    return x


def _noted(out: Array) -> Array:
    note_recorded_at(out)
    return out


def inv(a: Any) -> Array:
    """The inverse of each (..., M, M) matrix."""
    return _noted(apply(Op.INV, [lapack_operand(a)], {})[0])


def det(a: Any) -> Array:
    """The determinant of each (..., M, M) matrix."""
    return apply(Op.DET, [lapack_operand(a)], {})[0]


def slogdet(a: Any) -> tuple[Array, Array]:
    """(sign, log|det|) of each (..., M, M) matrix; the gradient flows through log|det|."""
    sign, logdet = apply(Op.SLOGDET, [lapack_operand(a)], {})
    return sign, logdet


def solve(a: Any, b: Any) -> Array:
    """x with a @ x = b; b is (..., M) (a stack of vectors, as MXNet) or (..., M, K)."""
    x, y = lapack_operand(a), lapack_operand(b)
    dt = dtypes.promote(x.dtype, y.dtype)
    x, y = cast(x, dt), cast(y, dt)
    if x.ndim < 2:
        raise ShapeError(f"solve: a needs 2 or more dims, got shape {x.shape} ({x.dtype})" + at())
    vector = y.ndim == 1 or y.ndim == x.ndim - 1
    if vector:
        y = reshape(y, y.shape + (1,))
    out = _noted(apply(Op.SOLVE, [x, y], {})[0])
    return reshape(out, out.shape[:-1]) if vector else out


def cholesky(a: Any) -> Array:
    """The lower Cholesky factor L (a = L @ L.T) of each symmetric positive-definite matrix.

    Only the lower triangle of `a` is read, so the gradient is zero above the diagonal.
    """
    return _noted(apply(Op.CHOLESKY, [lapack_operand(a)], {})[0])


def eigh(a: Any, UPLO: str = "L") -> tuple[Array, Array]:
    """(eigenvalues ascending, eigenvectors as columns) of symmetric matrices stored in the
    `UPLO` ('L' or 'U') triangle; gradients where the eigenvalues are distinct."""
    if UPLO not in ("L", "U"):
        raise ShapeError(f"eigh: UPLO must be 'L' or 'U', got {UPLO!r}" + at())
    w, v = apply(Op.EIGH, [lapack_operand(a)], {"UPLO": UPLO})
    return w, v


def svd(a: Any) -> tuple[Array, Array, Array]:
    """MXNet's (ut, s, v) with a = ut @ diag(s) @ v, s descending: numpy's reduced SVD
    (MXNet requires M <= N; any shape works here). Gradients where the singular values are
    distinct and nonzero."""
    u, s, vh = apply(Op.SVD, [lapack_operand(a)], {})
    return u, s, vh
