"""Rows of convolution and its two backward passes (1-D/2-D/3-D, channels first).

Params: `stride`, `pad`, `dilate` (one int per spatial dim) and `groups`. The three rows
emit each other as gradients (conv is bilinear in data and weight), so every order of
differentiation stays in the table:

    CONV(x, w)               -> y       gx = CONV_BWD_DATA(g, w),  gw = CONV_BWD_WEIGHT(x, g)
    CONV_BWD_DATA(gy, w)     -> gx      (deconvolution is this row run forward)
    CONV_BWD_WEIGHT(x, gy)   -> gw

1-D and 2-D float32/float64 run the Numba im2col/col2im kernels + BLAS of
tracegrad.kernels.window (bitwise the same for any thread count). The rest (3-D, other
dtypes) runs im2col + GEMM in numpy (numpy.matmul, so BLAS) over batch tiles: each tile's
column buffer (C*K, images*P) is at most TILE_BYTES, built, multiplied and dropped; nothing
is kept past the step. With stride 1 the data gradient is itself a convolution (of the
padded gradient with the flipped weight), which measures faster than col2im.
"""

from __future__ import annotations

import itertools

import numpy
from numpy.lib.stride_tricks import as_strided

from . import dtypes
from ..errors import DTypeError, ShapeError
from ..kernels import window
from .ops import Kind, Op, OpDef, fp_quiet, register


def conv_out_size(size: int, k: int, stride: int, pad: int, dilate: int) -> int:
    """The output length of one spatial dim (MXNet's floor convention)."""
    return (size + 2 * pad - dilate * (k - 1) - 1) // stride + 1


def _avals_text(*xs) -> str:
    return ", ".join(f"{tuple(x.shape)} {dtypes.of(x)}" for x in xs)


def _check(op: Op, x, w, stride, pad, dilate, groups) -> tuple[int, ...]:
    """Validate conv operands; returns the output spatial shape."""
    nd = len(x.shape) - 2
    what = f"{op.value}: data and weight {_avals_text(x, w)}"
    if nd not in (1, 2, 3) or len(w.shape) != nd + 2:
        raise ShapeError(f"{what}: need (N, C, *spatial) data with 1-3 spatial dims and a weight of the same rank")
    if not (len(stride) == len(pad) == len(dilate) == nd):
        raise ShapeError(f"{what}: stride {stride}, pad {pad}, dilate {dilate} need {nd} values each")
    if dtypes.of(x) != dtypes.of(w) or not dtypes.is_float(dtypes.of(x)):
        raise DTypeError(f"{what}: need one floating dtype")
    if groups < 1 or x.shape[1] != w.shape[1] * groups or w.shape[0] % groups:
        raise ShapeError(
            f"{what}: with num_group={groups} the weight must be (num_filter, C/num_group, *kernel) "
            f"= ({w.shape[0]}, {x.shape[1] // max(groups, 1)}, ...) and num_filter divisible by num_group"
        )
    if min(stride) < 1 or min(dilate) < 1 or min(pad) < 0:
        raise ShapeError(f"{what}: stride and dilate must be >= 1 and pad >= 0")
    out = tuple(
        conv_out_size(x.shape[2 + i], w.shape[2 + i], stride[i], pad[i], dilate[i]) for i in range(nd)
    )
    if min(out) < 1:
        raise ShapeError(
            f"{what}: kernel {tuple(w.shape[2:])} (dilate {dilate}) is larger than the padded input "
            f"{tuple(x.shape[2 + i] + 2 * pad[i] for i in range(nd))}"
        )
    return out


def _conv_infer(x, w, stride, pad, dilate, groups):
    out = _check(Op.CONV, x, w, stride, pad, dilate, groups)
    return [((x.shape[0], w.shape[0]) + out, dtypes.of(x))]


class _Probe:
    def __init__(self, shape, dtype):
        self.shape, self.dtype = tuple(shape), dtype


def _bwd_data_infer(gy, w, x_shape, stride, pad, dilate, groups):
    out = _check(Op.CONV_BWD_DATA, _Probe(x_shape, dtypes.of(gy)), w, stride, pad, dilate, groups)
    want = (x_shape[0], w.shape[0]) + out
    if tuple(gy.shape) != want:
        raise ShapeError(
            f"{Op.CONV_BWD_DATA.value}: data {_avals_text(gy)} with weight {_avals_text(w)} must have shape "
            f"{want} to give an output of spatial shape {tuple(x_shape[2:])}"
        )
    return [(tuple(x_shape), dtypes.of(gy))]


def _bwd_weight_infer(x, gy, w_shape, stride, pad, dilate, groups):
    out = _check(Op.CONV_BWD_WEIGHT, x, _Probe(w_shape, dtypes.of(x)), stride, pad, dilate, groups)
    want = (x.shape[0], w_shape[0]) + out
    if tuple(gy.shape) != want:
        raise ShapeError(f"{Op.CONV_BWD_WEIGHT.value}: gradient {_avals_text(gy)} must have shape {want}")
    if dtypes.of(gy) != dtypes.of(x):
        raise DTypeError(f"{Op.CONV_BWD_WEIGHT.value}: dtypes of {_avals_text(x, gy)} differ")
    return [(tuple(w_shape), dtypes.of(x))]


# ---- im2col / col2im, one batch tile at a time -------------------------------------------
TILE_BYTES = 1 << 24  # the largest column buffer of one batch tile (bounds the memory of big batches)


def _padded(x: numpy.ndarray, pad) -> numpy.ndarray:
    if not any(pad):
        return x
    return numpy.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pad])


def _tiles(n: int, rows: int, cols_per_image: int, itemsize: int):
    """Batch ranges whose column buffer (rows x images*cols_per_image) is about TILE_BYTES.
    The split depends on the shapes only (never on the thread count): results are
    reproducible bit for bit."""
    per = max(1, TILE_BYTES // max(1, rows * cols_per_image * itemsize))
    for n0 in range(0, n, per):
        yield n0, min(n, n0 + per)


def _im2col(xp, kshape, out, stride, dilate) -> numpy.ndarray:
    """The column matrix (C*K, N*P) of an already padded xp (N, C, *Sp): one copy."""
    nd = len(kshape)
    st = xp.strides
    shape = (xp.shape[1],) + tuple(kshape) + (xp.shape[0],) + tuple(out)
    strides = (st[1],) + tuple(st[2 + i] * dilate[i] for i in range(nd)) + (st[0],) + tuple(
        st[2 + i] * stride[i] for i in range(nd)
    )
    cols = numpy.ascontiguousarray(as_strided(xp, shape, strides, writeable=False))
    return cols.reshape(xp.shape[1] * int(numpy.prod(kshape)), -1)


def _col2im(cols, x_shape, kshape, out, stride, pad, dilate) -> numpy.ndarray:
    """The adjoint of _im2col: columns (C*K, N*P) summed back into an array of x_shape."""
    n, c = x_shape[:2]
    nd = len(kshape)
    sp = tuple(x_shape[2 + i] + 2 * pad[i] for i in range(nd))
    acc = numpy.zeros((c, n) + sp, cols.dtype)
    cv = cols.reshape((c,) + tuple(kshape) + (n,) + tuple(out))
    for k in itertools.product(*[range(kk) for kk in kshape]):
        key = (slice(None), slice(None)) + tuple(
            slice(k[i] * dilate[i], k[i] * dilate[i] + stride[i] * (out[i] - 1) + 1, stride[i]) for i in range(nd)
        )
        acc[key] += cv[(slice(None),) + k]
    crop = (slice(None), slice(None)) + tuple(slice(pad[i], pad[i] + x_shape[2 + i]) for i in range(nd))
    return acc[crop].swapaxes(0, 1)


def _rows_of(gy: numpy.ndarray) -> numpy.ndarray:
    """(N, F, *O) -> (F, N*P) contiguous."""
    return numpy.ascontiguousarray(gy.swapaxes(0, 1)).reshape(gy.shape[1], -1)


def _conv_impl(x, w, stride, pad, dilate, groups):
    n, f = x.shape[0], w.shape[0]
    kshape = w.shape[2:]
    out = _check(Op.CONV, x, w, stride, pad, dilate, groups)
    if window.supported(x.ndim, x.dtype):
        return window.conv(x, w, out, stride, pad, dilate, groups)
    xp = _padded(x, pad)
    dt = numpy.result_type(x, w)
    y = numpy.empty((n, f) + out, dt)
    fg, rg = f // groups, w[0].size
    wm = w.reshape(f, rg)
    p = int(numpy.prod(out))
    for n0, n1 in _tiles(n, rg * groups, p, dt.itemsize):
        cols = _im2col(xp[n0:n1], kshape, out, stride, dilate)
        t = numpy.empty((f, cols.shape[1]), dt)
        for g in range(groups):
            numpy.matmul(wm[g * fg : (g + 1) * fg], cols[g * rg : (g + 1) * rg], out=t[g * fg : (g + 1) * fg])
        y[n0:n1] = t.reshape(f, n1 - n0, *out).swapaxes(0, 1)
    return y


def _bwd_data_impl(gy, w, x_shape, stride, pad, dilate, groups):
    if window.supported(gy.ndim, gy.dtype):
        return window.conv_bwd_data(gy, w, tuple(x_shape), stride, pad, dilate, groups)
    kshape = w.shape[2:]
    out = tuple(gy.shape[2:])
    f = w.shape[0]
    fg, rg = f // groups, w[0].size
    wm = w.reshape(f, rg)
    dt = numpy.result_type(gy, w)
    gx = numpy.empty(tuple(x_shape), dt)
    p = int(numpy.prod(out))
    for n0, n1 in _tiles(x_shape[0], rg * groups, p, dt.itemsize):
        g2 = _rows_of(gy[n0:n1])
        cols = numpy.empty((rg * groups, g2.shape[1]), dt)
        for g in range(groups):
            numpy.matmul(wm[g * fg : (g + 1) * fg].T, g2[g * fg : (g + 1) * fg], out=cols[g * rg : (g + 1) * rg])
        gx[n0:n1] = _col2im(cols, (n1 - n0,) + tuple(x_shape[1:]), kshape, out, stride, pad, dilate)
    return gx


def _bwd_weight_impl(x, gy, w_shape, stride, pad, dilate, groups):
    if window.supported(x.ndim, x.dtype):
        return window.conv_bwd_weight(x, gy, tuple(w_shape), stride, pad, dilate, groups)
    kshape = tuple(w_shape[2:])
    out = tuple(gy.shape[2:])
    xp = _padded(x, pad)
    f = w_shape[0]
    rg = int(numpy.prod(w_shape[1:]))
    fg = f // groups
    dt = numpy.result_type(x, gy)
    gw = numpy.zeros((f, rg), dt)
    t = numpy.empty((fg, rg), dt)
    p = int(numpy.prod(out))
    for n0, n1 in _tiles(x.shape[0], rg * groups, p, dt.itemsize):
        cols = _im2col(xp[n0:n1], kshape, out, stride, dilate)
        g2 = _rows_of(gy[n0:n1])
        for g in range(groups):
            numpy.matmul(g2[g * fg : (g + 1) * fg], cols[g * rg : (g + 1) * rg].T, out=t)
            gw[g * fg : (g + 1) * fg] += t
    return gw.reshape(w_shape)


# ---- gradient rules ----------------------------------------------------------------------
def _conv_vjp(b, x, w, out, g, **p):
    return (
        b.conv_bwd_data(g, w, x_shape=tuple(x.shape), **p),
        b.conv_bwd_weight(x, g, w_shape=tuple(w.shape), **p),
    )


def _bwd_data_vjp(b, gy, w, out, h, x_shape, **p):
    return b.conv(h, w, **p), b.conv_bwd_weight(h, gy, w_shape=tuple(w.shape), **p)


def _bwd_weight_vjp(b, x, gy, out, h, w_shape, **p):
    return b.conv_bwd_data(gy, h, x_shape=tuple(x.shape), **p), b.conv(x, h, **p)


register(OpDef(
    Op.CONV, Kind.WINDOW, _conv_infer, fp_quiet(_conv_impl), _conv_vjp,
    doc="cross-correlation of x (N, C, *S) with w (F, C/groups, *K), no bias"))
register(OpDef(
    Op.CONV_BWD_DATA, Kind.WINDOW, _bwd_data_infer, fp_quiet(_bwd_data_impl), _bwd_data_vjp,
    doc="the transpose of convolution in its data: also deconvolution's forward"))
register(OpDef(
    Op.CONV_BWD_WEIGHT, Kind.WINDOW, _bwd_weight_infer, fp_quiet(_bwd_weight_impl), _bwd_weight_vjp,
    doc="the gradient of convolution in its weight"))
