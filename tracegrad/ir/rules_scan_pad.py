"""Rows of cumulative sums and padding.

PAD and PAD_VJP are adjoint linear maps (constant padding's fill value is an affine term
with no gradient): the gradient of one is the other.
"""

from __future__ import annotations

import numpy

from . import dtypes
from ..errors import ShapeError, UnsupportedError
from .ops import Kind, Op, OpDef, fp_quiet, register


def _cumsum_infer(x, axis, reverse):
    if not 0 <= axis < len(x.shape):
        raise ShapeError(f"cumsum: axis {axis} is out of range for shape {tuple(x.shape)}")
    return [(tuple(x.shape), dtypes.of(x))]


def _cumsum_impl(x, axis, reverse):
    if not reverse:
        return numpy.cumsum(x, axis=axis)
    return numpy.flip(numpy.cumsum(numpy.flip(x, axis), axis=axis), axis)


register(OpDef(
    Op.CUMSUM, Kind.HOST, _cumsum_infer, fp_quiet(_cumsum_impl),
    lambda b, x, out, g, axis, reverse: (b.cumsum(g, axis=axis, reverse=not reverse),),
    doc="cumulative sum along `axis` (reverse: from the end)",
))

PAD_MODES = ("constant", "edge", "reflect", "symmetric")


def _pad_infer(x, pad_width, mode, constant_values):
    if mode not in PAD_MODES:
        raise UnsupportedError(f"pad: mode {mode!r} is not supported; use one of {PAD_MODES}")
    if len(pad_width) != len(x.shape):
        raise ShapeError(f"pad: pad_width {pad_width} does not have one pair per dim of shape {tuple(x.shape)}")
    for n, (lo, hi) in zip(x.shape, pad_width):
        if lo < 0 or hi < 0:
            raise ShapeError(f"pad: negative pad_width {pad_width}")
        if mode != "constant" and n == 0 and lo + hi > 0:
            raise ShapeError(f"pad: cannot pad an empty axis of shape {tuple(x.shape)} in mode {mode!r}")
    return [(tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, pad_width)), dtypes.of(x))]


def _pad_impl(x, pad_width, mode, constant_values):
    if mode == "constant":
        return numpy.pad(x, pad_width, mode, constant_values=constant_values)
    return numpy.pad(x, pad_width, mode)


def _pad_vjp_impl(g, pad_width, mode, shape):
    if mode == "constant":
        return g[tuple(slice(lo, lo + n) for n, (lo, _) in zip(shape, pad_width))].copy()
    r = g
    for axis, (n, (lo, hi)) in enumerate(zip(shape, pad_width)):
        if lo == hi == 0:
            continue
        src = numpy.pad(numpy.arange(n), (lo, hi), mode)  # the source index of each output position
        moved = numpy.moveaxis(r, axis, 0)
        acc = numpy.zeros((n,) + moved.shape[1:], g.dtype)
        numpy.add.at(acc, src, moved)
        r = numpy.moveaxis(acc, 0, axis)
    return numpy.ascontiguousarray(r)


register(OpDef(
    Op.PAD, Kind.HOST, _pad_infer, fp_quiet(_pad_impl),
    lambda b, x, out, g, pad_width, mode, constant_values: (
        b.pad_vjp(g, pad_width=pad_width, mode=mode, shape=tuple(x.shape)),
    ),
    doc="numpy.pad (constant, edge, reflect, symmetric)",
))
register(OpDef(
    Op.PAD_VJP, Kind.HOST,
    lambda g, pad_width, mode, shape: [(tuple(shape), dtypes.of(g))],
    fp_quiet(_pad_vjp_impl),
    lambda b, g, out, gg, pad_width, mode, shape: (
        b.pad(gg, pad_width=pad_width, mode=mode, constant_values=0.0),
    ),
    doc="the adjoint of pad: each padded position's value added back to its source",
))
