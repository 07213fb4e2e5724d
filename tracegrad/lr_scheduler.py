"""Learning-rate schedules (MXNet 2.x `mx.lr_scheduler`), with optional warmup.

Each built-in schedule is a pure function of the update count, written once over a numpy-like
namespace: `sched(num_update)` evaluates it in Python (numpy float64), and the optimizers
evaluate the same expression on a count array inside their fused update program, so a
changing learning rate neither recompiles nor needs Python in a replayed `tracegrad.jit` step.

Unlike MXNet's stateful schedulers (which mutate `base_lr` as they go), these give the same
value for the same count in any call order, and `base_lr` set by an optimizer's
`learning_rate` is the one every part of the schedule (warmup end included) uses.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as _onp

__all__ = ["LRScheduler", "FactorScheduler", "MultiFactorScheduler", "PolyScheduler", "CosineScheduler"]


class LRScheduler:
    """Base class: `base_lr`, and a warmup of `warmup_steps` updates from `warmup_begin_lr`
    ('linear' ramp or 'constant'). Subclasses define `_value(num_update, xp)`; a user subclass
    may instead override `__call__(num_update)` (it then runs in Python on every step)."""

    def __init__(self, base_lr: float = 0.01, warmup_steps: int = 0, warmup_begin_lr: float = 0,
                 warmup_mode: str = "linear") -> None:
        if not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(f"{type(self).__name__}: warmup_steps must be an int >= 0, got {warmup_steps!r}")
        if warmup_begin_lr > base_lr:
            raise ValueError(f"{type(self).__name__}: base_lr ({base_lr}) must be at least warmup_begin_lr "
                             f"({warmup_begin_lr})")
        if warmup_mode not in ("linear", "constant"):
            raise ValueError(f"{type(self).__name__}: warmup_mode must be 'linear' or 'constant', got {warmup_mode!r}")
        self.base_lr = base_lr
        self.warmup_steps = warmup_steps
        self.warmup_begin_lr = warmup_begin_lr
        self.warmup_mode = warmup_mode

    @property
    def warmup_final_lr(self) -> float:
        return self.base_lr

    def get_warmup_lr(self, num_update: Any, xp: Any = _onp) -> Any:
        """The learning rate during warmup (num_update < warmup_steps)."""
        if self.warmup_mode == "constant":
            return num_update * 0.0 + self.warmup_begin_lr
        return self.warmup_begin_lr + (self.base_lr - self.warmup_begin_lr) * num_update / self.warmup_steps

    def _value(self, num_update: Any, xp: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __call__(num_update)")

    def expression(self, num_update: Any, xp: Any) -> Any:
        """The learning rate at `num_update` (a float64 scalar or array) using namespace `xp`."""
        main = self._value(num_update, xp)
        if self.warmup_steps > 0:
            return xp.where(num_update < self.warmup_steps, self.get_warmup_lr(num_update, xp), main)
        return main

    @property
    def traceable(self) -> bool:
        """True when the schedule can be evaluated inside a compiled program (not overridden)."""
        return type(self).__call__ is LRScheduler.__call__ and type(self)._value is not LRScheduler._value

    def config(self) -> tuple:
        """Everything the schedule depends on, for a compiled program's key."""
        return (type(self).__name__,) + tuple(sorted((k, _hashable(v)) for k, v in vars(self).items()))

    def __call__(self, num_update: int) -> float:
        return float(self.expression(_onp.float64(num_update), _onp))


def _hashable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


class FactorScheduler(LRScheduler):
    """`base_lr * factor ** k` after every `step` updates (k = ceil(num_update/step) - 1),
    never below `stop_factor_lr`."""

    def __init__(self, step: int, factor: float = 1, stop_factor_lr: float = 1e-8, base_lr: float = 0.01,
                 warmup_steps: int = 0, warmup_begin_lr: float = 0, warmup_mode: str = "linear") -> None:
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        if step < 1:
            raise ValueError(f"FactorScheduler: step must be >= 1, got {step}")
        if factor > 1.0:
            raise ValueError(f"FactorScheduler: factor must be <= 1 to make lr decrease, got {factor}")
        self.step = step
        self.factor = factor
        self.stop_factor_lr = stop_factor_lr

    def _value(self, num_update: Any, xp: Any) -> Any:
        k = xp.maximum(xp.floor((num_update - 1) / self.step), 0.0)
        return xp.maximum(self.base_lr * self.factor ** k, self.stop_factor_lr)


class MultiFactorScheduler(LRScheduler):
    """`base_lr * factor ** k` where k counts the steps in `step` (increasing) already passed."""

    def __init__(self, step: Sequence[int], factor: float = 1, base_lr: float = 0.01, warmup_steps: int = 0,
                 warmup_begin_lr: float = 0, warmup_mode: str = "linear") -> None:
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        step = list(step)
        if not step:
            raise ValueError("MultiFactorScheduler: step must be a non-empty list of update counts")
        for i, s in enumerate(step):
            if s < 1 or (i and s <= step[i - 1]):
                raise ValueError(f"MultiFactorScheduler: step must be an increasing list of ints >= 1, got {step}")
        if factor > 1.0:
            raise ValueError(f"MultiFactorScheduler: factor must be <= 1 to make lr decrease, got {factor}")
        self.step = step
        self.factor = factor

    def _value(self, num_update: Any, xp: Any) -> Any:
        k = 0.0
        for s in self.step:
            k = k + xp.where(num_update > s, 1.0, 0.0)
        return self.base_lr * self.factor ** k


class _DecayToFinal(LRScheduler):
    """Decay from `base_lr` to `final_lr` over `max_update` updates, shaped by `_shape(frac)`."""

    def __init__(self, max_update: int, base_lr: float, final_lr: float, warmup_steps: int,
                 warmup_begin_lr: float, warmup_mode: str) -> None:
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        name = type(self).__name__
        if not isinstance(max_update, int) or max_update < 1:
            raise ValueError(f"{name}: max_update must be an int >= 1, got {max_update!r}")
        if max_update <= warmup_steps:
            raise ValueError(f"{name}: max_update ({max_update}) must exceed warmup_steps ({warmup_steps})")
        self.max_update = max_update
        self.final_lr = final_lr

    @property
    def max_steps(self) -> int:
        return self.max_update - self.warmup_steps

    def _value(self, num_update: Any, xp: Any) -> Any:
        frac = (xp.minimum(num_update, float(self.max_update)) - self.warmup_steps) / self.max_steps
        return self.final_lr + (self.base_lr - self.final_lr) * self._shape(frac, xp)

    def _shape(self, frac: Any, xp: Any) -> Any:
        raise NotImplementedError


class PolyScheduler(_DecayToFinal):
    """Polynomial decay from `base_lr` to `final_lr` over `max_update` updates (power `pwr`)."""

    def __init__(self, max_update: int, base_lr: float = 0.01, pwr: float = 2, final_lr: float = 0,
                 warmup_steps: int = 0, warmup_begin_lr: float = 0, warmup_mode: str = "linear") -> None:
        super().__init__(max_update, base_lr, final_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        self.power = pwr

    def _shape(self, frac: Any, xp: Any) -> Any:
        return xp.maximum(1.0 - frac, 0.0) ** self.power


class CosineScheduler(_DecayToFinal):
    """Cosine decay from `base_lr` to `final_lr` over `max_update` updates."""

    def __init__(self, max_update: int, base_lr: float = 0.01, final_lr: float = 0, warmup_steps: int = 0,
                 warmup_begin_lr: float = 0, warmup_mode: str = "linear") -> None:
        super().__init__(max_update, base_lr, final_lr, warmup_steps, warmup_begin_lr, warmup_mode)

    def _shape(self, frac: Any, xp: Any) -> Any:
        return (1.0 + xp.cos(math.pi * frac)) / 2.0
