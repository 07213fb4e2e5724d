"""Bilinear image resizing as OpenCV's INTER_LINEAR computes it (what MXNet's image
operators call): half-pixel centres, edges clamped; uint8 images in OpenCV's fixed point
(11-bit coefficients, its vectorized rounding), other dtypes in float32."""

from __future__ import annotations

import numpy as _onp

__all__ = ["resize_bilinear"]

_COEF_BITS = 11
_COEF_SCALE = 1 << _COEF_BITS


def _axis(n_out: int, n_in: int, clamp_weights: bool) -> tuple:
    """Source indices (lo, hi) and float32 weights of `hi` for each output index. Past an
    edge OpenCV zeroes the weight along x but, along y, blends the clamped row with itself."""
    f = ((_onp.arange(n_out, dtype=_onp.float64) + 0.5) * (n_in / n_out) - 0.5).astype(_onp.float32)
    lo = _onp.floor(f).astype(_onp.int64)
    f = (f - lo).astype(_onp.float32)
    if clamp_weights:
        f[(lo < 0) | (lo >= n_in - 1)] = 0.0
    return _onp.clip(lo, 0, n_in - 1), _onp.clip(lo + 1, 0, n_in - 1), f


def _resize_one(img: _onp.ndarray, width: int, height: int) -> _onp.ndarray:
    y0, y1, fy = _axis(height, img.shape[0], False)
    x0, x1, fx = _axis(width, img.shape[1], True)
    if img.dtype == _onp.uint8:
        ax1 = _onp.rint(fx * _COEF_SCALE).astype(_onp.int64)[:, None]
        ax0 = _onp.rint((_onp.float32(1) - fx) * _COEF_SCALE).astype(_onp.int64)[:, None]
        by1 = _onp.rint(fy * _COEF_SCALE).astype(_onp.int64)[:, None, None]
        by0 = _onp.rint((_onp.float32(1) - fy) * _COEF_SCALE).astype(_onp.int64)[:, None, None]
        src = img.astype(_onp.int64)
        rows = src[:, x0] * ax0 + src[:, x1] * ax1
        top, bot = rows[y0], rows[y1]
        out = ((((top >> 4) * by0) >> 16) + (((bot >> 4) * by1) >> 16) + 2) >> 2
        return _onp.clip(out, 0, 255).astype(_onp.uint8)
    src = img.astype(_onp.float32)
    fx, fy = fx[:, None], fy[:, None, None]
    rows = src[:, x0] * (1 - fx) + src[:, x1] * fx
    out = rows[y0] * (1 - fy) + rows[y1] * fy
    if _onp.issubdtype(img.dtype, _onp.integer):
        info = _onp.iinfo(img.dtype)
        out = _onp.clip(_onp.rint(out), info.min, info.max)
    return out.astype(img.dtype)


def resize_bilinear(img: _onp.ndarray, width: int, height: int) -> _onp.ndarray:
    """An HWC image (or NHWC batch, image by image) resized to (height, width)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"resize: the target size must be positive, got width={width}, height={height}")
    if img.ndim == 4:
        return _onp.stack([_resize_one(im, width, height) for im in img]) if len(img) else \
            _onp.zeros((0, height, width, img.shape[-1]), img.dtype)
    if img.ndim != 3:
        raise ValueError(f"resize: expected an HWC image or NHWC batch, got shape {img.shape}")
    return _resize_one(img, width, height)
