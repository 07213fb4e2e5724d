"""Array creation (float32 by default, as MXNet) and the random module."""

from __future__ import annotations

from typing import Any, Optional

import numpy

from ..tracer.array import Array
from ._core import array, as_array, default_float, to_dtype, wrap

__all__ = [
    "array", "asarray", "zeros", "ones", "full", "empty", "zeros_like", "ones_like",
    "full_like", "empty_like", "arange", "linspace", "eye",
]  # fmt: skip


def _shape(shape: Any) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, numpy.integer)) else tuple(int(s) for s in shape)


def _dt(dtype: Any) -> numpy.dtype:
    return to_dtype(dtype) or default_float()


def asarray(obj: Any, dtype: Any = None) -> Array:
    if isinstance(obj, Array) and (dtype is None or to_dtype(dtype) == obj.dtype):
        return obj
    return array(obj, dtype=dtype)


def zeros(shape: Any, dtype: Any = None, device: Any = None, ctx: Any = None) -> Array:
    return wrap(numpy.zeros(_shape(shape), _dt(dtype)))


def ones(shape: Any, dtype: Any = None, device: Any = None, ctx: Any = None) -> Array:
    return wrap(numpy.ones(_shape(shape), _dt(dtype)))


def full(shape: Any, fill_value: Any, dtype: Any = None, device: Any = None, ctx: Any = None) -> Array:
    if isinstance(fill_value, Array):
        fill_value = fill_value._value()
    return wrap(numpy.full(_shape(shape), fill_value, _dt(dtype)))


def empty(shape: Any, dtype: Any = None, device: Any = None, ctx: Any = None) -> Array:
    return wrap(numpy.empty(_shape(shape), _dt(dtype)))


def _like(a: Any, dtype: Any) -> tuple[tuple[int, ...], numpy.dtype]:
    x = as_array(a)
    return x.shape, to_dtype(dtype) or x.dtype


def zeros_like(a: Any, dtype: Any = None) -> Array:
    return wrap(numpy.zeros(*_like(a, dtype)))


def ones_like(a: Any, dtype: Any = None) -> Array:
    return wrap(numpy.ones(*_like(a, dtype)))


def full_like(a: Any, fill_value: Any, dtype: Any = None) -> Array:
    shape, dt = _like(a, dtype)
    return wrap(numpy.full(shape, fill_value, dt))


def empty_like(a: Any, dtype: Any = None) -> Array:
    return wrap(numpy.empty(*_like(a, dtype)))


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None, device: Any = None) -> Array:
    """Evenly spaced values; float32 by default even for integer bounds (MXNet)."""
    return wrap(numpy.arange(start, stop, step).astype(_dt(dtype)) if stop is not None else numpy.arange(start).astype(_dt(dtype)))


def linspace(start: float, stop: float, num: int = 50, endpoint: bool = True, dtype: Any = None) -> Array:
    return wrap(numpy.linspace(start, stop, num, endpoint=endpoint).astype(_dt(dtype)))


def eye(N: int, M: Optional[int] = None, k: int = 0, dtype: Any = None) -> Array:
    return wrap(numpy.eye(N, M, k).astype(_dt(dtype)))
