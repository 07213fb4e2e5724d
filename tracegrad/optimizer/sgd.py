"""SGD and NAG (MXNet 2.x semantics: weight decay is added to the gradient)."""

from __future__ import annotations

from typing import Any, Optional

from .. import np
from .optimizer import Optimizer, register


@register
class SGD(Optimizer):
    """`mom = momentum * mom - lr * (grad + wd * w); w += mom` (no state when momentum is 0).
    `learning_rate` defaults to 0.1 (or the lr_scheduler's base_lr when one is given)."""

    _default_lr = 0.1

    def __init__(self, learning_rate: Optional[float] = None, momentum: float = 0.0, lazy_update: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.momentum = momentum
        self.lazy_update = lazy_update

    def create_state(self, index: int, weight: Any) -> Any:
        if self.momentum == 0.0:
            return None
        return np.zeros(weight.shape, dtype=weight.dtype, device=weight.device)

    def _rule(self, w: Any, g: Any, mom: Any, lr: Any, wd: float, t: Any) -> None:
        lr = self.hoist(lr, w)
        if wd:
            g = g + wd * w
        if mom is None:
            w[...] = w - lr * g
        else:
            m = self.momentum * mom - lr * g
            mom[...] = m
            w[...] = w + self._step(m, lr, g)

    def _step(self, m: Any, lr: Any, g: Any) -> Any:
        """The change of the weight, given the new momentum `m`."""
        return m


@register
class NAG(SGD):
    """Nesterov momentum: `mom = momentum * mom - lr * g; w += momentum * mom - lr * g`
    with `g = grad + wd * w`."""

    def _step(self, m: Any, lr: Any, g: Any) -> Any:
        return self.momentum * m - lr * g
