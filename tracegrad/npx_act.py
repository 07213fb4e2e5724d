"""npx's activations and softmax family (issue 9): leaky_relu's act_types, softmax with
lengths, masked_softmax, masked_log_softmax. All are compositions of table ops (they fuse
into the kernels around them; gradients of every order come from the table)."""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy

from . import np as _np
from .errors import DTypeError, ShapeError
from .ir.ops import Op
from .np._core import as_array, at, cast, to_dtype
from .npx_nn import float_array
from .tracer.array import Array
from .tracer.lazy import apply
from .tracer.hooks import RandomRecipe, hooks
from .tracer.state import STATE

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_LAMBDA = 1.0507009873554804934193349852946


def erf(x: Any) -> Array:
    return apply(Op.ERF, [float_array(x)], {})[0]


def _negative_part(x: Array, neg: Array) -> Array:
    """x where x > 0, else `neg`."""
    return _np.where(_np.greater(x, 0.0), x, neg)


def _expm1_neg(x: Array) -> Array:
    """expm1 of min(x, 0): the untaken branch of elu/selu stays finite, so its zero
    cotangent does not turn into NaN (0 * inf) for large positive x."""
    return _np.expm1(_np.minimum(x, 0.0))


def leaky_relu(data: Any = None, gamma: Any = None, act_type: str = "leaky", slope: float = 0.25,
               lower_bound: float = 0.125, upper_bound: float = 0.334, **kwargs: Any) -> Array:
    """MXNet's LeakyReLU family: leaky (slope), prelu (learned gamma along axis 1), elu
    (slope as alpha), selu, gelu (exact, with erf), rrelu (random slope in
    [lower_bound, upper_bound] in training mode, their mean in predict mode)."""
    x = float_array(data)
    if act_type == "leaky":
        return _negative_part(x, _np.multiply(x, slope))
    if act_type == "prelu":
        g = as_array(gamma)
        if g.ndim != 1 or (g.shape[0] != 1 and (x.ndim < 2 or g.shape[0] != x.shape[1])):
            raise ShapeError(f"leaky_relu(prelu): gamma {tuple(g.shape)} must be (1,) or (channels,) for data "
                             f"{tuple(x.shape)}" + at())
        if x.ndim >= 2:
            g = _np.reshape(g, (1, -1) + (1,) * (x.ndim - 2))
        return _negative_part(x, _np.multiply(x, g))
    if act_type == "elu":
        return _negative_part(x, _np.multiply(_expm1_neg(x), slope))
    if act_type == "selu":
        return _np.multiply(_negative_part(x, _np.multiply(_expm1_neg(x), _SELU_ALPHA)), _SELU_LAMBDA)
    if act_type == "gelu":
        return _np.multiply(_np.multiply(x, 0.5), _np.add(erf(_np.multiply(x, 1.0 / math.sqrt(2.0))), 1.0))
    if act_type == "rrelu":
        if STATE.training:
            slopes = _rrelu_slopes(lower_bound, upper_bound, tuple(x.shape), x.dtype, x.device)
            return _negative_part(x, _np.multiply(x, slopes))
        return _negative_part(x, _np.multiply(x, (lower_bound + upper_bound) / 2.0))
    raise ValueError(
        f"leaky_relu: unknown act_type {act_type!r}; use leaky, prelu, elu, selu, gelu or rrelu" + at()
    )


def _rrelu_slopes(lower: float, upper: float, shape: tuple, dtype: Any, device: Any) -> Array:
    """rrelu's random negative slopes, uniform in [lower, upper)."""
    rng = _np.random._rng_state()
    u = rng.uniform(lower, upper, size=shape)
    params = {"lower": lower, "upper": upper, "shape": shape, "dtype": dtype, "device": device}
    hooks().on_random(RandomRecipe("rrelu", _rrelu_slopes, params, shape, dtype, rng))
    return _np.array(u.astype(dtype), dtype=dtype, device=device)


def silu(data: Any) -> Array:
    """x * sigmoid(x) (Gluon's SiLU; Swish with beta = 1)."""
    x = float_array(data)
    return _np.multiply(x, apply(Op.SIGMOID, [x], {})[0])


# ---- softmax with masks -------------------------------------------------------------------
def _scaled(data: Any, temperature: Optional[float]) -> Array:
    x = float_array(data)
    return x if temperature in (None, 1.0) else _np.divide(x, float(temperature))


def _length_mask(x: Array, length: Any, axis: int, op: str) -> Array:
    """True where the position along `axis` is below the row's length."""
    ax = axis % x.ndim
    ln = as_array(length)
    want = x.shape[:ax] + x.shape[ax + 1:]
    if ln.shape != want:
        raise ShapeError(f"{op}: length {tuple(ln.shape)} must have the data's shape {tuple(x.shape)} "
                         f"without axis {axis}: {want}" + at())
    if ln.dtype.kind not in "iu":
        raise DTypeError(f"{op}: length must be an integer array (as in MXNet), got {ln.dtype}" + at())
    pos = _np.arange(x.shape[ax], dtype="float64", device=x.device)
    pos = _np.reshape(pos, (-1,) + (1,) * (x.ndim - 1 - ax))
    return _np.less(pos, _np.expand_dims(cast(ln, to_dtype("float64")), ax))


def _masked(x: Array, mask: Array, axis: int, log: bool) -> Array:
    mask = _np.broadcast_to(mask, x.shape)
    low = _np.full((), numpy.finfo(x.dtype).min, dtype=x.dtype, device=x.device)
    xm = _np.where(mask, x, _np.broadcast_to(low, x.shape))
    m = _np.stop_gradient(_np.max(xm, axis=axis, keepdims=True))
    shifted = _np.subtract(xm, m)
    zero = _np.zeros_like(x)
    e = _np.where(mask, _np.exp(_np.where(mask, shifted, zero)), zero)
    s = _np.sum(e, axis=axis, keepdims=True)
    s = _np.where(_np.equal(s, 0.0), _np.ones(s.shape, dtype=x.dtype, device=x.device), s)
    if not log:
        return _np.divide(e, s)
    ninf = _np.broadcast_to(_np.full((), -numpy.inf, dtype=x.dtype, device=x.device), x.shape)
    return _np.where(mask, _np.subtract(shifted, _np.log(s)), ninf)


def _bool_mask(mask: Any) -> Array:
    m = as_array(mask)
    return m if m.dtype == numpy.dtype(bool) else _np.not_equal(m, 0)


def masked_softmax(data: Any, mask: Any, axis: int = -1, temperature: float = 1.0, normalize: bool = True) -> Array:
    """softmax over the positions where mask is true (nonzero), zeros where it is false; a
    row with no true position gives zeros. (MXNet 2.0.0b1 documents this but rejects
    non-bool masks; any dtype works here.)"""
    x = _scaled(data, temperature)
    return _masked(x, _bool_mask(mask), axis, log=False)


def masked_log_softmax(data: Any, mask: Any, axis: int = -1, temperature: float = 1.0,
                       normalize: bool = True) -> Array:
    """log of masked_softmax: -inf where mask is false."""
    x = _scaled(data, temperature)
    return _masked(x, _bool_mask(mask), axis, log=True)


def softmax_length(data: Any, length: Any, axis: int, temperature: Optional[float], log: bool, op: str) -> Array:
    """softmax / log_softmax over the first `length` positions along `axis` (zeros / -inf after)."""
    x = _scaled(data, temperature)
    return _masked(x, _length_mask(x, length, axis, op), axis, log)
