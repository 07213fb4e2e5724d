"""Strided views: how the CUDA renderer reads layout ops without copying.

A `View` names a flat device buffer (a slot of the launch plan) and an affine map from an
index of the view's shape to a position in that buffer (element strides and an offset), or
a scalar literal broadcast to a shape. Broadcasts, transposes, basic slices and reshapes of
contiguous views are views; kernels read them with the index arithmetic they imply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ...ir.core import Lit


def c_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    out, acc = [], 1
    for n in reversed(shape):
        out.append(acc)
        acc *= n
    return tuple(reversed(out))


def size_of(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@dataclass(frozen=True)
class View:
    """`slot[offset + sum(index * strides)]` over `shape`, or the literal `lit` everywhere."""

    slot: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    offset: int = 0
    lit: Optional[Lit] = None

    @staticmethod
    def whole(slot: int, shape: tuple[int, ...]) -> "View":
        return View(slot, tuple(shape), c_strides(tuple(shape)), 0)

    @staticmethod
    def of_lit(lit: Lit, shape: tuple[int, ...]) -> "View":
        return View(-1, tuple(shape), (0,) * len(shape), 0, lit)

    @property
    def is_lit(self) -> bool:
        return self.lit is not None

    def is_contiguous(self) -> bool:
        """Whether the view is a C-ordered run of its buffer (dims of size 1 ignored)."""
        if self.is_lit:
            return False
        want = c_strides(self.shape)
        return all(n == 1 or s == w for n, s, w in zip(self.shape, self.strides, want))

    def is_whole(self, slot_size: int) -> bool:
        return self.is_contiguous() and self.offset == 0 and size_of(self.shape) == slot_size

    # ---- layout ops -----------------------------------------------------------------
    def broadcast_to(self, shape: tuple[int, ...]) -> "View":
        shape = tuple(shape)
        if self.is_lit:
            return View.of_lit(self.lit, shape)
        lead = len(shape) - len(self.shape)
        strides = [0] * lead
        for n_in, s, n_out in zip(self.shape, self.strides, shape[lead:]):
            strides.append(s if n_in == n_out else 0)
        return View(self.slot, shape, tuple(strides), self.offset)

    def transpose(self, perm: tuple[int, ...]) -> "View":
        shape = tuple(self.shape[p] for p in perm)
        if self.is_lit:
            return View.of_lit(self.lit, shape)
        return View(self.slot, shape, tuple(self.strides[p] for p in perm), self.offset)

    def slice(self, index: tuple) -> "View":
        """Basic indexing: ints, (start, stop, step) triples (None allowed), None (new axis)."""
        shape, strides, off, dim = [], [], self.offset, 0
        for item in index:
            if item is None:
                shape.append(1)
                strides.append(0)
                continue
            n, s = self.shape[dim], self.strides[dim]
            if isinstance(item, tuple):
                start, stop, step = slice(*item).indices(n)
                shape.append(len(range(start, stop, step)))
                strides.append(s * step)
                off += start * s
            else:
                i = int(item)
                off += (i + n if i < 0 else i) * s
            dim += 1
        shape.extend(self.shape[dim:])
        strides.extend(self.strides[dim:])
        if self.is_lit:
            return View.of_lit(self.lit, tuple(shape))
        return View(self.slot, tuple(shape), tuple(strides), off)

    def reshape(self, shape: tuple[int, ...]) -> Optional["View"]:
        """The reshaped view, or None when the view is not contiguous (a copy is needed)."""
        if self.is_lit:
            return View.of_lit(self.lit, tuple(shape))
        if not self.is_contiguous():
            return None
        return View(self.slot, tuple(shape), c_strides(tuple(shape)), self.offset)
