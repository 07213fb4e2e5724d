"""Shared helpers of the numpy interface: operand conversion, promotion, broadcasting."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy

from ..errors import ArgumentError, ArgumentTypeError, DTypeError, ShapeError
from ..ir import dtypes
from ..ir.core import Lit
from ..ir.ops import Op
from ..tracer import array as _array
from ..tracer.array import Array
from ..tracer.lazy import apply, make_lit
from ..tracer.state import STATE
from ..where import user_line_long
from ..device import UNPLACED

SCALARS = (bool, int, float, numpy.bool_, numpy.integer, numpy.floating)


def at() -> str:
    """The user's file:line, as the tail of an error message."""
    return f"\n  (at {user_line_long()})"


def shape_arg(shape: Any, name: str) -> tuple[int, ...]:
    """`shape` as a tuple of sizes: integers (never truncated floats), none negative."""
    items = (shape,) if isinstance(shape, (int, numpy.integer)) or not hasattr(shape, "__iter__") else tuple(shape)
    for s in items:
        if isinstance(s, (bool, numpy.bool_)) or not isinstance(s, (int, numpy.integer)):
            raise ArgumentTypeError(f"{name}: shape {shape!r}: sizes must be integers, got {type(s).__name__} {s!r}" + at())
        if s < 0:
            raise ArgumentError(f"{name}: shape {shape!r}: negative dimensions are not allowed" + at())
    return tuple(int(s) for s in items)


def default_float() -> numpy.dtype:
    return numpy.dtype(STATE.default_float)


def to_dtype(dtype: Any) -> Optional[numpy.dtype]:
    """A numpy dtype from anything users pass as dtype (strings, numpy types, our DType)."""
    if dtype is None:
        return None
    dt = numpy.dtype(getattr(dtype, "_np", dtype))
    if dt not in dtypes.SUPPORTED:
        raise DTypeError(f"dtype {dt} is not supported; use one of {[str(d) for d in dtypes.SUPPORTED]}" + at())
    return dt


def wrap(data: numpy.ndarray) -> Array:
    return _array.ARRAY_CLS._wrap(data)


def array(obj: Any, dtype: Any = None, copy: bool = True) -> Array:
    """A new array from `obj` (float32 by default, as MXNet: ints and float64 too)."""
    dt = to_dtype(dtype)
    if isinstance(obj, Array):
        v = obj._value()
        return wrap(numpy.array(v, dtype=dt or v.dtype, copy=True))
    v = numpy.asarray(obj)
    if dt is None:
        dt = dtypes.bool_ if v.dtype == dtypes.bool_ else default_float()
    if v.dtype.kind not in "biuf":
        raise DTypeError(f"array: cannot make an array of {v.dtype} data" + at())
    return wrap(numpy.array(v, dtype=dt, copy=True))


def as_array(x: Any) -> Array:
    """An operand as an Array; numpy arrays keep their dtype, lists become float32."""
    if isinstance(x, Array):
        return x
    if isinstance(x, numpy.ndarray):
        out = wrap(x if x.dtype in dtypes.SUPPORTED else x.astype(default_float()))
    elif isinstance(x, SCALARS):
        v = numpy.asarray(x)
        out = wrap(v.astype(default_float()) if v.dtype.kind == "f" else v)
    else:
        out = array(x)
    out._dev = UNPLACED  # an implicit host constant: it follows its op's device (issue 5)
    return out


def cast(x: Array, dtype: numpy.dtype) -> Array:
    if x._dtype == dtype:
        return x
    return apply(Op.CAST, [x], {"dtype": numpy.dtype(dtype)})[0]


def broadcast(x: Array, shape: tuple[int, ...]) -> Array:
    if x.shape == tuple(shape):
        return x
    return apply(Op.BROADCAST_TO, [x], {"shape": tuple(shape)})[0]


def reshape(x: Array, shape: tuple[int, ...]) -> Array:
    if x.shape == tuple(shape):
        return x
    return apply(Op.RESHAPE, [x], {"shape": tuple(shape)})[0]


def _operands(name: str, xs: Sequence[Any], float_result: bool) -> tuple[list[Any], numpy.dtype]:
    ops = [x if isinstance(x, SCALARS) and not isinstance(x, numpy.ndarray) else as_array(x) for x in xs]
    arrays = [a for a in ops if isinstance(a, Array)]
    if not arrays:
        ops = [as_array(ops[0])] + ops[1:]
        arrays = [ops[0]]
    dt = dtypes.promote(*[a._dtype for a in arrays])
    for s in ops:
        if not isinstance(s, Array):
            dt = dtypes.promote(dt, dtypes.weak_scalar_dtype(_py(s), dt, default_float()))
    if float_result and not dtypes.is_float(dt):
        dt = default_float()
    return ops, dt


def _py(s: Any) -> Any:
    return s.item() if isinstance(s, numpy.generic) else s


def _same_float_operands(xs: Sequence[Any]) -> Optional[list[Any]]:
    """The atoms of the common case (float arrays of one shape and dtype, Python numbers)."""
    like = None
    for a in xs:
        if isinstance(a, Array):
            if like is None:
                like = a
                if a._dtype.kind != "f":
                    return None
            elif a._shape != like._shape or a._dtype != like._dtype:
                return None
        elif type(a) not in (float, int):
            return None
    if like is None:
        return None
    return [a if isinstance(a, Array) else make_lit(a, like._dtype) for a in xs]


def elementwise(op: Op, *xs: Any, float_result: bool = False, name: Optional[str] = None) -> Array:
    """Apply an elementwise op with numpy promotion and broadcasting of its operands."""
    if len(xs) == 2:  # the common binary cases of `_same_float_operands`, unrolled
        x, y = xs
        if isinstance(x, Array):
            dt = x._dtype
            if dt.kind == "f":
                if isinstance(y, Array):
                    if y._shape == x._shape and y._dtype == dt:
                        return apply(op, (x, y), {})[0]
                elif type(y) is float or type(y) is int:
                    return apply(op, (x, make_lit(y, dt)), {})[0]
        elif (type(x) is float or type(x) is int) and isinstance(y, Array) and y._dtype.kind == "f":
            return apply(op, (make_lit(x, y._dtype), y), {})[0]
    atoms = _same_float_operands(xs)
    if atoms is not None:
        return apply(op, atoms, {})[0]
    ops, dt = _operands(name or op.value, xs, float_result)
    shapes = [a.shape for a in ops if isinstance(a, Array)]
    try:
        shape = numpy.broadcast_shapes(*shapes)
    except ValueError:
        raise ShapeError(
            f"{name or op.value}: operands could not be broadcast together with shapes "
            f"{' '.join(str(s) for s in shapes)} (dtypes {', '.join(str(a.dtype) for a in ops if isinstance(a, Array))})"
            f"\n  (at {user_line_long()})"
        ) from None
    atoms = [
        broadcast(cast(a, dt), shape) if isinstance(a, Array) else make_lit(_py(a), dt) for a in ops
    ]
    return apply(op, atoms, {})[0]


def compare(op: Op, x: Any, y: Any) -> Array:
    return elementwise(op, x, y)


def float_unary(op: Op, x: Any) -> Array:
    x = as_array(x)
    if x._dtype.kind != "f":
        x = cast(x, default_float())
    return apply(op, [x], {})[0]


def normalize_axes(axis: Any, ndim: int, name: str) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, numpy.integer)) else tuple(axis)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < max(ndim, 1):
            raise ShapeError(f"{name}: axis {a} is out of bounds for an array of dimension {ndim}" + at())
        out.append(a % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise ShapeError(f"{name}: repeated axis in {axis}" + at())
    return tuple(sorted(out))


def normalize_axis(axis: int, ndim: int, name: str) -> int:
    return normalize_axes(axis, ndim, name)[0]


def reduce(op: Op, x: Any, axis: Any = None, keepdims: bool = False) -> Array:
    x = as_array(x)
    axes = normalize_axes(axis, x.ndim, op.value) if x.ndim else ()
    if x._dtype == dtypes.bool_ and op in (Op.REDUCE_SUM, Op.REDUCE_PROD):
        x = cast(x, dtypes.int64)
    if not axes:
        return x if not keepdims else x
    return apply(op, [x], {"axes": axes, "keepdims": bool(keepdims)})[0]


def lit(value: Any, dtype: numpy.dtype) -> Lit:
    return make_lit(value, dtype)
