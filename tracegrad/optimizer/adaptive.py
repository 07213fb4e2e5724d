"""RMSProp, AdaGrad and AdaDelta (per-element adaptive step sizes; wd added to the gradient)."""

from __future__ import annotations

from typing import Any, Optional

from .. import np
from .optimizer import Optimizer, register


def _zeros(weight: Any) -> Any:
    return np.zeros(weight.shape, dtype=weight.dtype, device=weight.device)


@register
class RMSProp(Optimizer):
    """Tieleman & Hinton (`var = rho*var + (1-rho)*g**2; w -= lr * g / (sqrt(var) + epsilon)`)
    or, `centered`, Graves's version with momentum; `clip_weights` bounds the weights."""

    _default_lr = 0.001

    def __init__(self, learning_rate: Optional[float] = None, rho: float = 0.9, momentum: float = 0.9,
                 epsilon: float = 1e-8, centered: bool = False, clip_weights: Optional[float] = None,
                 gamma1: Any = None, gamma2: Any = None, **kwargs: Any) -> None:
        if gamma1 is not None or gamma2 is not None:
            raise TypeError("RMSProp: gamma1/gamma2 are MXNet 1.x names; use rho and momentum")
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon = rho, momentum, epsilon
        self.centered, self.clip_weights = centered, clip_weights

    def create_state(self, index: int, weight: Any) -> Any:
        if self.centered:
            return (_zeros(weight), _zeros(weight), _zeros(weight))
        return _zeros(weight)

    def _rule(self, w: Any, g: Any, state: Any, lr: Any, wd: float, t: Any) -> None:
        lr = self.hoist(lr, w)
        if wd:
            g = g + wd * w
        rho = self.rho
        if not self.centered:
            var = rho * state + (1.0 - rho) * np.square(g)
            state[...] = var
            new = w - lr * g / (np.sqrt(var) + self.epsilon)
        else:
            mean_s, var_s, mom_s = state
            mean = rho * mean_s + (1.0 - rho) * g
            var = rho * var_s + (1.0 - rho) * np.square(g)
            mom = self.momentum * mom_s - lr * g / np.sqrt(var - np.square(mean) + self.epsilon)
            mean_s[...] = mean
            var_s[...] = var
            mom_s[...] = mom
            new = w + mom
        if self.clip_weights:
            new = np.clip(new, -self.clip_weights, self.clip_weights)
        w[...] = new


@register
class AdaGrad(Optimizer):
    """`hist += g**2; w -= lr * g / (sqrt(hist) + epsilon)`."""

    _default_lr = 0.01

    def __init__(self, learning_rate: Optional[float] = None, epsilon: float = 1e-6, eps: Any = None,
                 **kwargs: Any) -> None:
        if eps is not None:
            raise TypeError("AdaGrad: 'eps' is an MXNet 1.x name; use epsilon")
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.epsilon = epsilon

    def create_state(self, index: int, weight: Any) -> Any:
        return _zeros(weight)

    def _rule(self, w: Any, g: Any, hist: Any, lr: Any, wd: float, t: Any) -> None:
        if wd:
            g = g + wd * w
        h = hist + np.square(g)
        hist[...] = h
        w[...] = w - self.hoist(lr, w) * g / (np.sqrt(h) + self.epsilon)


@register
class AdaDelta(Optimizer):
    """`acc_g = rho*acc_g + (1-rho)*g**2; d = sqrt(acc_d + eps) / sqrt(acc_g + eps) * g;
    acc_d = rho*acc_d + (1-rho)*d**2; w -= lr * d` (learning_rate defaults to 1.0)."""

    _default_lr = 1.0

    def __init__(self, learning_rate: Optional[float] = None, rho: float = 0.9, epsilon: float = 1e-6,
                 **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho, self.epsilon = rho, epsilon

    def create_state(self, index: int, weight: Any) -> Any:
        return (_zeros(weight), _zeros(weight))

    def _rule(self, w: Any, g: Any, state: Any, lr: Any, wd: float, t: Any) -> None:
        if wd:
            g = g + wd * w
        acc_g, acc_d = state
        ag = self.rho * acc_g + (1.0 - self.rho) * np.square(g)
        d = np.sqrt(acc_d + self.epsilon) / np.sqrt(ag + self.epsilon) * g
        ad = self.rho * acc_d + (1.0 - self.rho) * np.square(d)
        acc_g[...] = ag
        acc_d[...] = ad
        w[...] = w - self.hoist(lr, w) * d
