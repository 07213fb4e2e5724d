"""The dtypes tracegrad arrays can have, their short names in printed traces, and promotion."""

from __future__ import annotations

import numpy

float16 = numpy.dtype("float16")
float32 = numpy.dtype("float32")
float64 = numpy.dtype("float64")
int8 = numpy.dtype("int8")
uint8 = numpy.dtype("uint8")
int32 = numpy.dtype("int32")
int64 = numpy.dtype("int64")
bool_ = numpy.dtype("bool")

SUPPORTED = (float16, float32, float64, int8, uint8, int32, int64, bool_)
SHORT = {
    float16: "f16",
    float32: "f32",
    float64: "f64",
    int8: "i8",
    uint8: "u8",
    int32: "i32",
    int64: "i64",
    bool_: "bool",
}


def of(a: object) -> numpy.dtype:
    """The numpy dtype of an operand (Var, Lit or array; arrays keep theirs in `_dtype`)."""
    dt = getattr(a, "_dtype", None)
    return dt if dt is not None else a.dtype  # type: ignore[attr-defined]


def is_float(dtype: numpy.dtype) -> bool:
    """Whether values of this dtype can carry a gradient."""
    return dtype.kind == "f"


def short(dtype: numpy.dtype) -> str:
    """The dtype's name in printed traces (f32, i64, bool...)."""
    return SHORT.get(dtype, dtype.name)


def promote(*dtypes: numpy.dtype) -> numpy.dtype:
    """The common dtype of array operands, as numpy promotes them."""
    return numpy.result_type(*dtypes)


def weak_scalar_dtype(value: object, other: numpy.dtype, default_float: numpy.dtype) -> numpy.dtype:
    """The dtype a Python scalar takes next to an array of dtype `other` (the array wins)."""
    if isinstance(value, bool):
        return other
    if isinstance(value, int):
        return other if other != bool_ else int64
    if isinstance(value, float):
        return other if is_float(other) else default_float
    raise TypeError(f"not a Python scalar: {value!r}")
