"""What every vision transform shares: a HybridBlock called as `t(x, *args)` that transforms
`x` and passes the other arguments through (MXNet 2.x's convention), on numpy arrays (the
data pipeline: items stay numpy until the DataLoader batches them) or tracegrad arrays
(returned as tracegrad arrays)."""

from __future__ import annotations

from typing import Any

import numpy as _onp

from ....block import HybridBlock

__all__ = ["ArrayTransform", "HostTransform", "append_return", "as_pair"]


def append_return(x: Any, *args: Any) -> Any:
    """`x` alone, or `(x, *args)` when other arguments came with it."""
    return (x,) + args if args else x


def as_pair(size: Any, what: str = "size") -> tuple[int, int]:
    """MXNet's `size` argument, an int or (width, height), as (width, height)."""
    if isinstance(size, (int, _onp.integer)):
        w = h = int(size)
    else:
        w, h = (int(v) for v in size)
    if w <= 0 or h <= 0:
        raise ValueError(f"{what} must be positive, got {size!r}")
    return w, h


class ArrayTransform(HybridBlock):
    """A transform written with array operations that work on numpy and tracegrad arrays
    alike: `_apply(x, xp)` with `xp` the input's namespace, so on tracegrad arrays it records,
    differentiates and hybridizes like any layer."""

    def forward(self, x: Any, *args: Any) -> Any:
        if hasattr(x, "asnumpy"):
            from ..... import np as xp
        else:
            xp, x = _onp, _onp.asarray(x)
        return append_return(self._apply(x, xp), *args)

    def _apply(self, x: Any, xp: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define _apply(x, xp)")


class HostTransform(HybridBlock):
    """A transform of image data on the host (numpy): geometric and random ones, which draw
    from numpy's global generator per call. `hybridize()` is accepted and compiles nothing:
    these run per item in the data pipeline, where a compiled program would freeze the draws."""

    def forward(self, x: Any, *args: Any) -> Any:
        is_tg = hasattr(x, "asnumpy")
        out = self._apply(x.asnumpy() if is_tg else _onp.asarray(x))
        if is_tg:
            from ..... import np

            out = np.array(out, dtype=out.dtype, device=x.device)
        return append_return(out, *args)

    def _call_forward(self, args: tuple, kwargs: dict) -> Any:
        return self.forward(*args, **kwargs)

    def _apply(self, img: _onp.ndarray) -> _onp.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must define _apply(img)")


def hwc(img: _onp.ndarray, who: str, channels: tuple = ()) -> tuple[int, int, int]:
    """(height, width, channels) of an HWC image or NHWC batch, checked."""
    if img.ndim not in (3, 4):
        raise ValueError(f"{who}: expected an HWC image or NHWC batch, got shape {img.shape}")
    h, w, c = img.shape[-3:]
    if channels and c not in channels:
        raise ValueError(f"{who}: expected {' or '.join(map(str, channels))} channels (last axis), got shape "
                         f"{img.shape}")
    return h, w, c
