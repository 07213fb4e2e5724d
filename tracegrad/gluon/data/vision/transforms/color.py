"""Colour transforms on HWC RGB images (MXNet 2.x semantics): RandomBrightness,
RandomContrast, RandomSaturation, RandomHue, RandomColorJitter, RandomLighting, RandomGray.

Computed in float32; a uint8 result is clipped to [0, 255] and truncated (MXNet's
saturate_cast). Factors are drawn from numpy's global generator. Where MXNet 2.0.0b1's
kernels contradict their documentation, the documented behaviour is implemented:
saturation blends with the pixel's luma (MXNet's loop keeps only the blue term) and
RandomGray writes the luma to every channel (MXNet's matrix is transposed).
"""

from __future__ import annotations

from typing import Any

import numpy as _onp

from .base import HostTransform, hwc

__all__ = ["RandomBrightness", "RandomContrast", "RandomSaturation", "RandomHue", "RandomColorJitter",
           "RandomLighting", "RandomGray"]

_LUMA = _onp.array([0.299, 0.587, 0.114], dtype=_onp.float32)
_EIG = _onp.array([[55.46 * -0.5675, 4.794 * 0.7192, 1.148 * 0.4009],
                   [55.46 * -0.5808, 4.794 * -0.0045, 1.148 * -0.8140],
                   [55.46 * -0.5836, 4.794 * -0.6948, 1.148 * 0.4203]], dtype=_onp.float32)


def _out(val: _onp.ndarray, like: _onp.ndarray) -> _onp.ndarray:
    if like.dtype == _onp.uint8:
        return _onp.trunc(_onp.clip(val, 0.0, 255.0)).astype(_onp.uint8)
    return val.astype(like.dtype)


def _luma(x: _onp.ndarray) -> _onp.ndarray:
    """Per-pixel luma (..., H, W, 1) of float32 RGB (a one-channel image is its own)."""
    return x if x.shape[-1] == 1 else (x @ _LUMA)[..., None]


def brightness(img: _onp.ndarray, alpha: float) -> _onp.ndarray:
    return _out(img.astype(_onp.float32) * _onp.float32(alpha), img)


def contrast(img: _onp.ndarray, alpha: float) -> _onp.ndarray:
    x = img.astype(_onp.float32)
    mean = _luma(x).mean(axis=(-3, -2, -1), keepdims=True)
    return _out(x * _onp.float32(alpha) + (1 - _onp.float32(alpha)) * mean, img)


def saturation(img: _onp.ndarray, alpha: float) -> _onp.ndarray:
    if img.shape[-1] == 1:
        return img.copy()
    x = img.astype(_onp.float32)
    return _out(_luma(x) * (1 - _onp.float32(alpha)) + x * _onp.float32(alpha), img)


def hue(img: _onp.ndarray, turns: float) -> _onp.ndarray:
    """Rotate the hue by `turns` of a full turn (HLS space, values read as 0..255)."""
    if img.shape[-1] == 1:
        return img.copy()
    rgb = img.astype(_onp.float32) / 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    vmax, vmin = rgb.max(axis=-1), rgb.min(axis=-1)
    diff = vmax - vmin
    light = (vmax + vmin) * 0.5
    chroma = diff > _onp.finfo(_onp.float32).eps
    safe = _onp.where(chroma, diff, 1.0)
    sat = _onp.where(light < 0.5, diff / _onp.where(chroma, vmax + vmin, 1.0),
                     diff / _onp.where(chroma, 2.0 - vmax - vmin, 1.0))
    sat = _onp.where(chroma, sat, 0.0)
    h = _onp.where(vmax == r, (g - b) * 60 / safe,
                   _onp.where(vmax == g, (b - r) * 60 / safe + 120, (r - g) * 60 / safe + 240))
    h = _onp.where(chroma, h, 0.0)
    h = _onp.mod(h / 60.0 + turns * 6.0, 6.0)
    p2 = _onp.where(light <= 0.5, light * (1 + sat), light + sat - light * sat)
    p1 = 2 * light - p2

    def channel(shift: float) -> _onp.ndarray:
        k = _onp.mod(h + shift, 6.0)
        v = _onp.where(k < 1, p1 + (p2 - p1) * k,
                       _onp.where(k < 3, p2, _onp.where(k < 4, p1 + (p2 - p1) * (4 - k), p1)))
        return _onp.where(sat == 0, light, v)

    out = _onp.stack([channel(2.0), channel(0.0), channel(4.0)], axis=-1) * 255.0
    return _out(out.astype(_onp.float32), img)


def lighting(img: _onp.ndarray, alphas: _onp.ndarray) -> _onp.ndarray:
    if img.shape[-1] == 1:
        return img.copy()
    return _out(img.astype(_onp.float32) + _EIG @ alphas.astype(_onp.float32), img)


def _factor_range(v: float) -> tuple[float, float]:
    return max(0.0, 1.0 - v), 1.0 + v


class _Enhance(HostTransform):
    """A factor drawn from [max(0, 1 - v), 1 + v], then the adjustment."""

    _fn: Any = None

    def __init__(self, v: float) -> None:
        super().__init__()
        self._range = _factor_range(float(v))

    def _apply(self, img: _onp.ndarray) -> _onp.ndarray:
        hwc(img, type(self).__name__, (1, 3))
        return type(self)._fn(img, _onp.random.uniform(*self._range))


class RandomBrightness(_Enhance):
    """Pixel values times a random factor."""

    _fn = staticmethod(brightness)


class RandomContrast(_Enhance):
    """Blend with the image's mean luma by a random factor."""

    _fn = staticmethod(contrast)


class RandomSaturation(_Enhance):
    """Blend with each pixel's luma by a random factor."""

    _fn = staticmethod(saturation)


class RandomHue(_Enhance):
    """Rotate the hue by (factor - 1) turns (MXNet adds factor * 360 degrees)."""

    _fn = staticmethod(lambda img, a: hue(img, a - 1.0))


class RandomColorJitter(HostTransform):
    """Brightness, contrast, saturation and hue jitter in a random order; each with a factor
    1 + U(-v, v) (hue: U(-v, v) turns); zero turns one off."""

    def __init__(self, brightness: float = 0, contrast: float = 0, saturation: float = 0, hue: float = 0) -> None:
        super().__init__()
        self._args = (float(brightness), float(contrast), float(saturation), float(hue))

    def _apply(self, img: _onp.ndarray) -> _onp.ndarray:
        hwc(img, "RandomColorJitter", (1, 3))
        fns = (brightness, contrast, saturation, hue)
        for i in _onp.random.permutation(4):
            v = self._args[i]
            if v > 0:
                d = _onp.random.uniform(-v, v)
                img = fns[i](img, d if i == 3 else 1.0 + d)
        return img


class RandomLighting(HostTransform):
    """AlexNet's PCA lighting noise: alphas ~ N(0, alpha) for the RGB eigenvectors."""

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self._alpha = float(alpha)

    def _apply(self, img: _onp.ndarray) -> _onp.ndarray:
        hwc(img, "RandomLighting", (1, 3))
        return lighting(img, _onp.random.normal(0.0, self._alpha, size=3))


class RandomGray(HostTransform):
    """With probability `p`, the luma (0.2989 R + 0.587 G + 0.114 B) in every channel; the
    result is float32 either way (as MXNet)."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

    def _apply(self, img: _onp.ndarray) -> _onp.ndarray:
        hwc(img, "RandomGray", (3,))
        x = img.astype(_onp.float32)
        if _onp.random.uniform() > self.p:
            return x
        gray = x @ _onp.array([0.2989, 0.587, 0.114], dtype=_onp.float32)
        return _onp.repeat(gray[..., None], 3, axis=-1)
