"""Adam, AdamW and LAMB (bias correction from each parameter's own update count)."""

from __future__ import annotations

from typing import Any, Optional

from .. import np
from .optimizer import Optimizer, register


def _moments(opt: Any, g: Any, state: Any) -> tuple:
    mean, var = state
    m = opt.beta1 * mean + (1.0 - opt.beta1) * g
    v = opt.beta2 * var + (1.0 - opt.beta2) * np.square(g)
    mean[...] = m
    var[...] = v
    return m, v


def _zeros2(weight: Any) -> tuple:
    return (np.zeros(weight.shape, dtype=weight.dtype, device=weight.device),
            np.zeros(weight.shape, dtype=weight.dtype, device=weight.device))


@register
class Adam(Optimizer):
    """Adam with wd added to the gradient; `lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t)`,
    `w -= lr_t * m / (sqrt(v) + epsilon)`."""

    _default_lr = 0.001

    def __init__(self, learning_rate: Optional[float] = None, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, lazy_update: bool = False, **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1, self.beta2, self.epsilon, self.lazy_update = beta1, beta2, epsilon, lazy_update

    def create_state(self, index: int, weight: Any) -> Any:
        return _zeros2(weight)

    def _rule(self, w: Any, g: Any, state: Any, lr: Any, wd: float, t: Any) -> None:
        lr_t = self.hoist(lr * np.sqrt(1.0 - self.beta2 ** t) / (1.0 - self.beta1 ** t), w)
        if wd:
            g = g + wd * w
        m, v = _moments(self, g, state)
        w[...] = w - lr_t * (m / (np.sqrt(v) + self.epsilon))


@register
class AdamW(Optimizer):
    """Adam with decoupled weight decay (MXNet's fused adamw_update):
    `w -= lr_t * (m / (sqrt(v) + epsilon) + wd * w)`, lr_t bias-corrected if `correct_bias`."""

    _default_lr = 0.001

    def __init__(self, learning_rate: Optional[float] = None, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-6, correct_bias: bool = True, **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1, self.beta2, self.epsilon, self.correct_bias = beta1, beta2, epsilon, correct_bias

    def create_state(self, index: int, weight: Any) -> Any:
        return _zeros2(weight)

    def _rule(self, w: Any, g: Any, state: Any, lr: Any, wd: float, t: Any) -> None:
        if self.correct_bias:
            lr = lr * np.sqrt(1.0 - self.beta2 ** t) / (1.0 - self.beta1 ** t)
        lr_t = self.hoist(lr, w)
        m, v = _moments(self, g, state)
        d = m / (np.sqrt(v) + self.epsilon)
        if wd:
            d = d + wd * w
        w[...] = w - lr_t * d


@register
class LAMB(Optimizer):
    """LAMB: the Adam direction plus `wd * w`, scaled by the trust ratio
    `clip(||w||, lower_bound, upper_bound) / ||direction||` (1 where either norm is 0)."""

    _default_lr = 0.001

    def __init__(self, learning_rate: Optional[float] = None, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-6, lower_bound: Optional[float] = None, upper_bound: Optional[float] = None,
                 bias_correction: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("aggregate_num", 4)
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.lower_bound, self.upper_bound, self.bias_correction = lower_bound, upper_bound, bias_correction

    def create_state(self, index: int, weight: Any) -> Any:
        return _zeros2(weight)

    def _rule(self, w: Any, g: Any, state: Any, lr: Any, wd: float, t: Any) -> None:
        m, v = _moments(self, g, state)
        if self.bias_correction:
            m = m / self.hoist(1.0 - self.beta1 ** t, w)
            v = v / self.hoist(1.0 - self.beta2 ** t, w)
        d = m / (np.sqrt(v) + self.epsilon)
        if wd:
            d = d + wd * w
        r1 = np.sqrt(np.sum(np.square(w)))
        if self.lower_bound is not None:
            r1 = np.maximum(r1, self.lower_bound)
        if self.upper_bound is not None:
            r1 = np.minimum(r1, self.upper_bound)
        r2 = np.sqrt(np.sum(np.square(d)))
        ok = (r1 > 0) & (r2 > 0)
        ratio = np.where(ok, r1 / np.where(ok, r2, 1.0), 1.0)
        w[...] = w - self.hoist(lr * ratio, w) * d
