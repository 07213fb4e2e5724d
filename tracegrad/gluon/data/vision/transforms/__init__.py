"""`gluon.data.vision.transforms` (MXNet 2.x): image transforms as Blocks.

Images are HWC (or NHWC batches), uint8 or float, until `ToTensor` makes them CHW float32 in
[0, 1]; sizes are MXNet's `(width, height)`. Each transform is a HybridBlock called as
`t(x, *args)` (extra arguments, such as a label, pass through), on numpy arrays (what
datasets hold) or tracegrad arrays. `Cast`, `ToTensor` and `Normalize` are array operations
that hybridize and differentiate; the geometric and random ones run on the host (see
`HostTransform`). Resizing is OpenCV's bilinear, bit for bit on uint8 single images.
"""

from __future__ import annotations

import random
from typing import Any, Sequence

from ....block import Block, HybridBlock
from ....nn import HybridSequential, Sequential
from .base import ArrayTransform, HostTransform, append_return
from .color import (RandomBrightness, RandomColorJitter, RandomContrast, RandomGray, RandomHue,  # noqa: F401
                    RandomLighting, RandomSaturation)
from .image import (CenterCrop, CropResize, Normalize, RandomCrop, RandomFlipLeftRight,  # noqa: F401
                    RandomFlipTopBottom, RandomResizedCrop, Resize, ToTensor)
from .resize import resize_bilinear  # noqa: F401

__all__ = ["Compose", "HybridCompose", "Cast", "RandomApply", "HybridRandomApply", "ToTensor", "Normalize",
           "Resize", "CenterCrop", "RandomCrop", "CropResize", "RandomResizedCrop", "RandomFlipLeftRight",
           "RandomFlipTopBottom", "RandomBrightness", "RandomContrast", "RandomSaturation", "RandomHue",
           "RandomColorJitter", "RandomLighting", "RandomGray", "resize_bilinear"]


class Compose(Sequential):
    """The transforms applied in order (a Sequential of them)."""

    def __init__(self, transforms: Sequence[Any]) -> None:
        super().__init__()
        for t in transforms:
            if not isinstance(t, Block):
                t = _Callable(t)
            self.add(t)


class HybridCompose(HybridSequential):
    """Compose of HybridBlocks only (MXNet hybridizes it at construction)."""

    def __init__(self, transforms: Sequence[Any]) -> None:
        super().__init__()
        for t in transforms:
            if not isinstance(t, HybridBlock):
                raise ValueError(f"{t} is not a HybridBlock, try use `Compose` instead")
            self.add(t)
        self.hybridize()


class _Callable(Block):
    """A plain function inside Compose."""

    def __init__(self, fn: Any) -> None:
        super().__init__()
        self._fn = fn

    def forward(self, *args: Any) -> Any:
        return self._fn(*args)


class Cast(ArrayTransform):
    """Every argument cast to `dtype` (float32 by default)."""

    def __init__(self, dtype: Any = "float32") -> None:
        super().__init__()
        self._dtype = dtype

    def forward(self, *args: Any) -> Any:
        out = tuple(super(Cast, self).forward(a) for a in args)
        return out[0] if len(out) == 1 else out

    def _apply(self, x: Any, xp: Any) -> Any:
        return x.astype(self._dtype)


class RandomApply(Sequential):
    """`transforms` applied with probability `p` (drawn with Python's `random`, as MXNet)."""

    def __init__(self, transforms: Any, p: float = 0.5) -> None:
        super().__init__()
        self.transforms = transforms
        self.p = p

    def forward(self, x: Any, *args: Any) -> Any:
        if self.p < random.random():
            return append_return(x, *args)
        return append_return(self.transforms(x), *args)


class HybridRandomApply(RandomApply):
    """RandomApply of a HybridBlock."""

    def __init__(self, transforms: Any, p: float = 0.5) -> None:
        if not isinstance(transforms, HybridBlock):
            raise ValueError(f"HybridRandomApply: {transforms} is not a HybridBlock, use RandomApply")
        super().__init__(transforms, p)


# the bases, for users' own transforms
__all__ += ["ArrayTransform", "HostTransform"]
