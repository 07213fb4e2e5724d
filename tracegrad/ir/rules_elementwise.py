"""Rows of the elementwise ops. Operands are arrays of one shape or scalar literals.

Render rules (`ops.Render`) are scalar expressions per code generator target: a template
string where both targets spell the op alike (`{0}`, `{1}` name operands, `{name}` a
param), a function where they differ (render_helpers.py).
"""

from __future__ import annotations

import numpy

from . import dtypes
from ..errors import DTypeError, ShapeError
from . import render_helpers as rh
from .ops import EXPENSIVE, Kind, Op, OpDef, Render, fp_quiet, register

_np = numpy


def _common_shape(op: Op, ins) -> tuple[int, ...]:
    shapes = {a.shape for a in ins if a.shape != ()}
    if len(shapes) > 1:
        raise ShapeError(f"{op.value}: operand shapes {sorted(shapes)} differ (broadcast first)")
    return shapes.pop() if shapes else ()


def _same_dtype(op: Op, ins) -> numpy.dtype:
    kinds = {dtypes.of(a) for a in ins}
    if len(kinds) > 1:
        raise DTypeError(f"{op.value}: operand dtypes {sorted(map(str, kinds))} differ (cast first)")
    return kinds.pop()


def _float_rule(op: Op):
    def infer(*ins, **_):
        dt = _same_dtype(op, ins)
        if not dtypes.is_float(dt):
            raise DTypeError(f"{op.value}: needs a floating dtype, got {dt}")
        return [(_common_shape(op, ins), dt)]

    return infer


def _same_rule(op: Op):
    def infer(*ins, **_):
        return [(_common_shape(op, ins), _same_dtype(op, ins))]

    return infer


def _numeric_rule(op: Op):
    """Same dtype in and out, but not bool (numpy has no boolean negative/subtract/sign)."""

    def infer(*ins, **_):
        dt = _same_dtype(op, ins)
        if dt == dtypes.bool_:
            raise DTypeError(
                f"{op.value}: not defined for bool arrays; use logical_not/logical_xor, "
                "or cast with .astype('float32') first"
            )
        return [(_common_shape(op, ins), dt)]

    return infer


def _bool_rule(op: Op):
    def infer(*ins, **_):
        _same_dtype(op, ins)
        return [(_common_shape(op, ins), dtypes.bool_)]

    return infer


def _unary(op, impl, vjp, render, *, rule=_float_rule, differentiable=True, cost=1):
    register(OpDef(op, Kind.ELEMENTWISE, rule(op), impl, vjp, render, differentiable, cost=cost))


def _binary(op, impl, vjp, render, *, rule=_same_rule, differentiable=True, cost=1):
    register(OpDef(op, Kind.ELEMENTWISE, rule(op), impl, vjp, render, differentiable, cost=cost))


def _math(name: str) -> Render:
    """`math.<name>` of the operand on both targets (an expensive libm call)."""
    return Render({"*": "math.%s({0})" % name})


_ARITH_KEEPS = dict(keeps_dtype=True)


_errstate = fp_quiet


# ---- unary -------------------------------------------------------------------------------
_unary(Op.NEG, _np.negative, lambda b, x, out, g: (b.neg(g),), Render({"*": "(-{0})"}, **_ARITH_KEEPS),
       rule=_numeric_rule)
_unary(Op.ABS, _np.abs, lambda b, x, out, g: (b.mul(g, b.sign(x)),), "abs({0})", rule=_same_rule)
_unary(Op.SIGN, _np.sign, None, Render({
    "cpu": "_sign({0})",
    "cuda": lambda c, x: f"({c.tname}(0) if {x} == 0 else ({c.tname}(1) if {x} > 0 else {c.tname}(-1)))",
}), rule=_numeric_rule, differentiable=False)
_unary(Op.EXP, _errstate(_np.exp), lambda b, x, out, g: (b.mul(g, out),),
       Render({"cpu": rh.cpu_exp, "cuda": "math.exp({0})"}), cost=EXPENSIVE)
_unary(Op.LOG, _errstate(_np.log), lambda b, x, out, g: (b.div(g, x),), _math("log"), cost=EXPENSIVE)
_unary(
    Op.LOG1P, _errstate(_np.log1p), lambda b, x, out, g: (b.div(g, b.add(x, 1.0)),), _math("log1p"), cost=EXPENSIVE
)
_unary(
    Op.EXPM1, _errstate(_np.expm1), lambda b, x, out, g: (b.mul(g, b.add(out, 1.0)),), _math("expm1"), cost=EXPENSIVE
)
_unary(
    Op.SQRT, _errstate(_np.sqrt), lambda b, x, out, g: (b.div(g, b.mul(out, 2.0)),), _math("sqrt"), cost=EXPENSIVE
)
_unary(Op.SIN, _errstate(_np.sin), lambda b, x, out, g: (b.mul(g, b.cos(x)),), _math("sin"), cost=EXPENSIVE)
_unary(Op.COS, _errstate(_np.cos), lambda b, x, out, g: (b.neg(b.mul(g, b.sin(x))),), _math("cos"), cost=EXPENSIVE)
_unary(
    Op.TAN,
    _errstate(_np.tan),
    lambda b, x, out, g: (b.mul(g, b.add(b.mul(out, out), 1.0)),),
    _math("tan"), cost=EXPENSIVE,
)
_unary(
    Op.TANH, _np.tanh, lambda b, x, out, g: (b.mul(g, b.sub(1.0, b.mul(out, out))),),
    Render({"cpu": rh.cpu_tanh, "cuda": "math.tanh({0})"}), cost=EXPENSIVE
)
_unary(Op.SINH, _errstate(_np.sinh), lambda b, x, out, g: (b.mul(g, b.cosh(x)),), _math("sinh"), cost=EXPENSIVE)
_unary(Op.COSH, _errstate(_np.cosh), lambda b, x, out, g: (b.mul(g, b.sinh(x)),), _math("cosh"), cost=EXPENSIVE)
_unary(
    Op.ARCSIN,
    _errstate(_np.arcsin),
    lambda b, x, out, g: (b.div(g, b.sqrt(b.sub(1.0, b.mul(x, x)))),),
    _math("asin"), cost=EXPENSIVE,
)
_unary(
    Op.ARCCOS,
    _errstate(_np.arccos),
    lambda b, x, out, g: (b.neg(b.div(g, b.sqrt(b.sub(1.0, b.mul(x, x))))),),
    _math("acos"), cost=EXPENSIVE,
)
_unary(
    Op.ARCTAN,
    _np.arctan,
    lambda b, x, out, g: (b.div(g, b.add(b.mul(x, x), 1.0)),),
    _math("atan"), cost=EXPENSIVE,
)
def _sigmoid(x):
    # 1 / (1 + exp(-x)): relative accuracy for every x (0.5 + 0.5 tanh(x / 2) cancels to 0
    # for x below about -17 in float32, -37 in float64); exp(-x) overflowing gives 0, as it should
    with _np.errstate(over="ignore"):
        return (1 / (1 + _np.exp(-x))).astype(x.dtype, copy=False)


_unary(
    Op.SIGMOID,
    _errstate(_sigmoid),
    lambda b, x, out, g: (b.mul(g, b.mul(out, b.sub(1.0, out))),),
    Render({
        "cpu": rh.cpu_sigmoid,
        # relative accuracy for x << 0
        "cuda": lambda c, x: f"({c.tname}(1) / ({c.tname}(1) + math.exp(-{x})))",
    }),
    cost=EXPENSIVE,
)
_unary(
    Op.RELU,
    lambda x: _np.maximum(x, 0).astype(x.dtype, copy=False),
    lambda b, x, out, g: (b.where(b.gt(out, 0.0), g, b.zeros_like(g)),),
    Render({"cpu": lambda c, x: rh.cpu_minmax("maximum", x, "_ZERO"), "cuda": lambda c, x: f"max({x}, {c.tname}(0))"}),
)
_unary(Op.FLOOR, _np.floor, None, Render({"cpu": "np.floor({0})", "cuda": "math.floor({0})"}),
       differentiable=False, cost=EXPENSIVE)
_unary(Op.CEIL, _np.ceil, None, Render({"cpu": "np.ceil({0})", "cuda": "math.ceil({0})"}),
       differentiable=False, cost=EXPENSIVE)
_unary(Op.LOGICAL_NOT, _np.logical_not, None, "(not {0})", rule=_bool_rule, differentiable=False)


def _ipow_vjp(b, x, out, g, n):
    if n == 0:
        return (b.zeros_like(g),)
    if n == 1:
        return (g,)
    d = x if n == 2 else b.integer_pow(x, n=n - 1)
    return (b.mul(g, b.mul(d, float(n))),)


_unary(
    Op.INTEGER_POW,
    _errstate(lambda x, n: _np.power(x, n).astype(x.dtype, copy=False)),
    _ipow_vjp,
    Render({"cpu": rh.cpu_ipow, "cuda": rh.cuda_ipow}),
    rule=_same_rule,
)


def _cast_infer(x, dtype):
    return [(tuple(x.shape), numpy.dtype(dtype))]


def _cast_vjp(b, x, out, g, dtype):
    if not b.is_float(x):
        return (None,)
    return (b.cast(g, dtypes.of(x)),)


register(
    OpDef(
        Op.CAST,
        Kind.ELEMENTWISE,
        _cast_infer,
        _errstate(lambda x, dtype: x.astype(dtype)),
        _cast_vjp,
        Render({
            "cpu": lambda c, x, dtype: rh.cpu_cast(x, dtype),
            "cuda": lambda c, x, dtype: f"({x} != 0)" if c.dtype == dtypes.bool_ else f"{c.tname}({x})",
        }),
    )
)
register(
    OpDef(
        Op.STOP_GRADIENT,
        Kind.ELEMENTWISE,
        lambda x: [(tuple(x.shape), dtypes.of(x))],
        lambda x: x,
        None,
        Render({"*": "{0}"}, **_ARITH_KEEPS),
        differentiable=False,
        doc="identity forward, no gradient",
    )
)


def _clip_impl(x, lo, hi):
    return _np.clip(x, lo, hi).astype(x.dtype, copy=False)


def _clip_vjp(b, x, out, g, lo, hi):
    keep = None
    if lo is not None:
        keep = b.ge(x, lo)
    if hi is not None:
        upper = b.le(x, hi)
        keep = upper if keep is None else b.logical_and(keep, upper)
    return (g if keep is None else b.where(keep, g, b.zeros_like(g)),)


register(
    OpDef(
        Op.CLIP,
        Kind.ELEMENTWISE,
        lambda x, lo, hi: [(tuple(x.shape), dtypes.of(x))],
        _clip_impl,
        _clip_vjp,
        Render({"cpu": rh.cpu_clip, "cuda": rh.cuda_clip}),
        doc="bounds inclusive in the gradient (MXNet)",
    )
)

# ---- binary ------------------------------------------------------------------------------
_binary(Op.ADD, _errstate(_np.add), lambda b, x, y, out, g: (g, g), Render({"*": "({0} + {1})"}, **_ARITH_KEEPS))
_binary(
    Op.SUB, _errstate(_np.subtract), lambda b, x, y, out, g: (g, b.neg(g)), Render({"*": "({0} - {1})"}, **_ARITH_KEEPS),
    rule=_numeric_rule
)
_binary(Op.MUL, _errstate(_np.multiply), lambda b, x, y, out, g: (b.mul(g, y), b.mul(g, x)),
        Render({"*": "({0} * {1})"}, **_ARITH_KEEPS))


def _div_impl(x, y):
    with numpy.errstate(all="ignore"):
        return _np.true_divide(x, y).astype(numpy.result_type(x, y), copy=False)


_binary(
    Op.DIV,
    _div_impl,
    lambda b, x, y, out, g: (b.div(g, y), b.neg(b.div(b.mul(g, out), y))),
    Render({"*": "({0} / {1})"}, **_ARITH_KEEPS),
    rule=_float_rule,
)


def _pow_vjp(b, x, y, out, g):
    gx = b.mul(g, b.mul(y, b.pow(x, b.sub(y, 1.0))))
    gy = b.mul(g, b.mul(out, b.log(x)))
    return gx, gy


_binary(Op.POW, _errstate(_np.power), _pow_vjp, "({0} ** {1})", rule=_float_rule, cost=EXPENSIVE)
_binary(
    Op.MAXIMUM,
    _np.maximum,
    lambda b, x, y, out, g: (
        b.where(b.ge(x, y), g, b.zeros_like(g)),
        b.where(b.lt(x, y), g, b.zeros_like(g)),
    ),
    Render({"cpu": lambda c, x, y: rh.cpu_minmax("maximum", x, y), "cuda": "max({0}, {1})"}),
)
_binary(
    Op.MINIMUM,
    _np.minimum,
    lambda b, x, y, out, g: (
        b.where(b.le(x, y), g, b.zeros_like(g)),
        b.where(b.gt(x, y), g, b.zeros_like(g)),
    ),
    Render({"cpu": lambda c, x, y: rh.cpu_minmax("minimum", x, y), "cuda": "min({0}, {1})"}),
)
for _op, _f, _sym in [
    (Op.EQ, _np.equal, "=="),
    (Op.NE, _np.not_equal, "!="),
    (Op.LT, _np.less, "<"),
    (Op.LE, _np.less_equal, "<="),
    (Op.GT, _np.greater, ">"),
    (Op.GE, _np.greater_equal, ">="),
]:
    _binary(_op, _f, None, "({0} %s {1})" % _sym, rule=_bool_rule, differentiable=False)
for _op, _f, _sym in [
    (Op.LOGICAL_AND, _np.logical_and, "and"),
    (Op.LOGICAL_OR, _np.logical_or, "or"),
    (Op.LOGICAL_XOR, _np.logical_xor, "!="),
]:
    _binary(_op, _f, None, "(bool({0}) %s bool({1}))" % _sym, rule=_bool_rule, differentiable=False)


# ---- ternary -----------------------------------------------------------------------------
def _select_infer(c, x, y):
    if dtypes.of(c) != dtypes.bool_:
        raise DTypeError(f"select: condition must be bool, got {c.dtype}")
    shape = _common_shape(Op.SELECT, (c, x, y))
    return [(shape, _same_dtype(Op.SELECT, (x, y)))]


register(
    OpDef(
        Op.SELECT,
        Kind.ELEMENTWISE,
        _select_infer,
        lambda c, x, y: _np.where(c, x, y).astype(numpy.result_type(x, y), copy=False),
        lambda b, c, x, y, out, g: (
            None,
            b.where(c, g, b.zeros_like(g)),
            b.where(c, b.zeros_like(g), g),
        ),
        "({1} if {0} else {2})",
        doc="where(cond, x, y)",
    )
)
