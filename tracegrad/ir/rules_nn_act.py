"""Rows the activations need beyond the elementwise family: erf (for exact gelu)."""

from __future__ import annotations

import math

import numpy

from . import dtypes
from ..errors import DTypeError
from .ops import EXPENSIVE, Kind, Op, OpDef, fp_quiet, register

_erf = numpy.vectorize(math.erf, otypes=[numpy.float64])
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _erf_infer(x):
    if not dtypes.is_float(dtypes.of(x)):
        raise DTypeError(f"erf: needs a floating dtype, got {x.dtype}")
    return [(tuple(x.shape), dtypes.of(x))]


def _erf_impl(x):
    return _erf(x).astype(x.dtype, copy=False)


def _erf_vjp(b, x, out, g):
    return (b.mul(g, b.mul(b.exp(b.neg(b.mul(x, x))), _TWO_OVER_SQRT_PI)),)


register(OpDef(
    Op.ERF, Kind.ELEMENTWISE, _erf_infer, fp_quiet(_erf_impl), _erf_vjp, "math.erf({0})",
    doc="the error function", cost=EXPENSIVE))
