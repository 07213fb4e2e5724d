"""Rows of sorting and of gathering/scattering along one axis (sort, argsort, topk).

`np.sort` is TAKE_ALONG of the input at ARGSORT's indices, so its gradient is PUT_ALONG
(the cotangent routed back to the original positions) and the gradient of PUT_ALONG is
TAKE_ALONG again.
"""

from __future__ import annotations

import numpy

from . import dtypes
from ..errors import DTypeError, ShapeError
from .ops import Kind, Op, OpDef, fp_quiet, register


def _axis_ok(op: Op, x, axis: int) -> None:
    if not 0 <= axis < len(x.shape):
        raise ShapeError(f"{op.value}: axis {axis} is out of range for shape {tuple(x.shape)}")


def _argsort_infer(x, axis, descending):
    _axis_ok(Op.ARGSORT, x, axis)
    return [(tuple(x.shape), dtypes.int64)]


def _argsort_impl(x, axis, descending):
    if not descending:
        return numpy.argsort(x, axis=axis, kind="stable")
    # stable descending: sort the reversed array, reverse, map back (equal values keep order)
    rev = numpy.argsort(numpy.flip(x, axis), axis=axis, kind="stable")
    return (x.shape[axis] - 1) - numpy.flip(rev, axis)


register(OpDef(Op.ARGSORT, Kind.HOST, _argsort_infer, fp_quiet(_argsort_impl), None, differentiable=False,
               doc="indices that sort along `axis` (stable, descending too)"))


def _check_idx(op: Op, x, idx, axis: int, shape) -> None:
    _axis_ok(op, x, axis)
    if dtypes.of(idx).kind not in "iu":
        raise DTypeError(f"{op.value}: indices must be integers, got {dtypes.of(idx)}")
    if len(idx.shape) != len(shape) or any(a != b for i, (a, b) in enumerate(zip(idx.shape, shape)) if i != axis):
        raise ShapeError(
            f"{op.value}: indices of shape {tuple(idx.shape)} do not fit shape {tuple(shape)} outside axis {axis}"
        )


def _take_along_infer(x, idx, axis):
    _check_idx(Op.TAKE_ALONG, x, idx, axis, x.shape)
    return [(tuple(idx.shape), dtypes.of(x))]


def _along_key(idx: numpy.ndarray, axis: int) -> tuple:
    """The fancy-index key that addresses `a[..., idx[...], ...]` along `axis`."""
    grids = numpy.ogrid[tuple(slice(n) for n in idx.shape)]
    return tuple(idx if i == axis else g for i, g in enumerate(grids))


def _put_along_impl(g, idx, axis, shape):
    z = numpy.zeros(shape, g.dtype)
    numpy.add.at(z, _along_key(idx, axis), g)
    return z


def _put_along_infer(g, idx, axis, shape):
    if len(shape) != len(g.shape):
        raise ShapeError(f"put_along: values of shape {tuple(g.shape)} do not fit shape {tuple(shape)}")
    _check_idx(Op.PUT_ALONG, g, idx, axis, g.shape)
    return [(tuple(shape), dtypes.of(g))]


register(OpDef(
    Op.TAKE_ALONG, Kind.HOST, _take_along_infer,
    lambda x, idx, axis: numpy.take_along_axis(x, idx, axis),
    lambda b, x, idx, out, g, axis: (b.put_along(g, idx, axis=axis, shape=tuple(x.shape)), None),
    doc="numpy.take_along_axis",
))
register(OpDef(
    Op.PUT_ALONG, Kind.HOST, _put_along_infer, fp_quiet(_put_along_impl),
    lambda b, g, idx, out, gg, axis, shape: (b.take_along(gg, idx, axis=axis), None),
    doc="zeros of `shape`, then g added at the indices along `axis` (repeats accumulate)",
))
