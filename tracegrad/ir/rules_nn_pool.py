"""Rows of pooling (max, avg, sum over windows; 1-D/2-D/3-D, channels first) and its gradients.

Params: `pool_type` ("max", "avg" or "sum"), `kernel`, `stride`, `pad`, `full` (MXNet's
pooling_convention "full": ceil instead of floor) and `count_include_pad` (avg's divisor
counts the padding; windows are never counted past the padded input).

    POOL(x)                   -> y      avg/sum: gx = POOL_BWD(g)     max: POOL_MAX_BWD(x, y, g)
    POOL_BWD(g)               -> gx     the adjoint of avg/sum pooling (linear)
    POOL_MAX_BWD(x, y, g)     -> gx     g routed to the first maximum of each window
    POOL_MAX_SELECT(x, y, h)  -> hy     h read at the first maximum of each window

1-D and 2-D max pooling (float32/float64) run the Numba loops of tracegrad.kernels.window.
Max pooling stores no argmax mask: its backward recomputes the first maximum of each
window by comparing x with y (one pass over the windows), which costs less than writing
and reading an index array of the output's size.
"""

from __future__ import annotations

import itertools

import numpy

from . import dtypes
from ..errors import DTypeError, ShapeError
from ..kernels import window
from .ops import Kind, Op, OpDef, fp_quiet, register

POOL_TYPES = ("max", "avg", "sum")


def pool_out_size(size: int, k: int, stride: int, pad: int, full: bool) -> int:
    span = size + 2 * pad - k
    return (-(-span // stride) if full else span // stride) + 1


def _out_shape(op: Op, x, pool_type, kernel, stride, pad, full) -> tuple[int, ...]:
    nd = len(x.shape) - 2
    what = f"{op.value}: data {tuple(x.shape)} {dtypes.of(x)}, kernel {tuple(kernel)}"
    if pool_type not in POOL_TYPES:
        raise ValueError(f"{op.value}: pool_type must be one of {POOL_TYPES}, got {pool_type!r}")
    if nd not in (1, 2, 3) or not (len(kernel) == len(stride) == len(pad) == nd):
        raise ShapeError(
            f"{what}: need (N, C, *spatial) data with 1-3 spatial dims and kernel, stride, pad "
            "of that many values"
        )
    if not dtypes.is_float(dtypes.of(x)):
        raise DTypeError(f"{what}: needs a floating dtype")
    if min(kernel) < 1 or min(stride) < 1 or min(pad) < 0:
        raise ShapeError(f"{what}: kernel and stride must be >= 1 and pad >= 0")
    if any(kernel[i] > x.shape[2 + i] + 2 * pad[i] for i in range(nd)):
        raise ShapeError(f"{what}: kernel is larger than the padded input (pad {tuple(pad)})")
    return tuple(pool_out_size(x.shape[2 + i], kernel[i], stride[i], pad[i], full) for i in range(nd))


def _pool_infer(x, pool_type, kernel, stride, pad, full, count_include_pad):
    out = _out_shape(Op.POOL, x, pool_type, kernel, stride, pad, full)
    return [(tuple(x.shape[:2]) + out, dtypes.of(x))]


def _bwd_infer(g, x_shape, pool_type, kernel, stride, pad, full, count_include_pad):
    out = _out_shape(Op.POOL_BWD, _Probe(x_shape, dtypes.of(g)), pool_type, kernel, stride, pad, full)
    if tuple(g.shape) != tuple(x_shape[:2]) + out:
        raise ShapeError(f"{Op.POOL_BWD.value}: gradient {tuple(g.shape)} does not match input {tuple(x_shape)}")
    return [(tuple(x_shape), dtypes.of(g))]


class _Probe:
    def __init__(self, shape, dtype):
        self.shape, self.dtype = tuple(shape), dtype


# ---- the window walk ---------------------------------------------------------------------
def _geometry(x_shape, kernel, stride, pad, full):
    """Output shape and the high-side padding that makes every window fit."""
    nd = len(kernel)
    out = tuple(pool_out_size(x_shape[2 + i], kernel[i], stride[i], pad[i], full) for i in range(nd))
    hi = tuple(max(pad[i], (out[i] - 1) * stride[i] + kernel[i] - x_shape[2 + i] - pad[i]) for i in range(nd))
    return out, hi


def _offsets(kernel, stride, out):
    """For each kernel offset, the strided slice of the padded input it reads."""
    nd = len(kernel)
    for k in itertools.product(*[range(kk) for kk in kernel]):
        yield (slice(None), slice(None)) + tuple(
            slice(k[i], k[i] + stride[i] * (out[i] - 1) + 1, stride[i]) for i in range(nd)
        )


def _pad_to(x, pad, hi, value):
    if not any(pad) and not any(hi):
        return x
    return numpy.pad(x, [(0, 0), (0, 0)] + [(pad[i], hi[i]) for i in range(len(pad))], constant_values=value)


def _crop(a, x_shape, pad):
    return a[(slice(None), slice(None)) + tuple(slice(p, p + n) for p, n in zip(pad, x_shape[2:]))]


def _divisor(x_shape, kernel, stride, pad, out, count_include_pad, dtype):
    """avg pooling's per-window element count (MXNet: clipped to the padded input, or to
    the input itself without count_include_pad), broadcastable to the output."""
    div = numpy.ones((), numpy.float64)
    for i, (n, k, s, p, o) in enumerate(zip(x_shape[2:], kernel, stride, pad, out)):
        start = numpy.arange(o) * s - p
        lo, hi = (-p, n + p) if count_include_pad else (0, n)
        cnt = numpy.minimum(start + k, hi) - numpy.maximum(start, lo)
        div = numpy.multiply.outer(div, numpy.maximum(cnt, 1))
    return div.astype(dtype)


def _pool_impl(x, pool_type, kernel, stride, pad, full, count_include_pad):
    out, hi = _geometry(x.shape, kernel, stride, pad, full)
    if pool_type == "max" and window.supported(x.ndim, x.dtype):
        return window.maxpool(x, out, kernel, stride, pad)
    fill = -numpy.inf if pool_type == "max" else 0
    xp = _pad_to(x, pad, hi, fill)
    acc = None
    combine = numpy.maximum if pool_type == "max" else numpy.add
    for key in _offsets(kernel, stride, out):
        if acc is None:
            acc = numpy.array(xp[key])
        else:
            combine(acc, xp[key], out=acc)
    if pool_type == "avg":
        acc /= _divisor(x.shape, kernel, stride, pad, out, count_include_pad, x.dtype)
    return acc


def _pool_bwd_impl(g, x_shape, pool_type, kernel, stride, pad, full, count_include_pad):
    out, hi = _geometry(x_shape, kernel, stride, pad, full)
    if pool_type == "avg":
        g = g / _divisor(x_shape, kernel, stride, pad, out, count_include_pad, g.dtype)
    acc = numpy.zeros(tuple(x_shape[:2]) + tuple(n + p + h for n, p, h in zip(x_shape[2:], pad, hi)), g.dtype)
    for key in _offsets(kernel, stride, out):
        acc[key] += g
    return numpy.ascontiguousarray(_crop(acc, x_shape, pad))


def _first_max_hits(x, y, kernel, stride, pad, full):
    """Yields (slice, mask) per kernel offset: mask marks windows whose first max is there."""
    out, hi = _geometry(x.shape, kernel, stride, pad, full)
    xp = _pad_to(x, pad, hi, -numpy.inf)
    taken = numpy.zeros(y.shape, bool)
    for key in _offsets(kernel, stride, out):
        hit = xp[key] == y
        hit &= ~taken
        taken |= hit
        yield key, hit, hi


def _max_bwd_impl(x, y, g, kernel, stride, pad, full):
    if window.supported(x.ndim, g.dtype) and x.dtype == g.dtype:
        return window.maxpool_route(x, y, g, kernel, stride, pad, gather=False)
    disjoint = all(s >= k for s, k in zip(stride, kernel))  # each input element in <= 1 window
    acc = None
    for key, hit, hi in _first_max_hits(x, y, kernel, stride, pad, full):
        if acc is None:
            acc = numpy.zeros(tuple(x.shape[:2]) + tuple(n + p + h for n, p, h in zip(x.shape[2:], pad, hi)), g.dtype)
        if disjoint:
            numpy.multiply(hit, g, out=acc[key])
        else:
            acc[key] += numpy.where(hit, g, 0)
    return numpy.ascontiguousarray(_crop(acc, x.shape, pad))


def _max_select_impl(x, y, h, kernel, stride, pad, full):
    if window.supported(x.ndim, h.dtype) and x.dtype == h.dtype:
        return window.maxpool_route(x, y, h, kernel, stride, pad, gather=True)
    out, hi = _geometry(x.shape, kernel, stride, pad, full)
    hp = _pad_to(h, pad, hi, 0)
    acc = numpy.zeros(y.shape, h.dtype)
    for key, hit, _ in _first_max_hits(x, y, kernel, stride, pad, full):
        acc += numpy.where(hit, hp[key], 0)
    return acc


# ---- gradient rules ----------------------------------------------------------------------
def _pool_vjp(b, x, out, g, pool_type, **p):
    if pool_type == "max":
        q = {k: v for k, v in p.items() if k != "count_include_pad"}
        return (b.pool_max_bwd(x, out, g, **q),)
    return (b.pool_bwd(g, x_shape=tuple(x.shape), pool_type=pool_type, **p),)


def _pool_bwd_vjp(b, g, out, h, x_shape, **p):
    return (b.pool(h, **p),)


def _max_bwd_vjp(b, x, y, g, out, h, **p):
    return None, None, b.pool_max_select(x, y, h, **p)


def _max_select_vjp(b, x, y, h, out, g, **p):
    return None, None, b.pool_max_bwd(x, y, g, **p)


def _max_infer(op):
    def infer(x, y, v, kernel, stride, pad, full):
        out = _out_shape(op, x, "max", kernel, stride, pad, full)
        if tuple(y.shape) != tuple(x.shape[:2]) + out:
            raise ShapeError(f"{op.value}: pooled shape {tuple(y.shape)} does not match input {tuple(x.shape)}")
        return [((tuple(x.shape) if op is Op.POOL_MAX_BWD else tuple(y.shape)), dtypes.of(v))]

    return infer


register(OpDef(
    Op.POOL, Kind.WINDOW, _pool_infer, fp_quiet(_pool_impl), _pool_vjp,
    doc="max/avg/sum pooling of x (N, C, *S) over windows"))
register(OpDef(
    Op.POOL_BWD, Kind.WINDOW, _bwd_infer, fp_quiet(_pool_bwd_impl), _pool_bwd_vjp,
    doc="avg/sum pooling's adjoint: each output gradient spread over its window"))
register(OpDef(
    Op.POOL_MAX_BWD, Kind.WINDOW, _max_infer(Op.POOL_MAX_BWD), fp_quiet(_max_bwd_impl), _max_bwd_vjp,
    doc="max pooling's gradient: g to the first maximum of each window (recomputed)"))
register(OpDef(
    Op.POOL_MAX_SELECT, Kind.WINDOW, _max_infer(Op.POOL_MAX_SELECT), fp_quiet(_max_select_impl), _max_select_vjp,
    doc="h read at the first maximum of each window (the adjoint of max_pooling_bwd)"))
