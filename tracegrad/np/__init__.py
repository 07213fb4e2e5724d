"""The numpy interface (MXNet 2.x `mxnet.np`): arrays are float32 by default."""

from __future__ import annotations

import numpy as _numpy

from . import indexing, random
from ._core import array
from .creation import *  # noqa: F401,F403
from .indexing import take
from .linalg import dot, inner, matmul, outer, tensordot, vdot
from .math import *  # noqa: F401,F403
from .reductions import *  # noqa: F401,F403
from .shape import *  # noqa: F401,F403

# numpy/linalg ops (issue 9)
from .arrayops import cumsum, meshgrid, pad, tril, triu  # noqa: F401
from .einsum import einsum  # noqa: F401
from .sorting import argsort, sort  # noqa: F401

pi = _numpy.pi
e = _numpy.e
inf = _numpy.inf
nan = _numpy.nan
newaxis = None
float16 = _numpy.float16
float32 = _numpy.float32
float64 = _numpy.float64
int8 = _numpy.int8
uint8 = _numpy.uint8
int32 = _numpy.int32
int64 = _numpy.int64
bool_ = _numpy.bool_


def __getattr__(name: str):
    if name == "ndarray":
        from ..ndarray import ndarray

        return ndarray
    raise AttributeError(
        f"tracegrad.np has no attribute {name!r}; it implements the MXNet numpy operators "
        "listed in README.md"
    )
