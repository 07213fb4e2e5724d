"""Convolution and max pooling on 2-D (and, as height 1, 1-D) channels-first data.

Convolution is im2col + BLAS GEMM over batch tiles: a Numba kernel writes the tile's column
buffer in the layout the GEMM wants, so no transposes follow: the forward's stacked GEMM
(F, C*K) @ (T, C*K, P) writes (T, F, P) = NCHW directly; the data gradient's GEMM gives
per-image columns that the col2im kernel sums back; the weight gradient is one GEMM per
tile, (F, T*P) @ (T*P, C*K), over tiles of a fixed size (by shape, never by thread count),
the partial sums added in tile order in float64. Each thread builds and consumes its own
tiles (an L2-sized workspace), so the column buffer never grows with the batch. Column
buffers live for one tile (at most TILE_BYTES). Max pooling's forward and its two
window-routing adjoints are Numba loops over (image, channel) planes. Work is split over
the codegen thread pool by images or planes; every element is computed by one unit in a
fixed order, and BLAS runs on one thread in every call (codegen.blas_threads), so results
are bitwise identical for any thread count.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy

TILE_BYTES = 1 << 19  # the largest column buffer of one thread's batch tile (fits L2)
PAR_MIN = 1 << 15  # elements of work below which a kernel runs on the calling thread

_nb: Any = None


def _kernels() -> Any:
    global _nb
    if _nb is None:
        from . import _window_nb

        _nb = _window_nb
    return _nb


def _run(fn: Any, args: Sequence[Any], units: int, work: int) -> None:
    """fn(*args, ulo, uhi) over [0, units), on the thread pool when the work is large. BLAS
    is held at one thread on both paths: the pool's threads each call it, and OpenBLAS's
    GEMM results differ bitwise between its thread counts."""
    from ..codegen import blas_threads, pool

    with blas_threads.single():
        if units <= 1 or work < PAR_MIN:
            fn(*args, 0, units)
        else:
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


def _bwd_weight_units(x4, gy3, part, geo, groups, t, ulo, uhi) -> None:
    """Tiles [ulo, uhi) of `t` images on this thread: im2col (C*K, T, P), gy's tile as
    (F, T*P), and one GEMM per group into the tile's partial sum."""
    k = _kernels()
    n, p = x4.shape[0], gy3.shape[2]
    f, rows = gy3.shape[1], x4.shape[1] * geo[0] * geo[1]
    fg, rg = f // groups, rows // groups
    cols = numpy.empty((rows, t, p), x4.dtype)
    g2 = numpy.empty((f, t, p), gy3.dtype)
    for u in range(ulo, uhi):
        n0 = u * t
        m = min(t, n - n0)
        c = cols if m == t else numpy.empty((rows, m, p), x4.dtype)
        k.im2col(x4, c, n0, *geo, False, 0, m)
        gt = g2 if m == t else numpy.empty((f, m, p), gy3.dtype)
        gt[...] = gy3[n0 : n0 + m].swapaxes(0, 1)
        cm, gm = c.reshape(rows, m * p), gt.reshape(f, m * p)
        for j in range(groups):
            numpy.matmul(gm[j * fg : (j + 1) * fg], cm[j * rg : (j + 1) * rg].T, out=part[u, j * fg : (j + 1) * fg])


def conv_bwd_weight(x: numpy.ndarray, gy: numpy.ndarray, w_shape: tuple, stride, pad, dilate, groups) -> numpy.ndarray:
    """gw of w_shape: the gradient of `conv` in its weight, for output gradient gy: one GEMM
    per tile of a fixed number of images, the tiles' partial sums added in tile order."""
    g = _Conv(x.shape, w_shape, gy.shape[2:], stride, pad, dilate, groups)
    x4 = numpy.ascontiguousarray(_as2d(x))
    gy3 = numpy.ascontiguousarray(gy).reshape(g.n, g.f, g.p)
    t = _tile(g.n, g.rows * g.p, x.dtype.itemsize)
    units = -(-g.n // t)
    part = numpy.empty((units, g.f, g.rg), x.dtype)
    _run(_bwd_weight_units, (x4, gy3, part, g.geo(), groups, t), units, g.n * g.rows * g.p)
    return part.sum(axis=0, dtype=numpy.float64).astype(x.dtype).reshape(w_shape)


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
