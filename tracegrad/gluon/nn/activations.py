"""Activation layers: Activation, LeakyReLU, PReLU, ELU, SELU, GELU, SiLU, Swish."""

from __future__ import annotations

import math
from typing import Any

from ... import initializer
from ... import np as _np
from ... import npx as _npx
from ..block import HybridBlock
from ..parameter import Parameter

__all__ = ["Activation", "LeakyReLU", "PReLU", "ELU", "SELU", "GELU", "SiLU", "Swish"]


def _neg_part(x: Any) -> Any:
    """min(x, 0), written so its gradient is 1 below zero and 0 above."""
    return _np.negative(_npx.relu(_np.negative(x)))


class Activation(HybridBlock):
    """npx.activation: 'relu', 'sigmoid', 'tanh', 'softrelu' (log(1 + e^x)), 'softsign'."""

    def __init__(self, activation: str, **kwargs: Any) -> None:
        self._act_type = activation
        super().__init__(**kwargs)

    def _alias(self) -> str:
        return self._act_type if isinstance(self._act_type, str) else "activation"

    def forward(self, x: Any) -> Any:
        if self._act_type == "softrelu":  # log(1 + e^x) without overflow for large x
            return _npx.relu(x) + _np.log1p(_np.exp(_np.negative(_np.abs(x))))
        return _npx.activation(x, act_type=self._act_type)

    def _repr_args(self) -> str:
        return str(self._act_type)


class LeakyReLU(HybridBlock):
    """x for x > 0, alpha * x otherwise."""

    def __init__(self, alpha: float, **kwargs: Any) -> None:
        if alpha < 0:
            raise ValueError(f"LeakyReLU: slope coefficient alpha={alpha} must be no less than 0")
        super().__init__(**kwargs)
        self._alpha = float(alpha)

    def forward(self, x: Any) -> Any:
        return _npx.relu(x) + self._alpha * _neg_part(x)

    def _repr_args(self) -> str:
        return str(self._alpha)


class PReLU(HybridBlock):
    """LeakyReLU with a learned slope per channel (axis 1; one shared slope by default)."""

    def __init__(self, alpha_initializer: Any = None, in_channels: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._in_channels = int(in_channels)
        init = initializer.Constant(0.25) if alpha_initializer is None else alpha_initializer
        self.alpha = Parameter("alpha", shape=(in_channels,), init=init)

    def forward(self, x: Any) -> Any:
        a = self.alpha.data()
        if self._in_channels > 1 and x.ndim > 1:
            a = _np.reshape(a, (1, self._in_channels) + (1,) * (x.ndim - 2))
        return _npx.relu(x) + a * _neg_part(x)


class ELU(HybridBlock):
    """x for x > 0, alpha * (e^x - 1) otherwise."""

    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._alpha = float(alpha)

    def forward(self, x: Any) -> Any:
        return _npx.relu(x) + self._alpha * _np.expm1(_neg_part(x))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


class SELU(HybridBlock):
    """scale * ELU(x, alpha) with the self-normalising constants."""

    def forward(self, x: Any) -> Any:
        return _SELU_SCALE * (_npx.relu(x) + _SELU_ALPHA * _np.expm1(_neg_part(x)))


class GELU(HybridBlock):
    """x * Phi(x): approximation='erf' (0.5 x (1 + erf(x / sqrt 2))) or 'tanh'
    (0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))))."""

    def __init__(self, approximation: str = "erf", **kwargs: Any) -> None:
        if approximation not in ("erf", "tanh"):
            raise ValueError(f"GELU: approximation must be 'erf' or 'tanh', got {approximation!r}")
        super().__init__(**kwargs)
        self._approximation = approximation

    def forward(self, x: Any) -> Any:
        if self._approximation == "tanh":
            inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)
            return 0.5 * x * (1.0 + _np.tanh(inner))
        return 0.5 * x * (1.0 + _npx.erf(x * (1.0 / math.sqrt(2.0))))


class SiLU(HybridBlock):
    """x * sigmoid(x)."""

    def forward(self, x: Any) -> Any:
        return x * _npx.sigmoid(x)


class Swish(HybridBlock):
    """x * sigmoid(beta * x)."""

    def __init__(self, beta: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._beta = float(beta)

    def forward(self, x: Any) -> Any:
        return x * _npx.sigmoid(self._beta * x)
