"""Normalization layers: BatchNorm, LayerNorm, GroupNorm, InstanceNorm.

BatchNorm's running statistics move in training mode (inside `autograd.record()` or
`autograd.train_mode()`), at the forward: `running = momentum * running + (1 - momentum)
* batch`. MXNet 2.0.0b1 applies the same update during the backward of a recorded
training forward; a training step (forward, backward) moves them once either way."""

from __future__ import annotations

from typing import Any

from ... import npx as _npx
from ... import np as _np
from ..block import HybridBlock
from ..parameter import Parameter

__all__ = ["BatchNorm", "LayerNorm", "GroupNorm", "InstanceNorm", "SyncBatchNorm"]


class _Norm(HybridBlock):
    """gamma/beta (per channel of `axis`), shapes deferred to the first input."""

    def __init__(self, axis: int, center: bool, scale: bool, beta_initializer: Any, gamma_initializer: Any,
                 in_channels: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._axis, self._center, self._scale = axis, center, scale
        self._in_channels = int(in_channels)
        self.gamma = Parameter("gamma", grad_req="write" if scale else "null", shape=(in_channels,),
                               init=gamma_initializer, allow_deferred_init=True, differentiable=scale)
        self.beta = Parameter("beta", grad_req="write" if center else "null", shape=(in_channels,),
                              init=beta_initializer, allow_deferred_init=True, differentiable=center)

    def _channels(self, x: Any) -> int:
        return int(x.shape[self._axis])

    def infer_shape(self, x: Any, *args: Any) -> None:
        c = self._channels(x)
        for p in self._reg_params.values():
            p.shape = (c,)

    def _repr_args(self) -> str:
        c = self.gamma.shape[0] if self.gamma.shape and self.gamma.shape[0] > 0 else -1
        where = f"num_groups={self._num_groups}" if hasattr(self, "_num_groups") else f"axis={self._axis}"
        return f"eps={self._epsilon}, {where}, center={self._center}, scale={self._scale}, in_channels={c}"


class BatchNorm(_Norm):
    """Batch normalization over `axis` (channels): batch statistics in training mode (updating
    running_mean/running_var with `momentum`), running ones in predict mode or with
    use_global_stats. scale=False fixes gamma at 1 (MXNet's fix_gamma).

    The running statistics move at each training-mode forward (inside `autograd.record()` or
    `autograd.train_mode()`), once per training step whether or not a backward follows;
    MXNet 2.0.0b1 moves them during the backward of a recorded forward instead, so a
    train_mode() forward without recording, or a recorded forward never backpropagated,
    updates them here and not there."""

    def __init__(self, axis: int = 1, momentum: float = 0.9, epsilon: float = 1e-5, center: bool = True,
                 scale: bool = True, use_global_stats: bool = False, beta_initializer: Any = "zeros",
                 gamma_initializer: Any = "ones", running_mean_initializer: Any = "zeros",
                 running_variance_initializer: Any = "ones", in_channels: int = 0, **kwargs: Any) -> None:
        super().__init__(axis, center, scale, beta_initializer, gamma_initializer, in_channels, **kwargs)
        self._momentum, self._epsilon = float(momentum), float(epsilon)
        self._use_global_stats = bool(use_global_stats)
        self.running_mean = Parameter("running_mean", grad_req="null", shape=(in_channels,),
                                      init=running_mean_initializer, allow_deferred_init=True, differentiable=False)
        self.running_var = Parameter("running_var", grad_req="null", shape=(in_channels,),
                                     init=running_variance_initializer, allow_deferred_init=True,
                                     differentiable=False)

    def forward(self, x: Any) -> Any:
        return _npx.batch_norm(x, self.gamma.data(), self.beta.data(), self.running_mean.data(),
                               self.running_var.data(), eps=self._epsilon, momentum=self._momentum,
                               fix_gamma=not self._scale, use_global_stats=self._use_global_stats, axis=self._axis)

    def _repr_args(self) -> str:
        return (f"axis={self._axis}, eps={self._epsilon}, momentum={self._momentum}, fix_gamma={not self._scale}, "
                f"use_global_stats={self._use_global_stats}, in_channels={self.gamma.shape[0] if self.gamma.shape[0] > 0 else -1}")


class SyncBatchNorm(BatchNorm):
    """BatchNorm (one process: nothing to synchronise; across processes use tracegrad.distributed)."""

    def __init__(self, in_channels: int = 0, num_devices: Any = None, momentum: float = 0.9, epsilon: float = 1e-5,
                 center: bool = True, scale: bool = True, use_global_stats: bool = False, **kwargs: Any) -> None:
        super().__init__(1, momentum, epsilon, center, scale, use_global_stats, in_channels=in_channels, **kwargs)


class LayerNorm(_Norm):
    """Normalize each sample over `axis` (the last by default), then gamma * . + beta."""

    def __init__(self, axis: int = -1, epsilon: float = 1e-5, center: bool = True, scale: bool = True,
                 beta_initializer: Any = "zeros", gamma_initializer: Any = "ones", in_channels: int = 0,
                 **kwargs: Any) -> None:
        super().__init__(axis, center, scale, beta_initializer, gamma_initializer, in_channels, **kwargs)
        self._epsilon = float(epsilon)

    def forward(self, x: Any) -> Any:
        return _npx.layer_norm(x, self.gamma.data(), self.beta.data(), axis=self._axis, eps=self._epsilon)


class GroupNorm(_Norm):
    """Normalize each of num_groups channel groups (axis 1) per sample, then per-channel gamma, beta."""

    def __init__(self, num_groups: int = 1, epsilon: float = 1e-5, center: bool = True, scale: bool = True,
                 beta_initializer: Any = "zeros", gamma_initializer: Any = "ones", in_channels: int = 0,
                 **kwargs: Any) -> None:
        super().__init__(1, center, scale, beta_initializer, gamma_initializer, in_channels, **kwargs)
        self._num_groups, self._epsilon = int(num_groups), float(epsilon)

    def forward(self, x: Any) -> Any:
        return _npx.group_norm(x, self.gamma.data(), self.beta.data(), num_groups=self._num_groups,
                               eps=self._epsilon)


class InstanceNorm(_Norm):
    """Normalize each (sample, channel) over the spatial axes; scale=False by default, as MXNet."""

    def __init__(self, axis: int = 1, epsilon: float = 1e-5, center: bool = True, scale: bool = False,
                 beta_initializer: Any = "zeros", gamma_initializer: Any = "ones", in_channels: int = 0,
                 **kwargs: Any) -> None:
        super().__init__(axis, center, scale, beta_initializer, gamma_initializer, in_channels, **kwargs)
        self._epsilon = float(epsilon)

    def forward(self, x: Any) -> Any:
        if self._axis in (1, 1 - x.ndim):
            return _npx.instance_norm(x, self.gamma.data(), self.beta.data(), eps=self._epsilon)
        x = _np.swapaxes(x, 1, self._axis)
        out = _npx.instance_norm(x, self.gamma.data(), self.beta.data(), eps=self._epsilon)
        return _np.swapaxes(out, 1, self._axis)
