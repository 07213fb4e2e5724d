"""Random sampling (float32 by default). Samples are constants: they carry no graph."""

from __future__ import annotations

import sys
from typing import Any, Optional

import numpy

from ..tracer.array import Array
from ..tracer.hooks import RandomRecipe, hooks
from ._core import as_array, default_float, shape_arg, to_dtype, wrap

__all__ = ["seed", "uniform", "normal", "randint", "randn", "rand", "choice", "shuffle", "multinomial"]


class _LazyRandomState:
    """The module's generator, made on first use (`import tracegrad` does not import
    numpy.random: ~10 ms of a warm start)."""

    _state: Optional[numpy.random.RandomState] = None

    def get(self) -> numpy.random.RandomState:
        if self._state is None:
            _LazyRandomState._state = numpy.random.RandomState()
        return self._state  # type: ignore[return-value]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


_rng: Any = _LazyRandomState()


def _note_capture(fn: Any, params: dict, shape: Any = None, dtype: Any = None) -> None:
    """Hand a capture the recipe of the draw `fn(**params)` about to be made."""
    hooks().on_random(RandomRecipe(fn.__name__.lstrip("_"), fn, params, shape, dtype, _rng.get()))


def seed(seed: int, device: Any = "all") -> None:
    """Make later samples reproducible."""
    _rng.seed(int(seed))


def _size(size: Any) -> Optional[tuple]:
    if size is None:
        return None
    return shape_arg(size, f"random.{sys._getframe(1).f_code.co_name}")  # the caller names the op


def _out(v: Any, dtype: Any) -> Array:
    return wrap(numpy.asarray(v, dtype=to_dtype(dtype) or default_float()))


def uniform(low: Any = 0.0, high: Any = 1.0, size: Any = None, dtype: Any = None, device: Any = None, out: Any = None) -> Array:
    """Samples from [low, high); `size=None` gives a 0-d array."""
    _note_capture(uniform, dict(low=low, high=high, size=size, dtype=dtype, device=device, out=out), size, dtype)
    lo = as_array(low)._value() if isinstance(low, Array) else low
    hi = as_array(high)._value() if isinstance(high, Array) else high
    return _placed(_out(_rng.uniform(lo, hi, _size(size)), dtype), device)


def normal(loc: Any = 0.0, scale: Any = 1.0, size: Any = None, dtype: Any = None, device: Any = None, out: Any = None) -> Array:
    """Gaussian samples; with attached array loc/scale the sample is reparameterised."""
    _note_capture(normal, dict(loc=loc, scale=scale, size=size, dtype=dtype, device=device, out=out), size, dtype)
    if isinstance(loc, Array) or isinstance(scale, Array):
        from .math import add, multiply

        shape = _size(size) or numpy.broadcast_shapes(numpy.shape(loc), numpy.shape(scale))
        eps = _out(_rng.standard_normal(shape), dtype)
        if device is None:  # issue 5: the noise goes where the parameters live
            device = next((a.device for a in (loc, scale) if isinstance(a, Array) and a.device.is_gpu), None)
        return add(loc, multiply(scale, _placed(eps, device)))
    return _placed(_out(_rng.normal(loc, scale, _size(size)), dtype), device)


def randn(*shape: int) -> Array:
    _note_capture(_randn, dict(shape=shape), shape, None)
    return _out(_rng.standard_normal(shape or None), None)


def rand(*shape: int) -> Array:
    _note_capture(_rand, dict(shape=shape), shape, None)
    return _out(_rng.random_sample(shape or None), None)


def randint(low: int, high: Optional[int] = None, size: Any = None, dtype: Any = None, device: Any = None) -> Array:
    _note_capture(randint, dict(low=low, high=high, size=size, dtype=dtype, device=device), size, dtype)
    return _placed(wrap(numpy.asarray(_rng.randint(low, high, _size(size)), dtype=to_dtype(dtype) or numpy.int32)), device)


def choice(a: Any, size: Any = None, replace: bool = True, p: Any = None) -> Array:
    _note_capture(choice, dict(a=a, size=size, replace=replace, p=p), size, None)
    a = a._value() if isinstance(a, Array) else a
    p = p._value() if isinstance(p, Array) else p
    v = _rng.choice(a, _size(size), replace, p)
    return wrap(numpy.asarray(v, dtype=numpy.int64 if numpy.asarray(v).dtype.kind in "iu" else default_float()))


def multinomial(n: int, pvals: Any, size: Any = None) -> Array:
    """Counts (int64) of `n` draws over len(pvals) outcomes; shape size + (len(pvals),)."""
    _note_capture(multinomial, dict(n=n, pvals=pvals, size=size), size, None)
    p = pvals._value() if isinstance(pvals, Array) else pvals
    p = numpy.asarray(p, dtype=numpy.float64)
    if p.ndim != 1 or p.size == 0 or (p < 0).any() or p[:-1].sum() > 1.0 + 1e-12:
        from ..errors import ShapeError
        from ._core import at

        raise ShapeError(f"multinomial: pvals must be a 1-D probability vector, got {p.tolist()}" + at())
    return wrap(numpy.asarray(_rng.multinomial(int(n), p, _size(size)), dtype=numpy.int64))


def shuffle(x: Array) -> None:
    _note_capture(shuffle, dict(x=x))
    x._prepare_write()
    _rng.shuffle(x._data)


def _randn(shape: tuple) -> Array:
    return randn(*shape)


def _rand(shape: tuple) -> Array:
    return rand(*shape)


def _rng_state() -> numpy.random.RandomState:
    return _rng.get()


def _placed(a: Array, device: Any) -> Array:
    """Samples are drawn on the host (the same numbers on every device), then placed on
    `device` (default: the current device) (issue 5)."""
    from .creation import _placed as place

    return place(a, device)
