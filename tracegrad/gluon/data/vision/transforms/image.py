"""Tensor conversion and geometric transforms: ToTensor, Normalize, Resize, CenterCrop,
RandomCrop, CropResize, RandomResizedCrop, RandomFlipLeftRight, RandomFlipTopBottom."""

from __future__ import annotations

import math
from typing import Any

import numpy as _onp

from .base import ArrayTransform, HostTransform, as_pair, hwc
from .resize import resize_bilinear

__all__ = ["ToTensor", "Normalize", "Resize", "CenterCrop", "RandomCrop", "CropResize", "RandomResizedCrop",
           "RandomFlipLeftRight", "RandomFlipTopBottom"]


class ToTensor(ArrayTransform):
    """HWC (or NHWC) values in [0, 255] to CHW (NCHW) float32 in [0, 1] (divided by 255)."""

    def _apply(self, x: Any, xp: Any) -> Any:
        if x.ndim not in (3, 4):
            raise ValueError(f"ToTensor: expected an HWC image or NHWC batch, got shape {x.shape}")
        out = xp.moveaxis(x.astype("float32") / 255.0, -1, -3)
        return _onp.ascontiguousarray(out) if xp is _onp else out


class Normalize(ArrayTransform):
    """`(x - mean[c]) / std[c]` per channel of a CHW (or NCHW) tensor; a scalar applies to
    every channel."""

    def __init__(self, mean: Any = 0.0, std: Any = 1.0) -> None:
        super().__init__()
        self._mean = _onp.asarray(mean, dtype=_onp.float32).reshape(-1, 1, 1)
        self._std = _onp.asarray(std, dtype=_onp.float32).reshape(-1, 1, 1)

    def _apply(self, x: Any, xp: Any) -> Any:
        if x.ndim not in (3, 4):
            raise ValueError(f"Normalize: expected a CHW tensor or NCHW batch, got shape {x.shape}")
        c = x.shape[-3]
        for name, v in (("mean", self._mean), ("std", self._std)):
            if v.size not in (1, c):
                raise ValueError(f"Normalize: {name} has {v.size} values for {c} channels (shape {x.shape})")
        if xp is _onp:
            return ((x - self._mean) / self._std).astype(_onp.float32)
        return (x - xp.array(self._mean)) / xp.array(self._std)


class Resize(HostTransform):
    """Resize to `size`: (width, height), or an int: a square, or with `keep_ratio` the shorter
    side (the other scaled and truncated, as MXNet). Bilinear (OpenCV)."""

    def __init__(self, size: Any, keep_ratio: bool = False, interpolation: int = 1) -> None:
        super().__init__()
        _check_interp(interpolation, "Resize")
        self._size, self._keep = size, keep_ratio
        as_pair(size, "Resize size")

    def _apply(self, img: _onp.ndarray) -> _onp.ndarray:
        h, w, _ = hwc(img, "Resize")
        if isinstance(self._size, (int, _onp.integer)) and self._keep:
            s = int(self._size)
            nw, nh = (s, h * s // w) if h > w else (w * s // h, s)
        else:
            nw, nh = as_pair(self._size)
        return resize_bilinear(img, nw, nh)


def _check_interp(interpolation: Any, who: str) -> None:
    if interpolation not in (None, 1):
        raise ValueError(f"{who}: interpolation={interpolation!r} is not supported; only bilinear (1) is")


def _crop(img: _onp.ndarray, x: int, y: int, w: int, h: int) -> _onp.ndarray:
    return _onp.ascontiguousarray(img[..., y:y + h, x:x + w, :])


def _random_crop(img: _onp.ndarray, width: int, height: int, ux: float, uy: float) -> _onp.ndarray:
    """MXNet's random_crop: the largest region of the target's aspect that fits (the target
    size when it fits), at (ux, uy) in [0, 1] of the free space, resized to the target."""
    h, w, _ = hwc(img, "crop")
    cw, ch = float(width), float(height)
    if h < ch:
        cw, ch = cw * h / ch, float(h)
    if w < cw:
        cw, ch = float(w), ch * w / cw
    cw, ch = max(1, int(cw)), max(1, int(ch))
    x, y = int(ux * (w - cw)), int(uy * (h - ch))
    out = _crop(img, x, y, cw, ch)
    return out if (cw, ch) == (width, height) else resize_bilinear(out, width, height)


class CenterCrop(HostTransform):
    """The central (width, height) region; an image smaller than that gives its largest
    central region of that aspect, resized up (as MXNet)."""

    def __init__(self, size: Any, interpolation: int = 1) -> None:
        super().__init__()
        _check_interp(interpolation, "CenterCrop")
        self._w, self._h = as_pair(size, "CenterCrop size")

    def _apply(self, img: _onp.ndarray) -> _onp.ndarray:
        return _random_crop(img, self._w, self._h, 0.5, 0.5)


class RandomCrop(HostTransform):
    """A random (width, height) region, after optional constant padding (`pad`: an int, or
    (top, bottom, left, right))."""

    def __init__(self, size: Any, pad: Any = None, pad_value: Any = 0, interpolation: int = 1) -> None:
        super().__init__()
        _check_interp(interpolation, "RandomCrop")
        self._w, self._h = as_pair(size, "RandomCrop size")
        if isinstance(pad, int):
            pad = (pad, pad, pad, pad)
        elif pad is not None and len(pad) < 4:
            raise ValueError(f"RandomCrop: pad must be an int or (top, bottom, left, right), got {pad!r}")
        self._pad, self._pad_value = pad, pad_value

    def _apply(self, img: _onp.ndarray) -> _onp.ndarray:
        if self._pad is not None:
            t, b, l_, r = self._pad[:4]
            width = [(0, 0)] * (img.ndim - 3) + [(t, b), (l_, r), (0, 0)]
            img = _onp.pad(img, width, mode="constant", constant_values=self._pad_value)
        return _random_crop(img, self._w, self._h, _onp.random.uniform(), _onp.random.uniform())


class CropResize(HostTransform):
    """The region at (x, y) of (width, height), resized to `size` when given."""

    def __init__(self, x: int, y: int, width: int, height: int, size: Any = None, interpolation: Any = None) -> None:
        super().__init__()
        _check_interp(interpolation, "CropResize")
        if x < 0 or y < 0 or width <= 0 or height <= 0:
            raise ValueError(f"CropResize: invalid region x={x}, y={y}, width={width}, height={height}")
        self._box = (int(x), int(y), int(width), int(height))
        self._size = as_pair(size, "CropResize size") if size else None

    def _apply(self, img: _onp.ndarray) -> _onp.ndarray:
        h, w, _ = hwc(img, "CropResize")
        x, y, cw, ch = self._box
        if x + cw > w or y + ch > h:
            raise ValueError(f"CropResize: region x={x}, y={y}, width={cw}, height={ch} is outside the image "
                             f"of height {h} and width {w}")
        out = _crop(img, x, y, cw, ch)
        return resize_bilinear(out, *self._size) if self._size else out


class RandomResizedCrop(HostTransform):
    """A random crop of `scale` of the area and aspect `ratio`, resized to `size`; after 10
    tries that do not fit, the central crop of the target's aspect."""

    def __init__(self, size: Any, scale: Any = (0.08, 1.0), ratio: tuple = (3.0 / 4.0, 4.0 / 3.0),
                 interpolation: int = 1) -> None:
        super().__init__()
        _check_interp(interpolation, "RandomResizedCrop")
        self._w, self._h = as_pair(size, "RandomResizedCrop size")
        self._scale = (float(scale), 1.0) if isinstance(scale, (int, float)) else tuple(scale)
        self._ratio = tuple(ratio)

    def _apply(self, img: _onp.ndarray) -> _onp.ndarray:
        h, w, _ = hwc(img, "RandomResizedCrop")
        log_r = (math.log(self._ratio[0]), math.log(self._ratio[1]))
        for _ in range(10):
            target = _onp.random.uniform(*self._scale) * h * w
            aspect = math.exp(_onp.random.uniform(*log_r))
            cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
            if 0 < cw <= w and 0 < ch <= h:
                x0 = int(_onp.random.uniform() * (w - cw))
                y0 = int(_onp.random.uniform() * (h - ch))
                out = _crop(img, x0, y0, cw, ch)
                return out if (cw, ch) == (self._w, self._h) else resize_bilinear(out, self._w, self._h)
        return _random_crop(img, self._w, self._h, 0.5, 0.5)


class _RandomFlip(HostTransform):
    _axis = -2

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

    def _apply(self, img: _onp.ndarray) -> _onp.ndarray:
        hwc(img, type(self).__name__)
        if self.p <= 0 or (self.p < 1 and _onp.random.random() >= self.p):
            return img
        return _onp.ascontiguousarray(_onp.flip(img, axis=self._axis))


class RandomFlipLeftRight(_RandomFlip):
    """Mirror the width axis with probability `p`."""

    _axis = -2


class RandomFlipTopBottom(_RandomFlip):
    """Mirror the height axis with probability `p`."""

    _axis = -3
