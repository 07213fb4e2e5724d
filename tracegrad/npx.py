"""The numpy extension (MXNet 2.x `mxnet.npx`): neural-network ops and mode switches."""

from __future__ import annotations

from typing import Any, Optional

import numpy

from . import device as _device
from . import np as _np
from .ir import dtypes
from .ir.ops import Op
from .np._core import as_array, cast, default_float, to_dtype
from .np.sorting import topk  # noqa: F401  (numpy/linalg ops, issue 9)
from .tracer.array import Array
from .tracer.lazy import apply
from .tracer.hooks import RandomRecipe, hooks
from .tracer.state import STATE

__all__ = [
    "set_np", "reset_np", "is_np_array", "is_np_shape", "relu", "sigmoid", "activation",
    "softmax", "log_softmax", "pick", "one_hot", "batch_dot", "stop_gradient", "dropout",
    "cpu", "gpu", "num_gpus", "current_device", "Device", "waitall", "random", "seed",
    "topk",  # numpy/linalg ops (issue 9)
]  # fmt: skip
# nn ops (issue 9)
__all__ += [
    "convolution", "deconvolution", "pooling", "fully_connected", "embedding", "sequence_mask",
    "batch_norm", "layer_norm", "group_norm", "instance_norm", "leaky_relu", "masked_softmax",
    "masked_log_softmax", "erf", "silu",
]  # fmt: skip


def set_np(shape: bool = True, array: bool = True, dtype: bool = False) -> None:
    """Accepted for MXNet compatibility; `dtype=True` makes float64 the default float."""
    STATE.default_float = "float64" if dtype else "float32"


def reset_np() -> None:
    STATE.default_float = "float32"


def is_np_array() -> bool:
    return True


def is_np_shape() -> bool:
    return True


# devices (issue 5): tracegrad/device.py
cpu = _device.cpu
gpu = _device.gpu
num_gpus = _device.num_gpus
current_device = _device.current_device
Device = _device.Device


def waitall() -> None:
    """MXNet's `waitall`: wait for queued GPU work (CPU work is synchronous)."""
    _device.synchronize()


def _float(x: Any) -> Array:
    x = as_array(x)
    return x if dtypes.is_float(x.dtype) else cast(x, default_float())


def relu(data: Any) -> Array:
    """max(x, 0) with gradient 0 at x = 0."""
    return apply(Op.RELU, [_float(data)], {})[0]


def sigmoid(data: Any) -> Array:
    return apply(Op.SIGMOID, [_float(data)], {})[0]


def _softrelu(x: Array) -> Array:
    """log(1 + exp(x)) without overflow: x itself above 40, where log1p(exp(x)) - x is
    below float64's resolution (log1p(exp(x)) gave inf from x ~ 89 in float32, and
    log_sigmoid = log(sigmoid) gave 0 and -inf where the true values are -exp(-x) and x).
    Clamping the unused branch's input keeps its gradient finite (and NaN stays NaN)."""
    big = _np.greater(x, 40.0)
    return _np.where(big, x, _np.log1p(_np.exp(_np.where(big, 40.0, x))))


def activation(data: Any, act_type: str = "relu", **kwargs: Any) -> Array:
    x = _float(data)
    if act_type == "relu":
        return relu(x)
    if act_type == "sigmoid":
        return sigmoid(x)
    if act_type == "tanh":
        return _np.tanh(x)
    if act_type == "softrelu":
        return _softrelu(x)
    if act_type == "softsign":
        return _np.divide(x, _np.add(_np.abs(x), 1.0))
    if act_type == "log_sigmoid":
        return _np.negative(_softrelu(_np.negative(x)))
    if act_type == "mish":
        return _np.multiply(x, _np.tanh(_softrelu(x)))
    if act_type in ("silu", "swish"):  # an extension: Gluon's SiLU / Swish(beta=1)
        return silu(x)
    raise ValueError(
        f"activation: unknown act_type {act_type!r}; use relu, sigmoid, tanh, softrelu, "
        "softsign, log_sigmoid, mish or silu"
    )


def _scaled(data: Any, temperature: Optional[float]) -> Array:
    x = _float(data)
    return x if temperature in (None, 1.0) else _np.divide(x, float(temperature))


def softmax(data: Any, length: Any = None, axis: int = -1, temperature: Optional[float] = None,
            use_length: bool = False, dtype: Any = None) -> Array:
    """exp(x) / sum(exp(x)) along `axis`, computed stably; with use_length, over the first
    `length` positions of each row only (zeros after)."""
    if use_length and length is not None:
        out = softmax_length(data, length, axis, temperature, False, "softmax")
        return cast(out, to_dtype(dtype)) if dtype is not None else out
    x = _scaled(data, temperature)
    shifted = _np.subtract(x, _np.stop_gradient(_np.max(x, axis=axis, keepdims=True)))
    e = _np.exp(shifted)
    out = _np.divide(e, _np.sum(e, axis=axis, keepdims=True))
    return cast(out, to_dtype(dtype)) if dtype is not None else out


def log_softmax(data: Any, axis: int = -1, length: Any = None, temperature: Optional[float] = None,
                use_length: bool = False, dtype: Any = None) -> Array:
    """x - log(sum(exp(x))) along `axis`, computed stably; with use_length, over the first
    `length` positions of each row only (-inf after; MXNet 2.0.0b1 rejects the length)."""
    if use_length and length is not None:
        out = softmax_length(data, length, axis, temperature, True, "log_softmax")
        return cast(out, to_dtype(dtype)) if dtype is not None else out
    x = _scaled(data, temperature)
    shifted = _np.subtract(x, _np.stop_gradient(_np.max(x, axis=axis, keepdims=True)))
    out = _np.subtract(shifted, _np.log(_np.sum(_np.exp(shifted), axis=axis, keepdims=True)))
    return cast(out, to_dtype(dtype)) if dtype is not None else out


def pick(data: Any, index: Any, axis: int = -1, mode: str = "clip", keepdims: bool = False) -> Array:
    """data[..., index[...], ...] along `axis`; float indices are truncated, out-of-range clipped."""
    x = as_array(data)
    ax = axis % x.ndim
    idx = as_array(index)
    n = x.shape[ax]
    if mode == "clip":
        idx = _np.clip(cast(idx, numpy.dtype("int64")) if idx.dtype.kind == "f" else idx, 0, n - 1)
    elif mode == "wrap":
        idx = apply(Op.CAST, [_np.subtract(idx, _np.multiply(_np.floor(_np.divide(idx, float(n))), float(n)))],
                    {"dtype": numpy.dtype("int64")})[0]
    else:
        raise ValueError(f"pick: mode must be 'clip' or 'wrap', got {mode!r}")
    idx = cast(idx, numpy.dtype("int64"))
    out_shape = x.shape[:ax] + x.shape[ax + 1 :]
    if idx.shape != out_shape:
        idx = _np.reshape(idx, out_shape)
    grids = numpy.indices(out_shape, sparse=True)
    key: list[Any] = []
    for d in range(x.ndim):
        if d == ax:
            key.append(idx)
        else:
            g = grids[d if d < ax else d - 1]
            key.append(g.astype(numpy.int64))
    out = _np.indexing.getitem(x, tuple(key))
    return _np.expand_dims(out, ax) if keepdims else out


def one_hot(data: Any, depth: int, on_value: float = 1.0, off_value: float = 0.0, dtype: Any = "float32") -> Array:
    """A constant mask: 1 at each label's position (float32 by default)."""
    idx = as_array(data)
    hits = _np.equal(_np.expand_dims(cast(idx, numpy.dtype("int64")), -1), numpy.arange(depth, dtype=numpy.int64))
    dt = to_dtype(dtype)
    return _np.where(hits, numpy.asarray(on_value, dt), numpy.asarray(off_value, dt))


def stop_gradient(data: Any) -> Array:
    """Identity forward; no gradient flows through it."""
    return _np.stop_gradient(data)


def dropout(data: Any, p: float = 0.5, mode: str = "training", axes: Any = None, **kw: Any) -> Array:
    """In training mode, zero elements with probability p and scale by 1/(1-p); else identity."""
    x = _float(data)
    if not (STATE.training or mode == "always") or p == 0:
        return x
    shape = list(x.shape)
    for a in axes or ():
        shape[a] = 1
    keep = _dropout_mask(tuple(shape), p, x._dtype)
    rng = _np.random._rng_state()
    hooks().on_random(RandomRecipe("dropout", _dropout_mask, {"shape": tuple(shape), "p": p, "dtype": x._dtype},
                                   tuple(shape), x._dtype, rng))
    return _np.multiply(x, keep)


def _dropout_mask(shape: tuple, p: float, dtype: numpy.dtype) -> numpy.ndarray:
    """Dropout's scaled keep mask: 1/(1-p) with probability 1-p, else 0."""
    keep = (_np.random._rng_state().uniform(size=shape) >= p).astype(dtype) / (1.0 - p)
    return keep.astype(dtype)


# ---- nn ops (issue 9): tracegrad/npx_nn.py, npx_norm.py, npx_act.py ----------------------
from .npx_act import erf, leaky_relu, masked_log_softmax, masked_softmax, silu, softmax_length  # noqa: E402
from .npx_nn import (  # noqa: E402
    batch_dot, convolution, deconvolution, embedding, fully_connected, pooling, sequence_mask,
)
from .npx_norm import batch_norm, group_norm, instance_norm, layer_norm  # noqa: E402


class _Random:
    """npx.random: seed for reproducible sampling."""

    @staticmethod
    def seed(seed: int, device: Any = "all") -> None:
        _np.random.seed(seed)


random = _Random()
seed = _np.random.seed


# ---- gluon-core (issue 10): array files MXNet 2.x reads and writes ----------------------
def save(file: Any, arr: Any) -> None:
    """One array as .npy (MXNet 2.x `npx.save`)."""
    from . import serialization

    serialization.save(file, arr)


def savez(file: Any, *args: Any, **kwds: Any) -> None:
    """Several arrays as a zip of .npy (positional ones named arr_0, arr_1, ...)."""
    from . import serialization

    serialization.savez(file, *args, **kwds)


def load(file: Any) -> Any:
    """An array (.npy), a dict (.npz / parameter file) or an MXNet 1.x NDArray list's content."""
    from . import serialization

    return serialization.load(file)


__all__ += ["save", "savez", "load"]
