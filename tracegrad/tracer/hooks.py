"""The hooks a capture (the jit, jit/capture.py) declares to the tracer, and random recipes.

While a capture is active (`STATE.capture` holds it), every op is recorded lazily and
reported to it, every sync point becomes a guard, and writes, gradient buffers, random
draws and host reads are reported. Code reports through `hooks()`, which is never None:
outside a capture it is `NO_CAPTURE`, whose hooks do nothing. A hook that takes over an
operation (`on_copy`, `on_detach`, `on_inplace`) returns its result, or None to let the
caller do it as usual; `on_setitem`'s default does the write itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy

from .state import STATE


@dataclass(eq=False)
class RandomRecipe:
    """How to draw a random sample again: `sample(**params)` makes the same kind of array
    from the generator `source`, advancing its stream as the first draw did."""

    op: str  # what is drawn: "uniform", "normal", "dropout", ...
    sample: Callable[..., Any]  # draws one sample (an array or a numpy array)
    params: dict = field(default_factory=dict)  # its arguments, as the caller gave them
    shape: Optional[tuple] = None
    dtype: Optional[numpy.dtype] = None
    source: Any = None  # the generator whose stream the draw advances

    def draw(self, params: Optional[dict] = None) -> Any:
        """A new sample's data (numpy or device array), with `params` in place of the
        recorded ones when given."""
        out = self.sample(**(self.params if params is None else params))
        return getattr(out, "_data", out)


class CaptureHooks:
    """What the tracer tells a capture. Every hook does nothing here; a capture overrides
    the ones it needs (see the module docstring for the take-over convention)."""

    quiet = 0  # >0 while the capture itself reads values (not a Python read)

    def fail(self, reason: str) -> None:
        """Something a replay cannot reproduce happened (named by `reason`)."""

    def on_new(self, a: Any) -> None:
        """An array was created (np.zeros, a wrapped numpy value, an eager result...)."""

    def on_apply(self, prod: Any, outs: list) -> None:
        """An op was recorded: its producer and its (lazy) outputs."""

    def on_scalar_lit(self, value: Any, dtype: numpy.dtype) -> Any:
        """A literal of a tagged Python scalar: the Lit to use, or None for a plain one."""
        return None

    def on_guard(self, g: Any) -> None:
        """A sync point: Python read `g.array` and saw `g.expect`."""

    def on_host_read(self, x: Any) -> None:
        """Python reads an array's value outside a sync point."""

    def on_attach_grad(self, x: Any) -> None:
        """attach_grad was called on `x`."""

    def on_grad_write(self, owner: Any, target: Any) -> None:
        """backward writes the lazy `target` into `owner.grad`."""

    def on_persistent(self, a: Any) -> None:
        """`a` is state that outlives the step (an optimizer's moments)."""

    def on_random(self, recipe: RandomRecipe) -> None:
        """A random draw: the next array created is its sample."""

    def on_detach(self, x: Any) -> Any:
        return None

    def on_copy(self, x: Any) -> Any:
        return None

    def on_inplace(self, arr: Any, fn: Callable, other: Any) -> Any:
        return None

    def on_setitem(self, x: Any, key: Any, value: Any, eager: Callable) -> None:
        """`x[key] = value`; `eager` does it as usual."""
        eager(x, key, value)


NO_CAPTURE = CaptureHooks()


def hooks() -> CaptureHooks:
    """The active capture's hooks, or `NO_CAPTURE`."""
    cap = STATE.capture
    return NO_CAPTURE if cap is None else cap


def capturing() -> bool:
    """Whether a capture is recording on this thread."""
    return STATE.capture is not None
