"""Image transforms (MXNet 2.x `gluon.data.vision.transforms`), in numpy.

Images are HWC (or NHWC batches) until `ToTensor` makes them CHW float32 in [0, 1]. Each
transform takes a numpy or tracegrad array and returns the same kind. Sizes are MXNet's
`(width, height)`. Random transforms draw from numpy's global generator. Resizing is bilinear with half-pixel centres (OpenCV's INTER_LINEAR).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as _onp

__all__ = ["Compose", "Cast", "ToTensor", "Normalize", "Resize", "CenterCrop", "RandomResizedCrop",
           "RandomFlipLeftRight", "RandomFlipTopBottom", "resize_bilinear"]


def _wrapped(fn: Any) -> Any:
    """Run `fn` on numpy; give back a tracegrad array when one came in."""
    def call(self: Any, x: Any, *args: Any) -> Any:
        is_tg = hasattr(x, "asnumpy")
        out = fn(self, x.asnumpy() if is_tg else _onp.asarray(x))
        if is_tg:
            from .... import np

            out = np.array(out, dtype=out.dtype)
        return (out,) + args if args else out
    call.__doc__ = fn.__doc__
    return call


class _Transform:
    """A callable transform (MXNet's are Blocks; these only need calling)."""

    def hybridize(self, *args: Any, **kwargs: Any) -> None:
        """Accepted for MXNet compatibility."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Compose(_Transform):
    """Apply `transforms` in order."""

    def __init__(self, transforms: Sequence[Any]) -> None:
        self._transforms = list(transforms)

    def __call__(self, x: Any, *args: Any) -> Any:
        for t in self._transforms:
            x = t(x)
        return (x,) + args if args else x


class Cast(_Transform):
    """Cast to `dtype` (float32 by default)."""

    def __init__(self, dtype: Any = "float32") -> None:
        self._dtype = _onp.dtype(dtype)

    @_wrapped
    def __call__(self, x: _onp.ndarray) -> _onp.ndarray:
        return x.astype(self._dtype)


class ToTensor(_Transform):
    """HWC (or NHWC) values in [0, 255] to CHW (NCHW) float32 in [0, 1]."""

    @_wrapped
    def __call__(self, x: _onp.ndarray) -> _onp.ndarray:
        if x.ndim not in (3, 4):
            raise ValueError(f"ToTensor: expected an HWC image or NHWC batch, got shape {x.shape}")
        x = x.astype(_onp.float32) / 255.0
        return _onp.ascontiguousarray(_onp.moveaxis(x, -1, -3))


class Normalize(_Transform):
    """`(x - mean[c]) / std[c]` per channel of a CHW (or NCHW) tensor."""

    def __init__(self, mean: Any = 0.0, std: Any = 1.0) -> None:
        self._mean = _onp.asarray(mean, dtype=_onp.float32).reshape(-1)
        self._std = _onp.asarray(std, dtype=_onp.float32).reshape(-1)

    @_wrapped
    def __call__(self, x: _onp.ndarray) -> _onp.ndarray:
        c = x.shape[-3]
        for name, v in (("mean", self._mean), ("std", self._std)):
            if v.size not in (1, c):
                raise ValueError(f"Normalize: {name} has {v.size} values for {c} channels (shape {x.shape})")
        shape = (-1, 1, 1)
        return ((x - self._mean.reshape(shape)) / self._std.reshape(shape)).astype(_onp.float32)


def _size(size: Any) -> tuple[int, int]:
    """MXNet's size argument as (width, height)."""
    if isinstance(size, (int, _onp.integer)):
        return int(size), int(size)
    w, h = size
    return int(w), int(h)


def resize_bilinear(img: _onp.ndarray, width: int, height: int) -> _onp.ndarray:
    """Bilinear resize of an HWC (or NHWC) image to (height, width), keeping its dtype
    (integers rounded and clipped)."""
    h_ax = img.ndim - 3
    in_h, in_w = img.shape[h_ax], img.shape[h_ax + 1]

    def axis(n_out: int, n_in: int) -> tuple:
        src = (_onp.arange(n_out, dtype=_onp.float64) + 0.5) * (n_in / n_out) - 0.5
        src = _onp.clip(src, 0, n_in - 1)
        lo = _onp.floor(src).astype(_onp.int64)
        hi = _onp.minimum(lo + 1, n_in - 1)
        return lo, hi, (src - lo)

    y0, y1, fy = axis(height, in_h)
    x0, x1, fx = axis(width, in_w)
    f = img.astype(_onp.float64)
    top, bot = _onp.take(f, y0, axis=h_ax), _onp.take(f, y1, axis=h_ax)
    fy = fy.reshape((-1, 1, 1))
    rows = top + (bot - top) * fy
    left, right = _onp.take(rows, x0, axis=h_ax + 1), _onp.take(rows, x1, axis=h_ax + 1)
    out = left + (right - left) * fx.reshape((-1, 1))
    if _onp.issubdtype(img.dtype, _onp.integer):
        info = _onp.iinfo(img.dtype)
        out = _onp.clip(_onp.rint(out), info.min, info.max)
    return out.astype(img.dtype)


class Resize(_Transform):
    """Resize to `size` ((width, height), or an int: square, or with `keep_ratio` the
    shorter side) by bilinear interpolation."""

    def __init__(self, size: Any, keep_ratio: bool = False, interpolation: int = 1) -> None:
        self._size, self._keep_ratio = size, keep_ratio

    @_wrapped
    def __call__(self, x: _onp.ndarray) -> _onp.ndarray:
        h, w = x.shape[-3], x.shape[-2]
        if isinstance(self._size, (int, _onp.integer)) and self._keep_ratio:
            s = int(self._size)
            nw, nh = (s, max(1, round(h * s / w))) if w <= h else (max(1, round(w * s / h)), s)
        else:
            nw, nh = _size(self._size)
        return resize_bilinear(x, nw, nh)


class CenterCrop(_Transform):
    """The central (width, height) region (an image smaller than that is first resized up)."""

    def __init__(self, size: Any, interpolation: int = 1) -> None:
        self._w, self._h = _size(size)

    @_wrapped
    def __call__(self, x: _onp.ndarray) -> _onp.ndarray:
        h, w = x.shape[-3], x.shape[-2]
        if h < self._h or w < self._w:
            s = max(self._h / h, self._w / w)
            x = resize_bilinear(x, max(self._w, math.ceil(w * s)), max(self._h, math.ceil(h * s)))
            h, w = x.shape[-3], x.shape[-2]
        top, left = (h - self._h) // 2, (w - self._w) // 2
        return _onp.ascontiguousarray(x[..., top:top + self._h, left:left + self._w, :])


class RandomResizedCrop(_Transform):
    """A random crop of `scale` of the area and aspect `ratio`, resized to `size`
    (falls back to a center crop after 10 tries, as MXNet)."""

    def __init__(self, size: Any, scale: tuple = (0.08, 1.0), ratio: tuple = (3.0 / 4.0, 4.0 / 3.0),
                 interpolation: int = 1) -> None:
        self._w, self._h = _size(size)
        self._scale, self._ratio = scale, ratio

    @_wrapped
    def __call__(self, x: _onp.ndarray) -> _onp.ndarray:
        h, w = x.shape[-3], x.shape[-2]
        area = h * w
        for _ in range(10):
            target = _onp.random.uniform(*self._scale) * area
            log_r = (math.log(self._ratio[0]), math.log(self._ratio[1]))
            aspect = math.exp(_onp.random.uniform(*log_r))
            cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
            if 0 < cw <= w and 0 < ch <= h:
                x0, y0 = _onp.random.randint(0, w - cw + 1), _onp.random.randint(0, h - ch + 1)
                crop = x[..., y0:y0 + ch, x0:x0 + cw, :]
                return resize_bilinear(crop, self._w, self._h)
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        return resize_bilinear(x[..., top:top + s, left:left + s, :], self._w, self._h)


class RandomFlipLeftRight(_Transform):
    """Mirror the width axis with probability `p`."""

    def __init__(self, p: float = 0.5) -> None:
        self._p = p

    @_wrapped
    def __call__(self, x: _onp.ndarray) -> _onp.ndarray:
        return _onp.ascontiguousarray(_onp.flip(x, axis=-2)) if _onp.random.random() < self._p else x


class RandomFlipTopBottom(_Transform):
    """Mirror the height axis with probability `p`."""

    def __init__(self, p: float = 0.5) -> None:
        self._p = p

    @_wrapped
    def __call__(self, x: _onp.ndarray) -> _onp.ndarray:
        return _onp.ascontiguousarray(_onp.flip(x, axis=-3)) if _onp.random.random() < self._p else x
