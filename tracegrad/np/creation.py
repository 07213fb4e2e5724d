"""Array creation (float32 by default, as MXNet) and the random module."""

from __future__ import annotations

from typing import Any, Optional

import numpy

from .. import device as _device
from ..tracer.array import Array
from ._core import array as _array, as_array, default_float, shape_arg as _shape, to_dtype, wrap

__all__ = [
    "array", "asarray", "zeros", "ones", "full", "empty", "zeros_like", "ones_like",
    "full_like", "empty_like", "arange", "linspace", "eye",
]  # fmt: skip


def _dt(dtype: Any) -> numpy.dtype:
    return to_dtype(dtype) or default_float()


def _placed(a: Array, device: Any, ctx: Any = None) -> Array:
    """`a` moved to `device` (or MXNet's `ctx`); the current device when neither is given."""
    dev = device if device is not None else ctx
    if dev is None:
        dev = _device.current_device()
        if not dev.is_gpu:
            return a
    return _device.place(a, dev)


def array(obj: Any, dtype: Any = None, copy: bool = True, device: Any = None, ctx: Any = None) -> Array:
    """A new array from `obj` (float32 by default, as MXNet) on `device` (the current one)."""
    if isinstance(obj, Array) and device is None and ctx is None:
        device = _device.array_device(obj)  # an array's copy stays on its device
    return _placed(_array(obj, dtype=dtype, copy=copy), device, ctx)


def asarray(obj: Any, dtype: Any = None, device: Any = None) -> Array:
    if isinstance(obj, Array) and (dtype is None or to_dtype(dtype) == obj.dtype):
        return obj if device is None else _device.place(obj, device)
    return array(obj, dtype=dtype, device=device)


def zeros(shape: Any, dtype: Any = None, device: Any = None, ctx: Any = None) -> Array:
    return _placed(wrap(numpy.zeros(_shape(shape, "zeros"), _dt(dtype))), device, ctx)


def ones(shape: Any, dtype: Any = None, device: Any = None, ctx: Any = None) -> Array:
    return _placed(wrap(numpy.ones(_shape(shape, "ones"), _dt(dtype))), device, ctx)


def full(shape: Any, fill_value: Any, dtype: Any = None, device: Any = None, ctx: Any = None) -> Array:
    if isinstance(fill_value, Array):
        fill_value = fill_value._value()
    return _placed(wrap(numpy.full(_shape(shape, "full"), fill_value, _dt(dtype))), device, ctx)


def empty(shape: Any, dtype: Any = None, device: Any = None, ctx: Any = None) -> Array:
    return _placed(wrap(numpy.empty(_shape(shape, "empty"), _dt(dtype))), device, ctx)


def _like(a: Any, dtype: Any) -> tuple[tuple[int, ...], numpy.dtype]:
    x = as_array(a)
    return x.shape, to_dtype(dtype) or x.dtype


def _like_device(a: Any, device: Any) -> Any:
    """numpy's rule: a *_like array goes to `a`'s device unless `device` says otherwise."""
    return device if device is not None else (_device.array_device(a) if isinstance(a, Array) else None)


def zeros_like(a: Any, dtype: Any = None, device: Any = None) -> Array:
    return _placed(wrap(numpy.zeros(*_like(a, dtype))), _like_device(a, device))


def ones_like(a: Any, dtype: Any = None, device: Any = None) -> Array:
    return _placed(wrap(numpy.ones(*_like(a, dtype))), _like_device(a, device))


def full_like(a: Any, fill_value: Any, dtype: Any = None, device: Any = None) -> Array:
    shape, dt = _like(a, dtype)
    return _placed(wrap(numpy.full(shape, fill_value, dt)), _like_device(a, device))


def empty_like(a: Any, dtype: Any = None, device: Any = None) -> Array:
    return _placed(wrap(numpy.empty(*_like(a, dtype))), _like_device(a, device))


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None, device: Any = None,
           ctx: Any = None) -> Array:
    """Evenly spaced values; float32 by default even for integer bounds (MXNet)."""
    v = numpy.arange(start, stop, step) if stop is not None else numpy.arange(start)
    return _placed(wrap(v.astype(_dt(dtype))), device, ctx)


def linspace(start: float, stop: float, num: int = 50, endpoint: bool = True, dtype: Any = None,
             device: Any = None, ctx: Any = None) -> Array:
    return _placed(wrap(numpy.linspace(start, stop, num, endpoint=endpoint).astype(_dt(dtype))), device, ctx)


def eye(N: int, M: Optional[int] = None, k: int = 0, dtype: Any = None, device: Any = None,
        ctx: Any = None) -> Array:
    return _placed(wrap(numpy.eye(N, M, k).astype(_dt(dtype))), device, ctx)
