"""Numba kernels of the sliding-window ops (2-D, channels first; 1-D runs as height 1).

Every kernel is a plain `nogil` function over a range [ulo, uhi) of work units (images, or
(image, channel) planes), so the caller splits units over threads; each output element is
written by one unit in a fixed order, so results do not depend on the split. Imported
lazily: numba is imported with this module, and the first call of a dtype compiles
(cached on disk next to this file or in NUMBA_CACHE_DIR).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_OPTS = dict(nogil=True, cache=True, error_model="numpy")


@njit(**_OPTS)
def _span(off, sw, w_n, ow_n):
    """The output columns [lo, hi) whose input column j * sw + off lies in [0, w_n)."""
    lo = max(0, (-off + sw - 1) // sw)
    hi = min(ow_n, (w_n - 1 - off) // sw + 1)
    return lo, max(lo, hi)


@njit(**_OPTS)
def im2col(x, cols, n0, kh_n, kw_n, oh_n, ow_n, sh, sw, ph, pw, dh, dw, tmajor, ulo, uhi):
    """Column rows of images n0+t, t in [ulo, uhi): row (c, kh, kw) holds the OH*OW input
    values that kernel tap meets (0 in the padding). cols is (T, C*K, P) when tmajor, else
    (C*K, T, P). Flat unsigned indexing: no slice objects and no negative-index handling
    in the short row copies (an unsigned base below 0 wraps back in the sum)."""
    c_n, h_n, w_n = x.shape[1], x.shape[2], x.shape[3]
    t_n = cols.shape[0] if tmajor else cols.shape[1]
    rows = c_n * kh_n * kw_n
    p_n = oh_n * ow_n
    same = sh == 1 and sw == 1 and w_n == ow_n  # a tap's valid rows are one shifted run of x
    xf = x.reshape(-1)
    cf = cols.reshape(-1)
    uow = np.uint64(ow_n)
    for t in range(ulo, uhi):
        for c in range(c_n):
            xbase = ((n0 + t) * c_n + c) * h_n * w_n
            for kh in range(kh_n):
                hoff = kh * dh - ph
                olo, ohi = _span(hoff, sh, h_n, oh_n)
                for kw in range(kw_n):
                    r = (c * kh_n + kh) * kw_n + kw
                    dst = np.uint64((t * rows + r) * p_n if tmajor else (r * t_n + t) * p_n)
                    off = kw * dw - pw
                    lo, hi = _span(off, sw, w_n, ow_n)
                    ulo_, uhi_ = np.uint64(lo), np.uint64(hi)
                    for j in range(np.uint64(olo * ow_n)):
                        cf[dst + j] = 0
                    for j in range(np.uint64(ohi * ow_n), np.uint64(p_n)):
                        cf[dst + j] = 0
                    src = np.uint64(xbase + hoff * w_n + off)
                    if same:  # from the first valid element to the last: reads stay in x
                        if olo < ohi and lo < hi:
                            for d in range(np.uint64(olo * ow_n + lo), np.uint64((ohi - 1) * ow_n + hi)):
                                cf[dst + d] = xf[src + d]
                        for oh in range(olo, ohi):
                            dr = dst + np.uint64(oh * ow_n)
                            for j in range(ulo_):
                                cf[dr + j] = 0
                            for j in range(uhi_, uow):
                                cf[dr + j] = 0
                        continue
                    usw = np.uint64(sw)
                    for oh in range(olo, ohi):
                        d = dst + np.uint64(oh * ow_n)
                        s_ = src + np.uint64(oh * sh * w_n)
                        for j in range(ulo_):
                            cf[d + j] = 0
                        if sw == 1:
                            for j in range(ulo_, uhi_):
                                cf[d + j] = xf[s_ + j]
                        else:
                            for j in range(ulo_, uhi_):
                                cf[d + j] = xf[s_ + j * usw]
                        for j in range(uhi_, uow):
                            cf[d + j] = 0


@njit(**_OPTS)
def col2im(cols, gx, n0, kh_n, kw_n, oh_n, ow_n, sh, sw, ph, pw, dh, dw, ulo, uhi):
    """The adjoint of im2col (cols (T, C*K, P)): images n0+t of gx are overwritten with the
    sums of the column entries that read each element, taps in (c, kh, kw) order."""
    c_n, h_n, w_n = gx.shape[1], gx.shape[2], gx.shape[3]
    rows = c_n * kh_n * kw_n
    p_n = oh_n * ow_n
    gf = gx.reshape(-1)
    cf = cols.reshape(-1)
    for t in range(ulo, uhi):
        for c in range(c_n):
            gbase = ((n0 + t) * c_n + c) * h_n * w_n
            for i in range(h_n * w_n):
                gf[np.uint64(gbase + i)] = 0
            for kh in range(kh_n):
                for kw in range(kw_n):
                    src = (t * rows + (c * kh_n + kh) * kw_n + kw) * p_n
                    off = kw * dw - pw
                    lo, hi = _span(off, sw, w_n, ow_n)
                    for oh in range(oh_n):
                        ih = oh * sh + kh * dh - ph
                        if ih < 0 or ih >= h_n:
                            continue
                        s_ = np.uint64(src + oh * ow_n)
                        d = np.uint64(gbase + ih * w_n + off)
                        if sw == 1:
                            for j in range(lo, hi):
                                gf[d + np.uint64(j)] += cf[s_ + np.uint64(j)]
                        else:
                            for j in range(lo, hi):
                                gf[d + np.uint64(j * sw)] += cf[s_ + np.uint64(j)]


@njit(**_OPTS)
def maxpool(x, y, kh_n, kw_n, sh, sw, ph, pw, ulo, uhi):
    """y = the max of each window of planes [ulo, uhi) of x (N*C, H, W); padding is -inf,
    NaN propagates."""
    h_n, w_n = x.shape[1], x.shape[2]
    oh_n, ow_n = y.shape[1], y.shape[2]
    xf = x.reshape(-1)
    for q in range(ulo, uhi):
        xq, yq = x[q], y[q]
        for oh in range(oh_n):
            h0 = oh * sh - ph
            for ow in range(ow_n):
                w0 = ow * sw - pw
                if h0 >= 0 and w0 >= 0 and h0 + kh_n <= h_n and w0 + kw_n <= w_n:
                    b = np.uint64((q * h_n + h0) * w_n + w0)
                    m = xf[b]
                    for kh in range(kh_n):
                        for kw in range(kw_n):
                            v = xf[b + np.uint64(kh * w_n + kw)]
                            if v > m or v != v:
                                m = v
                    yq[oh, ow] = m
                    continue
                e = -np.inf
                for kh in range(max(0, -h0), min(kh_n, h_n - h0)):
                    for kw in range(max(0, -w0), min(kw_n, w_n - w0)):
                        v = xq[h0 + kh, w0 + kw]
                        if v > e or v != v:
                            e = v
                yq[oh, ow] = e


@njit(**_OPTS)
def maxpool_route(x, y, g, out, kh_n, kw_n, sh, sw, ph, pw, gather, ulo, uhi):
    """Each window's first tap (kh, kw order, padding = -inf) equal to its max y: gather
    (out = y-shaped) reads g (x-shaped) there; else (out = x-shaped, overwritten) g
    (y-shaped) is added there. Planes [ulo, uhi) of (N*C, *, *) arrays."""
    h_n, w_n = x.shape[1], x.shape[2]
    oh_n, ow_n = y.shape[1], y.shape[2]
    xf = x.reshape(-1)
    for q in range(ulo, uhi):
        xq, yq, gq, oq = x[q], y[q], g[q], out[q]
        if not gather:
            oq[:, :] = 0
        for oh in range(oh_n):
            h0 = oh * sh - ph
            for ow in range(ow_n):
                w0 = ow * sw - pw
                m = yq[oh, ow]
                hit_h, hit_w = -1, -1
                if h0 >= 0 and w0 >= 0 and h0 + kh_n <= h_n and w0 + kw_n <= w_n:
                    b = np.uint64((q * h_n + h0) * w_n + w0)
                    for kh in range(kh_n - 1, -1, -1):  # backwards without exits: the
                        for kw in range(kw_n - 1, -1, -1):  # first hit is set last (no branch)
                            eq = xf[b + np.uint64(kh * w_n + kw)] == m
                            hit_h = h0 + kh if eq else hit_h
                            hit_w = w0 + kw if eq else hit_w
                else:
                    found = False
                    for kh in range(kh_n):
                        ih = h0 + kh
                        for kw in range(kw_n):
                            iw = w0 + kw
                            inside = 0 <= ih < h_n and 0 <= iw < w_n
                            v = xq[ih, iw] if inside else -np.inf
                            if v == m:
                                hit_h, hit_w, found = ih, iw, True
                                break
                        if found:
                            break
                    if not (found and 0 <= hit_h < h_n and 0 <= hit_w < w_n):
                        hit_h = -1
                if gather:
                    oq[oh, ow] = gq[hit_h, hit_w] if hit_h >= 0 else 0
                elif hit_h >= 0:
                    oq[hit_h, hit_w] += gq[oh, ow]

