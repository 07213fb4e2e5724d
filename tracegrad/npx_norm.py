"""npx's normalizations (issue 9): batch_norm, layer_norm, group_norm, instance_norm.

They are compositions of table ops (mean, centred square, rsqrt, scale and shift), so
they compile into the fused kernels around them and their gradients of every order come
from the table. batch_norm's running statistics are updated in place when it runs in
training mode (`autograd.is_training()`, not `use_global_stats`): at the forward call, once
per call; a lazy update is computed at the next sync point (usually the backward) in the same
program as what that computes (tracer.lazy.write_later), not in a sync point of its own. MXNet 2.0.0b1 updates them during the backward pass instead; the values written
are the same (momentum * running + (1 - momentum) * batch statistic, biased variance).
"""

from __future__ import annotations

from typing import Any, Union

import numpy

from . import np as _np
from .errors import ShapeError
from .np._core import as_array, at
from .npx_nn import float_array
from .tracer.array import Array
from .tracer.lazy import write_later
from .tracer.state import STATE


def _moments(x: Array, axes: tuple[int, ...]) -> tuple[Array, Array]:
    """Mean and biased variance over `axes` (keepdims), with their true gradients."""
    mean = _np.mean(x, axis=axes, keepdims=True)
    c = _np.subtract(x, mean)
    return mean, _np.mean(_np.multiply(c, c), axis=axes, keepdims=True)


def _param(p: Any, n: int, what: str, op: str) -> Array:
    a = as_array(p)
    if a.shape != (n,):
        raise ShapeError(f"{op}: {what} of shape {tuple(a.shape)} {a.dtype} must be ({n},)" + at())
    return a


def _along(a: Array, axis: int, ndim: int) -> Array:
    """A per-channel vector shaped to broadcast along `axis` of an ndim-array."""
    shape = [1] * ndim
    shape[axis] = a.shape[0]
    return _np.reshape(a, tuple(shape))


def _write(dst: Any, value: Array) -> None:
    if isinstance(dst, Array):
        if not write_later(dst, value):  # no sync point in the middle of a recorded forward
            dst[...] = value
    elif isinstance(dst, numpy.ndarray):
        dst[...] = value.asnumpy()


def batch_norm(x: Any, gamma: Any, beta: Any, running_mean: Any, running_var: Any, eps: float = 1e-3,
               momentum: float = 0.9, fix_gamma: bool = True, use_global_stats: bool = False,
               output_mean_var: bool = False, axis: int = 1, cudnn_off: bool = False,
               min_calib_range: Any = None, max_calib_range: Any = None, **kwargs: Any) -> Union[Array, list]:
    """(x - mean) / sqrt(var + eps) * gamma + beta per channel (`axis`).

    Training mode uses the batch statistics and updates the running ones in place;
    predict mode (or use_global_stats) uses the running ones. fix_gamma uses gamma = 1
    (gamma then gets a zero gradient). output_mean_var also returns the mean and the
    inverse standard deviation used, per channel (MXNet's outputs)."""
    a = float_array(x)
    ax = axis % a.ndim if a.ndim else 0
    c = a.shape[ax]
    g = _param(gamma, c, "gamma", "batch_norm")
    b = _param(beta, c, "beta", "batch_norm")
    rm = _param(running_mean, c, "running_mean", "batch_norm")
    rv = _param(running_var, c, "running_var", "batch_norm")
    axes = tuple(i for i in range(a.ndim) if i != ax)
    if STATE.training and not use_global_stats:
        mean, var = _moments(a, axes)
        m1, v1 = _np.reshape(mean, (c,)), _np.reshape(var, (c,))
        from . import autograd

        with autograd.pause(train_mode=True):
            new_m = _np.add(_np.multiply(rm, momentum), _np.multiply(_np.stop_gradient(m1), 1.0 - momentum))
            new_v = _np.add(_np.multiply(rv, momentum), _np.multiply(_np.stop_gradient(v1), 1.0 - momentum))
        _write(running_mean, new_m)
        _write(running_var, new_v)
    else:
        m1, v1 = rm, rv
        mean, var = _along(rm, ax, a.ndim), _along(rv, ax, a.ndim)
    inv = _np.divide(1.0, _np.sqrt(_np.add(var, eps)))
    scale = inv if fix_gamma else _np.multiply(inv, _along(g, ax, a.ndim))
    if fix_gamma:  # gamma stays in the graph with a zero gradient, as in MXNet
        scale = _np.add(scale, _np.multiply(_along(g, ax, a.ndim), 0.0))
    out = _np.add(_np.multiply(_np.subtract(a, mean), scale), _along(b, ax, a.ndim))
    if output_mean_var:
        return [out, _np.reshape(m1, (c,)), _np.reshape(_np.divide(1.0, _np.sqrt(_np.add(v1, eps))), (c,))]
    return out


def layer_norm(data: Any = None, gamma: Any = None, beta: Any = None, axis: int = -1, eps: float = 1e-5,
               output_mean_var: bool = False) -> Union[Array, list]:
    """Normalize over `axis` (mean 0, variance 1), then gamma * . + beta along it.
    output_mean_var also returns the mean and the standard deviation (keepdims)."""
    a = float_array(data)
    axis = -1 if axis is None else axis
    eps = 1e-5 if eps is None else eps
    ax = axis % a.ndim
    n = a.shape[ax]
    g = _param(gamma, n, "gamma", "layer_norm")
    b = _param(beta, n, "beta", "layer_norm")
    mean, var = _moments(a, (ax,))
    std = _np.sqrt(_np.add(var, eps))
    out = _np.add(_np.multiply(_np.divide(_np.subtract(a, mean), std), _along(g, ax, a.ndim)), _along(b, ax, a.ndim))
    return [out, mean, std] if output_mean_var else out


def group_norm(data: Any, gamma: Any, beta: Any, num_groups: int = 1, eps: float = 1e-3,
               output_mean_var: bool = False) -> Union[Array, list]:
    """Normalize each of num_groups channel groups of data (N, C, ...) per sample, then a
    per-channel gamma (C,) and beta (C,). output_mean_var adds the mean and std (N, groups)."""
    a = float_array(data)
    if a.ndim < 2 or a.shape[1] % num_groups:
        raise ShapeError(f"group_norm: {a.ndim}-D data {tuple(a.shape)} needs channels (axis 1) divisible "
                         f"by num_groups={num_groups}" + at())
    n, c = a.shape[:2]
    g = _param(gamma, c, "gamma", "group_norm")
    b = _param(beta, c, "beta", "group_norm")
    grouped = _np.reshape(a, (n, num_groups, -1))
    mean, var = _moments(grouped, (2,))
    std = _np.sqrt(_np.add(var, eps))
    norm = _np.reshape(_np.divide(_np.subtract(grouped, mean), std), a.shape)
    out = _np.add(_np.multiply(norm, _along(g, 1, a.ndim)), _along(b, 1, a.ndim))
    if output_mean_var:
        return [out, _np.reshape(mean, (n, num_groups)), _np.reshape(std, (n, num_groups))]
    return out


def instance_norm(data: Any = None, gamma: Any = None, beta: Any = None, eps: float = 1e-3, **kwargs: Any) -> Array:
    """Normalize each (sample, channel) of data (N, C, *S) over its spatial axes, then gamma (C,), beta (C,)."""
    a = float_array(data)
    if a.ndim < 3:
        raise ShapeError(f"instance_norm: data {tuple(a.shape)} {a.dtype} needs 3+ dims (N, C, *spatial)" + at())
    c = a.shape[1]
    g = _param(gamma, c, "gamma", "instance_norm")
    b = _param(beta, c, "beta", "instance_norm")
    mean, var = _moments(a, tuple(range(2, a.ndim)))
    out = _np.divide(_np.subtract(a, mean), _np.sqrt(_np.add(var, eps)))
    return _np.add(_np.multiply(out, _along(g, 1, a.ndim)), _along(b, 1, a.ndim))
