"""Convolution and max pooling on 2-D (and, as height 1, 1-D) channels-first data.

Convolution is im2col + BLAS GEMM over batch tiles: a Numba kernel writes the tile's column
buffer in the layout the GEMM wants, so no transposes follow: the forward's stacked GEMM
(F, C*K) @ (T, C*K, P) writes (T, F, P) = NCHW directly; the data gradient's GEMM gives
per-image columns that the col2im kernel sums back; the weight gradient is one GEMM per
tile, (F, T*P) @ (T*P, C*K), over tiles of a fixed size, added in tile order, or, when
that GEMM's output is tiny (BLAS is slow at (6, 200704) @ (200704, 25)), Numba dot
products per fixed chunk of images, partial sums in float64 added in chunk order. Column
buffers live for one tile (at most TILE_BYTES). Max pooling's forward and its two
window-routing adjoints are Numba loops over (image, channel) planes. Work is split over
the codegen thread pool by images or planes; every element is computed by one unit in a
fixed order, so results are bitwise identical for any thread count.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy

TILE_BYTES = 1 << 19  # the largest column buffer of one thread's batch tile (fits L2)
PAR_MIN = 1 << 15  # elements of work below which a kernel runs on the calling thread
BLAS_MIN_OUT = 2048  # weight-gradient GEMM outputs (per group) below this run as Numba dots
WGRAD_CHUNK = 8  # images per partial sum of the Numba weight gradient (fixed: deterministic)

_nb: Any = None


def _kernels() -> Any:
    global _nb
    if _nb is None:
        from . import _window_nb

        _nb = _window_nb
    return _nb


def _run(fn: Any, args: Sequence[Any], units: int, work: int) -> None:
    """fn(*args, ulo, uhi) over [0, units), on the thread pool when the work is large."""
    if units <= 1 or work < PAR_MIN:
        fn(*args, 0, units)
        return
    from ..codegen import pool

    pool.run(fn, args, units)


def supported(x_ndim: int, dtype: Any) -> bool:
    """Whether these kernels take data of this rank and dtype (1-D and 2-D, float32/64)."""
    return x_ndim in (3, 4) and numpy.dtype(dtype) in (numpy.dtype("float32"), numpy.dtype("float64"))


def _as2d(a: numpy.ndarray) -> numpy.ndarray:
    return a if a.ndim == 4 else a.reshape(a.shape[:2] + (1,) + a.shape[2:])


def _geo(p: Sequence[int], nd: int, fill: int) -> tuple[int, int]:
    return (fill, p[0]) if nd == 1 else (p[0], p[1])


def _tile(n: int, per_image: int, itemsize: int) -> int:
    return max(1, min(n, TILE_BYTES // max(1, per_image * itemsize)))


class _Conv:
    """The geometry of one convolution, as 2-D."""

    def __init__(self, x_shape, w_shape, out, stride, pad, dilate, groups) -> None:
        nd = len(x_shape) - 2
        self.n, self.c = x_shape[0], x_shape[1]
        self.f = w_shape[0]
        self.kh, self.kw = _geo(w_shape[2:], nd, 1)
        self.oh, self.ow = _geo(out, nd, 1)
        self.sh, self.sw = _geo(stride, nd, 1)
        self.ph, self.pw = _geo(pad, nd, 0)
        self.dh, self.dw = _geo(dilate, nd, 1)
        self.groups = groups
        self.rows = self.c * self.kh * self.kw
        self.rg = self.rows // groups
        self.fg = self.f // groups
        self.p = self.oh * self.ow

    def geo(self) -> tuple:
        return (self.kh, self.kw, self.oh, self.ow, self.sh, self.sw, self.ph, self.pw, self.dh, self.dw)


def _conv_units(x4, wm, y3, n, geo, groups, t, ulo, uhi) -> None:
    """Images [ulo, uhi) of the forward, `t` at a time on this thread: im2col into one
    workspace, then the stacked GEMM straight into y (N, F, P)."""
    k = _kernels()
    rows = x4.shape[1] * geo[0] * geo[1]
    fg, rg = wm.shape[0] // groups, wm.shape[1]
    cols = numpy.empty((min(t, uhi - ulo), rows, y3.shape[2]), x4.dtype)
    for n0 in range(ulo, uhi, t):
        n1 = min(uhi, n0 + t)
        c = cols[: n1 - n0]
        k.im2col(x4, c, n0, *geo, True, 0, n1 - n0)
        if groups == 1:
            numpy.matmul(wm, c, out=y3[n0:n1])
            continue
        for j in range(groups):
            f0, r0 = j * fg, j * rg
            y3[n0:n1, f0 : f0 + fg] = numpy.matmul(wm[f0 : f0 + fg], c[:, r0 : r0 + rg])


def conv(x: numpy.ndarray, w: numpy.ndarray, out: tuple, stride, pad, dilate, groups) -> numpy.ndarray:
    """y (N, F, *out) = the cross-correlation of x with w."""
    g = _Conv(x.shape, w.shape, out, stride, pad, dilate, groups)
    x4 = numpy.ascontiguousarray(_as2d(x))
    y = numpy.empty((g.n, g.f) + tuple(out), x.dtype)
    wm = numpy.ascontiguousarray(w).reshape(g.f, g.rg)
    t = _tile(g.n, g.rows * g.p, x.dtype.itemsize)
    _run(_conv_units, (x4, wm, y.reshape(g.n, g.f, g.p), g.n, g.geo(), groups, t), g.n, g.n * g.rows * g.p)
    return y


def _bwd_data_units(gy3, wt, gx4, geo, groups, t, ulo, uhi) -> None:
    """Images [ulo, uhi) of the data gradient, `t` at a time on this thread: the GEMM
    W^T gy into one column workspace, then col2im."""
    k = _kernels()
    rg, fg = wt[0].shape
    cols = numpy.empty((min(t, uhi - ulo), rg * groups, gy3.shape[2]), gy3.dtype)
    for n0 in range(ulo, uhi, t):
        n1 = min(uhi, n0 + t)
        c = cols[: n1 - n0]
        for j in range(groups):
            numpy.matmul(wt[j], gy3[n0:n1, j * fg : (j + 1) * fg], out=c[:, j * rg : (j + 1) * rg])
        k.col2im(c, gx4, n0, *geo, 0, n1 - n0)


def conv_bwd_data(gy: numpy.ndarray, w: numpy.ndarray, x_shape: tuple, stride, pad, dilate, groups) -> numpy.ndarray:
    """gx of x_shape: the transpose of `conv` in its data, applied to gy."""
    g = _Conv(x_shape, w.shape, gy.shape[2:], stride, pad, dilate, groups)
    gx = numpy.empty(tuple(x_shape), gy.dtype)
    gy3 = numpy.ascontiguousarray(gy).reshape(g.n, g.f, g.p)
    wm = numpy.ascontiguousarray(w).reshape(g.f, g.rg)
    wt = [numpy.ascontiguousarray(wm[j * g.fg : (j + 1) * g.fg].T) for j in range(groups)]
    t = _tile(g.n, g.rows * g.p, gy.dtype.itemsize)
    _run(_bwd_data_units, (gy3, wt, _as2d(gx), g.geo(), groups, t), g.n, g.n * g.rows * g.p)
    return gx


def conv_bwd_weight(x: numpy.ndarray, gy: numpy.ndarray, w_shape: tuple, stride, pad, dilate, groups) -> numpy.ndarray:
    """gw of w_shape: the gradient of `conv` in its weight, for output gradient gy."""
    k = _kernels()
    g = _Conv(x.shape, w_shape, gy.shape[2:], stride, pad, dilate, groups)
    x4 = numpy.ascontiguousarray(_as2d(x))
    gy3 = numpy.ascontiguousarray(gy).reshape(g.n, g.f, g.p)
    t = _tile(g.n, g.rows * g.p, x.dtype.itemsize)
    if g.fg * g.rg < BLAS_MIN_OUT:  # a tiny GEMM output over a long sum: BLAS is slow there
        units = -(-g.n // WGRAD_CHUNK)
        part = numpy.empty((units, g.f, g.rg), numpy.float64)
        args = (x4, gy3, part, WGRAD_CHUNK, g.fg) + g.geo()
        _run(k.wgrad_x, args, units, g.n * g.f * g.rg * g.p)
        return part.sum(axis=0).astype(x.dtype).reshape(w_shape)
    gw = numpy.zeros((g.f, g.rg), gy.dtype)
    part = numpy.empty((g.fg, g.rg), gy.dtype)
    for n0 in range(0, g.n, t):
        n1 = min(g.n, n0 + t)
        cols = numpy.empty((g.rows, n1 - n0, g.p), x.dtype)
        _run(k.im2col, (x4, cols, n0) + g.geo() + (False,), n1 - n0, (n1 - n0) * g.rows * g.p)
        cm = cols.reshape(g.rows, -1)
        g2 = numpy.ascontiguousarray(gy3[n0:n1].swapaxes(0, 1)).reshape(g.f, -1)
        for j in range(groups):
            f0, r0 = j * g.fg, j * g.rg
            numpy.matmul(g2[f0 : f0 + g.fg], cm[r0 : r0 + g.rg].T, out=part)
            gw[f0 : f0 + g.fg] += part
    return gw.reshape(w_shape)


# ---- max pooling -------------------------------------------------------------------------
def _planes(a: numpy.ndarray) -> numpy.ndarray:
    a4 = _as2d(numpy.ascontiguousarray(a))
    return a4.reshape((-1,) + a4.shape[2:])


def maxpool(x: numpy.ndarray, out: tuple, kernel, stride, pad) -> numpy.ndarray:
    """y (N, C, *out): the max of every window (padding never chosen)."""
    nd = x.ndim - 2
    y = numpy.empty(tuple(x.shape[:2]) + tuple(out), x.dtype)
    xq, yq = _planes(x), _planes(y)
    geo = _geo(kernel, nd, 1) + _geo(stride, nd, 1) + _geo(pad, nd, 0)
    _run(_kernels().maxpool, (xq, yq) + geo, xq.shape[0], x.size)
    return y


def maxpool_route(x: numpy.ndarray, y: numpy.ndarray, v: numpy.ndarray, kernel, stride, pad,
                  gather: bool) -> numpy.ndarray:
    """Route through each window's first maximum: gather=False adds y-shaped v into an
    x-shaped result there (the gradient); gather=True reads x-shaped v there (its adjoint)."""
    nd = x.ndim - 2
    res = numpy.empty(y.shape if gather else x.shape, v.dtype)
    geo = _geo(kernel, nd, 1) + _geo(stride, nd, 1) + _geo(pad, nd, 0)
    args = (_planes(x), _planes(y), _planes(v), _planes(res)) + geo + (gather,)
    _run(_kernels().maxpool_route, args, args[0].shape[0], x.size)
    return res
