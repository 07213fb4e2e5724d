"""The op cases the generated tests run: one entry per API function, each naming the
table ops it exercises. Forward is compared with numpy, gradients with central differences.

A case is `Case(name, tg, ref, shapes, ...)`: `tg(*arrays)` calls tracegrad, `ref(*arrays)`
numpy (None: the case is gradient-only), `shapes` the input shapes, `lo/hi` the sampling
range (kept away from kinks and poles), `grad` whether to check gradients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy

from tracegrad import np as tnp
from tracegrad import npx
from tracegrad.ir import Op


@dataclass
class Case:
    name: str
    tg: Callable[..., Any]
    ref: Optional[Callable[..., Any]]
    shapes: tuple
    lo: float = -1.0
    hi: float = 1.0
    grad: bool = True
    ops: frozenset = field(default_factory=frozenset)
    positive_gap: float = 0.0  # keep |x| >= gap (kinks at 0)
    eps: float = 1e-6  # finite-difference step (float32 inside the case needs a larger one)
    rtol: float = 1e-6

    def inputs(self, seed: int = 0) -> list[numpy.ndarray]:
        rs = numpy.random.RandomState(seed)
        out = []
        for s in self.shapes:
            v = rs.uniform(self.lo, self.hi, s)
            if self.positive_gap:
                v = numpy.where(numpy.abs(v) < self.positive_gap, numpy.sign(v + 1e-12) * self.positive_gap, v)
            out.append(v)
        return out


def _np(name: str, shapes: tuple, *ops: Op, lo=-1.0, hi=1.0, grad=True, gap=0.0, label=None, **kw):
    return Case(
        label or name,
        lambda *xs: getattr(tnp, name)(*xs, **kw),
        lambda *xs: getattr(numpy, name)(*xs, **kw),
        shapes,
        lo,
        hi,
        grad,
        frozenset(ops),
        gap,
    )


def _softmax(x, axis=-1):
    e = numpy.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


S = (2, 3)
UNARY = [
    _np("negative", (S,), Op.NEG),
    _np("abs", (S,), Op.ABS, gap=0.1),
    _np("absolute", (S,), Op.ABS, gap=0.1),
    _np("sign", (S,), Op.SIGN, grad=False, gap=0.1),
    _np("exp", (S,), Op.EXP),
    _np("log", (S,), Op.LOG, lo=0.2, hi=2.0),
    _np("log1p", (S,), Op.LOG1P, lo=-0.5, hi=2.0),
    _np("expm1", (S,), Op.EXPM1),
    _np("log2", (S,), Op.LOG, Op.DIV, lo=0.2, hi=2.0),
    _np("log10", (S,), Op.LOG, Op.DIV, lo=0.2, hi=2.0),
    _np("sqrt", (S,), Op.SQRT, lo=0.2, hi=2.0),
    _np("square", (S,), Op.INTEGER_POW),
    _np("reciprocal", (S,), Op.DIV, lo=0.3, hi=2.0),
    _np("sin", (S,), Op.SIN),
    _np("cos", (S,), Op.COS),
    _np("tan", (S,), Op.TAN),
    _np("tanh", (S,), Op.TANH),
    _np("sinh", (S,), Op.SINH),
    _np("cosh", (S,), Op.COSH),
    _np("arcsin", (S,), Op.ARCSIN, lo=-0.8, hi=0.8),
    _np("arccos", (S,), Op.ARCCOS, lo=-0.8, hi=0.8),
    _np("arctan", (S,), Op.ARCTAN, lo=-2.0, hi=2.0),
    _np("floor", (S,), Op.FLOOR, lo=-3, hi=3, grad=False),
    _np("ceil", (S,), Op.CEIL, lo=-3, hi=3, grad=False),
    _np("positive", (S,)),
]
BINARY = [
    _np("add", (S, S), Op.ADD),
    _np("add", (S, (3,)), Op.ADD, Op.BROADCAST_TO, label="add_bcast"),
    _np("subtract", ((2, 1), (1, 3)), Op.SUB, Op.BROADCAST_TO),
    _np("multiply", ((2, 1, 3), (4, 1)), Op.MUL, Op.BROADCAST_TO),
    _np("multiply", (S, ()), Op.MUL, Op.BROADCAST_TO, label="multiply_0d"),
    _np("divide", (S, (3,)), Op.DIV, lo=0.3, hi=2.0),
    _np("true_divide", (S, S), Op.DIV, lo=0.3, hi=2.0),
    _np("power", (S, S), Op.POW, lo=0.3, hi=2.0),
    _np("maximum", (S, (3,)), Op.MAXIMUM),
    _np("minimum", (S, (3,)), Op.MINIMUM),
]
COMPARE = [
    _np(n, (S, (3,)), op, grad=False)
    for n, op in [
        ("equal", Op.EQ),
        ("not_equal", Op.NE),
        ("less", Op.LT),
        ("less_equal", Op.LE),
        ("greater", Op.GT),
        ("greater_equal", Op.GE),
        ("logical_and", Op.LOGICAL_AND),
        ("logical_or", Op.LOGICAL_OR),
        ("logical_xor", Op.LOGICAL_XOR),
    ]
] + [_np("logical_not", (S,), Op.LOGICAL_NOT, grad=False)]

SCALAR = [
    Case("pow_scalar", lambda x: x**2.5, lambda x: x**2.5, (S,), 0.3, 2.0, ops=frozenset({Op.POW})),
    Case("rpow", lambda x: 2.0**x, lambda x: 2.0**x, (S,), ops=frozenset({Op.POW})),
    Case("ipow3", lambda x: x**3, lambda x: x**3, (S,), ops=frozenset({Op.INTEGER_POW})),
    Case("ipow0", lambda x: x**0 * x, lambda x: x**0 * x, (S,), ops=frozenset({Op.INTEGER_POW})),
    Case("rsub", lambda x: 2 - x, lambda x: 2 - x, (S,), ops=frozenset({Op.SUB})),
    Case("rdiv", lambda x: 2 / x, lambda x: 2 / x, (S,), 0.3, 2.0, ops=frozenset({Op.DIV})),
    Case("clip", lambda x: tnp.clip(x, -0.5, 0.5), lambda x: numpy.clip(x, -0.5, 0.5), (S,),
         ops=frozenset({Op.CLIP})),
    Case("clip_lo", lambda x: tnp.clip(x, -0.5, None), lambda x: numpy.clip(x, -0.5, None), (S,),
         ops=frozenset({Op.CLIP})),
    Case("where", lambda c, x, y: tnp.where(c > 0, x, y), lambda c, x, y: numpy.where(c > 0, x, y),
         (S, S, (3,)), ops=frozenset({Op.SELECT, Op.GT})),
    Case("astype", lambda x: (x.astype("float32") * 3).astype("float64"),
         lambda x: (x.astype("float32") * 3).astype("float64"), (S,), ops=frozenset({Op.CAST}), eps=1e-2,
         rtol=1e-4),
]


def _red(name, axis, keepdims, *ops, lo=-1.0, hi=1.0, **kw):
    return Case(
        f"{name}[axis={axis},keepdims={keepdims}]",
        lambda x: getattr(tnp, name)(x, axis=axis, keepdims=keepdims, **kw),
        lambda x: getattr(numpy, name)(x, axis=axis, keepdims=keepdims, **kw),
        ((2, 3, 4),),
        lo,
        hi,
        ops=frozenset(ops),
    )


AXES = [None, 0, -1, (0, 2)]
REDUCE = (
    [_red("sum", a, k, Op.REDUCE_SUM) for a in AXES for k in (False, True)]
    + [_red("mean", a, k, Op.REDUCE_SUM, Op.DIV) for a in AXES for k in (False, True)]
    + [_red("max", a, k, Op.REDUCE_MAX) for a in AXES for k in (False, True)]
    + [_red("min", a, k, Op.REDUCE_MIN) for a in AXES for k in (False, True)]
    + [_red("prod", a, k, Op.REDUCE_PROD, lo=0.5, hi=1.5) for a in AXES for k in (False, True)]
    + [_red("var", a, k, Op.REDUCE_SUM) for a in AXES for k in (False, True)]
    + [_red("std", a, k, Op.SQRT) for a in AXES for k in (False, True)]
    + [_red("var", 1, False, Op.REDUCE_SUM, ddof=1)]
    + [
        Case(f"{n}[axis={a}]", (lambda n, a: lambda x: getattr(tnp, n)(x, axis=a))(n, a),
             (lambda n, a: lambda x: getattr(numpy, n)(x, axis=a))(n, a), ((2, 3, 4),), grad=False,
             ops=frozenset({op}))
        for n, op in [("argmax", Op.ARGMAX), ("argmin", Op.ARGMIN)]
        for a in (None, 0, -1)
    ]
)

PRODUCT = [
    _np("dot", ((2, 3), (3, 4)), Op.MATMUL, label="dot_2d"),
    _np("dot", ((3,), (3,)), Op.MATMUL, label="dot_1d_1d"),
    _np("dot", ((2, 3), (3,)), Op.MATMUL, label="dot_2d_1d"),
    _np("dot", ((3,), (3, 2)), Op.MATMUL, label="dot_1d_2d"),
    _np("dot", ((2, 3, 4), (4, 2)), Op.MATMUL, label="dot_3d_2d"),
    _np("matmul", ((2, 3), (3, 4)), Op.MATMUL),
    _np("matmul", ((2, 2, 3), (3, 4)), Op.MATMUL, label="matmul_bcast"),
    _np("matmul", ((1, 2, 3), (2, 3, 2)), Op.MATMUL, label="matmul_bcast_batch"),
    _np("tensordot", ((2, 3, 4), (3, 4, 2)), Op.MATMUL, axes=2),
    _np("inner", ((2, 3), (4, 3)), Op.MATMUL),
    _np("outer", ((3,), (2,)), Op.MUL),
    _np("vdot", ((2, 3), (2, 3)), Op.MUL),
]


def _bd_ref(a, b, ta, tb):
    a = numpy.swapaxes(a, -1, -2) if ta else a
    b = numpy.swapaxes(b, -1, -2) if tb else b
    return numpy.matmul(a, b)


BATCH_DOT = [
    Case(
        f"batch_dot[ta={ta},tb={tb}]",
        (lambda ta, tb: lambda a, b: npx.batch_dot(a, b, transpose_a=ta, transpose_b=tb))(ta, tb),
        (lambda ta, tb: lambda a, b: _bd_ref(a, b, ta, tb))(ta, tb),
        ((2, 4, 3) if ta else (2, 3, 4), (2, 5, 4) if tb else (2, 4, 5)),
        ops=frozenset({Op.MATMUL} | ({Op.TRANSPOSE} if ta or tb else set())),
    )
    for ta in (False, True)
    for tb in (False, True)
]

LAYOUT = [
    _np("reshape", ((2, 3, 4),), Op.RESHAPE, shape=(4, -1)),
    Case("reshape_method", lambda x: x.reshape(3, 2), lambda x: x.reshape(3, 2), (S,), ops=frozenset({Op.RESHAPE})),
    _np("transpose", ((2, 3, 4),), Op.TRANSPOSE),
    _np("transpose", ((2, 3, 4),), Op.TRANSPOSE, axes=(1, 0, 2), label="transpose_axes"),
    Case("T", lambda x: x.T, lambda x: x.T, (S,), ops=frozenset({Op.TRANSPOSE})),
    _np("swapaxes", ((2, 3, 4),), Op.TRANSPOSE, axis1=0, axis2=2),
    _np("moveaxis", ((2, 3, 4),), Op.TRANSPOSE, source=0, destination=-1),
    _np("expand_dims", (S,), Op.RESHAPE, axis=1),
    _np("squeeze", ((2, 1, 3, 1),), Op.RESHAPE),
    _np("squeeze", ((2, 1, 3, 1),), Op.RESHAPE, axis=1, label="squeeze_axis"),
    _np("ravel", (S,), Op.RESHAPE),
    _np("broadcast_to", ((3, 1),), Op.BROADCAST_TO, shape=(2, 3, 4)),
    Case("concatenate", lambda a, b: tnp.concatenate([a, b], axis=1),
         lambda a, b: numpy.concatenate([a, b], axis=1), (S, (2, 2)), ops=frozenset({Op.CONCATENATE})),
    Case("concatenate_flat", lambda a, b: tnp.concatenate([a, b], axis=None),
         lambda a, b: numpy.concatenate([a, b], axis=None), (S, (4,)), ops=frozenset({Op.CONCATENATE})),
    Case("stack", lambda a, b: tnp.stack([a, b], axis=1), lambda a, b: numpy.stack([a, b], axis=1),
         (S, S), ops=frozenset({Op.CONCATENATE, Op.RESHAPE})),
    Case("stack_neg", lambda a, b: tnp.stack([a, b], axis=-1), lambda a, b: numpy.stack([a, b], axis=-1),
         (S, S), ops=frozenset({Op.CONCATENATE})),
    Case("split", lambda a: tnp.split(a, 2, axis=1)[1] * 2.0, lambda a: numpy.split(a, 2, axis=1)[1] * 2.0,
         ((2, 4),), ops=frozenset({Op.SLICE})),
    Case("split_idx", lambda a: tnp.concatenate(tnp.split(a, [1, 3]), axis=0)[::-1],
         lambda a: numpy.concatenate(numpy.split(a, [1, 3]), axis=0)[::-1], ((4, 2),), ops=frozenset({Op.SLICE})),
    Case("take", lambda a: tnp.take(a, [0, 2, 0], axis=1), lambda a: numpy.take(a, [0, 2, 0], axis=1),
         (S,), ops=frozenset({Op.GATHER})),
    Case("take_flat", lambda a: tnp.take(a, numpy.array([[5, 0], [0, 1]])),
         lambda a: numpy.take(a, numpy.array([[5, 0], [0, 1]])), (S,), ops=frozenset({Op.GATHER})),
    Case("take_clip", lambda a: tnp.take(a, [0, 7], axis=1, mode="clip"),
         lambda a: numpy.take(a, [0, 7], axis=1, mode="clip"), (S,), ops=frozenset({Op.GATHER})),
    Case("take_wrap", lambda a: tnp.take(a, [-1, 4], axis=1, mode="wrap"),
         lambda a: numpy.take(a, [-1, 4], axis=1, mode="wrap"), (S,), ops=frozenset({Op.GATHER})),
    Case("repeat", lambda a: tnp.repeat(a, 2, axis=1), lambda a: numpy.repeat(a, 2, axis=1), (S,),
         ops=frozenset({Op.BROADCAST_TO})),
    Case("repeat_flat", lambda a: tnp.repeat(a, 3), lambda a: numpy.repeat(a, 3), (S,)),
    Case("tile", lambda a: tnp.tile(a, (2, 1)), lambda a: numpy.tile(a, (2, 1)), (S,)),
    Case("flip", lambda a: tnp.flip(a, 1), lambda a: numpy.flip(a, 1), (S,), ops=frozenset({Op.SLICE})),
    Case("hstack", lambda a, b: tnp.hstack([a, b]), lambda a, b: numpy.hstack([a, b]), (S, S)),
    Case("vstack", lambda a, b: tnp.vstack([a, b]), lambda a, b: numpy.vstack([a, b]), ((3,), (3,))),
]

INDEX = [
    Case("getitem_int", lambda a: a[1], lambda a: a[1], (S,), ops=frozenset({Op.SLICE})),
    Case("getitem_slices", lambda a: a[1:, ::-2], lambda a: a[1:, ::-2], ((3, 4),), ops=frozenset({Op.SLICE})),
    Case("getitem_ellipsis_none", lambda a: a[..., None, 1], lambda a: a[..., None, 1], ((2, 3, 4),)),
    Case("getitem_list", lambda a: a[[0, 0, 1]], lambda a: a[[0, 0, 1]], (S,), ops=frozenset({Op.GATHER})),
    Case("getitem_pairs", lambda a: a[[0, 0, 1], [1, 1, 2]], lambda a: a[[0, 0, 1], [1, 1, 2]], (S,)),
    Case("getitem_mixed", lambda a: a[1:, [2, 0, 2]], lambda a: a[1:, [2, 0, 2]], ((3, 3),)),
    Case("getitem_bool", lambda a: a[a > 0.1], lambda a: a[a > 0.1], (S,), ops=frozenset({Op.GATHER})),
    Case("getitem_float_labels", lambda a: a[range(2), tnp.array([0, 2])],
         lambda a: a[range(2), numpy.array([0, 2])], (S,), ops=frozenset({Op.GATHER})),
]

NPX = [
    Case("relu", npx.relu, lambda x: numpy.maximum(x, 0), (S,), positive_gap=0.1, ops=frozenset({Op.RELU})),
    Case("sigmoid", npx.sigmoid, lambda x: 1 / (1 + numpy.exp(-x)), (S,), ops=frozenset({Op.SIGMOID})),
    Case("softmax", npx.softmax, _softmax, (S,), -2, 2),
    Case("softmax_axis0", lambda x: npx.softmax(x, axis=0), lambda x: _softmax(x, 0), (S,), -2, 2),
    Case("softmax_temperature", lambda x: npx.softmax(x, temperature=2.0), lambda x: _softmax(x / 2.0), (S,)),
    Case("log_softmax", npx.log_softmax, lambda x: numpy.log(_softmax(x)), (S,), -2, 2),
    Case("log_softmax_axis0", lambda x: npx.log_softmax(x, axis=0), lambda x: numpy.log(_softmax(x, 0)), (S,)),
    Case("pick", lambda x: npx.pick(x, tnp.array([0, 2])), lambda x: x[[0, 1], [0, 2]], (S,),
         ops=frozenset({Op.GATHER})),
    Case("pick_axis0_keepdims", lambda x: npx.pick(x, tnp.array([1, 0, 1]), axis=0, keepdims=True),
         lambda x: x[[1, 0, 1], [0, 1, 2]][None, :], (S,)),
    Case("pick_clip", lambda x: npx.pick(x, tnp.array([5, -1])), lambda x: x[[0, 1], [2, 0]], (S,)),
    Case("pick_wrap", lambda x: npx.pick(x, tnp.array([4, -1]), mode="wrap"), lambda x: x[[0, 1], [1, 2]], (S,)),
    Case("one_hot", lambda x: npx.one_hot(tnp.array([0, 2, 1]), 3) * x,
         lambda x: numpy.eye(3, dtype=numpy.float32)[[0, 2, 1]] * x, ((3, 3),)),
    Case("stop_gradient_fwd", npx.stop_gradient, lambda x: x, (S,), grad=False, ops=frozenset({Op.STOP_GRADIENT})),
]
for _act, _ref in [
    ("relu", lambda x: numpy.maximum(x, 0)),
    ("sigmoid", lambda x: 1 / (1 + numpy.exp(-x))),
    ("tanh", numpy.tanh),
    ("softrelu", lambda x: numpy.logaddexp(0, x)),  # (log1p(exp(x)) overflows for large x)
    ("softsign", lambda x: x / (1 + numpy.abs(x))),
    ("log_sigmoid", lambda x: -numpy.logaddexp(0, -x)),
    ("mish", lambda x: x * numpy.tanh(numpy.logaddexp(0, x))),
]:
    NPX.append(Case(f"activation[{_act}]", (lambda a: lambda x: npx.activation(x, act_type=a))(_act), _ref, (S,),
                    positive_gap=0.1))

ALL: list[Case] = UNARY + BINARY + COMPARE + SCALAR + REDUCE + PRODUCT + BATCH_DOT + LAYOUT + INDEX + NPX

# numpy/linalg ops (issue 9)
import op_cases_linalg  # noqa: E402

LINALG: list[Case] = op_cases_linalg.build(Case)
ALL += LINALG

# nn ops (issue 9)
from op_cases_nn import NN  # noqa: E402  (it imports Case from here)

ALL += NN
GRAD: list[Case] = [c for c in ALL if c.grad]
