"""Elementwise functions of the numpy interface."""

from __future__ import annotations

from typing import Any

import numpy

from ..ir import dtypes
from ..ir.ops import Op
from ..tracer.array import Array
from ..tracer.lazy import apply
from ._core import _operands, as_array, at, broadcast, cast, compare, elementwise, float_unary, lit
from ..errors import ShapeError

__all__ = [
    "add", "subtract", "multiply", "divide", "true_divide", "power", "negative", "positive",
    "abs", "absolute", "sign", "exp", "log", "log1p", "expm1", "log2", "log10", "sqrt",
    "square", "reciprocal", "sin", "cos", "tan", "tanh", "sinh", "cosh", "arcsin", "arccos",
    "arctan", "maximum", "minimum", "clip", "where", "equal", "not_equal", "less",
    "less_equal", "greater", "greater_equal", "logical_and", "logical_or", "logical_xor",
    "logical_not", "floor", "ceil", "stop_gradient",
]  # fmt: skip


def add(x1: Any, x2: Any) -> Array:
    return elementwise(Op.ADD, x1, x2)


def subtract(x1: Any, x2: Any) -> Array:
    return elementwise(Op.SUB, x1, x2)


def multiply(x1: Any, x2: Any) -> Array:
    return elementwise(Op.MUL, x1, x2)


def divide(x1: Any, x2: Any) -> Array:
    return elementwise(Op.DIV, x1, x2, float_result=True)


true_divide = divide


def power(x1: Any, x2: Any) -> Array:
    """x1 ** x2; a Python int exponent becomes an exact repeated product."""
    if isinstance(x2, (int, numpy.integer)) and not isinstance(x2, bool) and 0 <= int(x2) <= 64:
        x = as_array(x1)
        return apply(Op.INTEGER_POW, [x], {"n": int(x2)})[0]
    return elementwise(Op.POW, x1, x2, float_result=True)


def negative(x: Any) -> Array:
    return apply(Op.NEG, [as_array(x)], {})[0]


def positive(x: Any) -> Array:
    return as_array(x)


def abs(x: Any) -> Array:  # noqa: A001
    return apply(Op.ABS, [as_array(x)], {})[0]


absolute = abs


def sign(x: Any) -> Array:
    return apply(Op.SIGN, [as_array(x)], {})[0]


def exp(x: Any) -> Array:
    return float_unary(Op.EXP, x)


def log(x: Any) -> Array:
    return float_unary(Op.LOG, x)


def log1p(x: Any) -> Array:
    return float_unary(Op.LOG1P, x)


def expm1(x: Any) -> Array:
    return float_unary(Op.EXPM1, x)


def log2(x: Any) -> Array:
    return divide(log(x), numpy.log(2.0))


def log10(x: Any) -> Array:
    return divide(log(x), numpy.log(10.0))


def sqrt(x: Any) -> Array:
    return float_unary(Op.SQRT, x)


def square(x: Any) -> Array:
    return power(x, 2)


def reciprocal(x: Any) -> Array:
    return divide(1.0, x)


def sin(x: Any) -> Array:
    return float_unary(Op.SIN, x)


def cos(x: Any) -> Array:
    return float_unary(Op.COS, x)


def tan(x: Any) -> Array:
    return float_unary(Op.TAN, x)


def tanh(x: Any) -> Array:
    return float_unary(Op.TANH, x)


def sinh(x: Any) -> Array:
    return float_unary(Op.SINH, x)


def cosh(x: Any) -> Array:
    return float_unary(Op.COSH, x)


def arcsin(x: Any) -> Array:
    return float_unary(Op.ARCSIN, x)


def arccos(x: Any) -> Array:
    return float_unary(Op.ARCCOS, x)


def arctan(x: Any) -> Array:
    return float_unary(Op.ARCTAN, x)


def floor(x: Any) -> Array:
    return float_unary(Op.FLOOR, x)


def ceil(x: Any) -> Array:
    return float_unary(Op.CEIL, x)


def maximum(x1: Any, x2: Any) -> Array:
    """Elementwise max; on ties the gradient goes to x1 (MXNet)."""
    return elementwise(Op.MAXIMUM, x1, x2)


def minimum(x1: Any, x2: Any) -> Array:
    """Elementwise min; on ties the gradient goes to x1 (MXNet)."""
    return elementwise(Op.MINIMUM, x1, x2)


def clip(a: Any, a_min: Any = None, a_max: Any = None) -> Array:
    """Values limited to [a_min, a_max]; the gradient is 1 at the bounds themselves."""
    x = as_array(a)
    if a_min is None and a_max is None:
        raise ValueError("clip: a_min and a_max cannot both be None")
    if isinstance(a_min, Array) or isinstance(a_max, Array):
        out = x
        if a_min is not None:
            out = maximum(out, a_min)
        if a_max is not None:
            out = minimum(out, a_max)
        return out
    kind = float if dtypes.is_float(x.dtype) else int
    lo = None if a_min is None else kind(a_min)
    hi = None if a_max is None else kind(a_max)
    return apply(Op.CLIP, [x], {"lo": lo, "hi": hi})[0]


def where(condition: Any, x: Any = None, y: Any = None) -> Array:
    """Elements of x where condition holds, else of y (the condition gets no gradient)."""
    if x is None or y is None:
        raise TypeError("where: tracegrad needs both x and y (the one-argument form is nonzero())")
    c = as_array(condition)
    if c.dtype != dtypes.bool_:
        c = compare(Op.NE, c, 0)


    ops, dt = _operands("where", [x, y], False)
    shapes = [c.shape] + [a.shape for a in ops if isinstance(a, Array)]
    try:
        shape = numpy.broadcast_shapes(*shapes)
    except ValueError:
        raise ShapeError(
            f"where: condition and operands could not be broadcast together with shapes "
            f"{' '.join(str(s) for s in shapes)}" + at()
        ) from None
    atoms = [broadcast(c, shape)] + [
        broadcast(cast(a, dt), shape) if isinstance(a, Array) else lit(a, dt) for a in ops
    ]
    return apply(Op.SELECT, atoms, {})[0]


def equal(x1: Any, x2: Any) -> Array:
    return compare(Op.EQ, x1, x2)


def not_equal(x1: Any, x2: Any) -> Array:
    return compare(Op.NE, x1, x2)


def less(x1: Any, x2: Any) -> Array:
    return compare(Op.LT, x1, x2)


def less_equal(x1: Any, x2: Any) -> Array:
    return compare(Op.LE, x1, x2)


def greater(x1: Any, x2: Any) -> Array:
    return compare(Op.GT, x1, x2)


def greater_equal(x1: Any, x2: Any) -> Array:
    return compare(Op.GE, x1, x2)


def _as_bool(x: Any) -> Array:
    x = as_array(x)
    return x if x.dtype == dtypes.bool_ else compare(Op.NE, x, 0)


def logical_and(x1: Any, x2: Any) -> Array:
    return elementwise(Op.LOGICAL_AND, _as_bool(x1), _as_bool(x2))


def logical_or(x1: Any, x2: Any) -> Array:
    return elementwise(Op.LOGICAL_OR, _as_bool(x1), _as_bool(x2))


def logical_xor(x1: Any, x2: Any) -> Array:
    return elementwise(Op.LOGICAL_XOR, _as_bool(x1), _as_bool(x2))


def logical_not(x: Any) -> Array:
    return apply(Op.LOGICAL_NOT, [_as_bool(x)], {})[0]


def stop_gradient(x: Any) -> Array:
    return apply(Op.STOP_GRADIENT, [as_array(x)], {})[0]
