"""Gradients vs central differences in float64, generated from the op cases; broadcasting
and axis variants from hypothesis; second and third order against analytic derivatives.

`test_every_differentiable_row_is_exercised` fails when a differentiable row of ir.TABLE
is not reached by any gradient check here.
"""

from __future__ import annotations

import os

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tracegrad import GraphError, ShapeError, UnsupportedError, autograd, ir, npx
from tracegrad import np as tnp
from tracegrad.ir import Op
from tracegrad.test_utils import assert_almost_equal, check_numeric_gradient

from op_cases import GRAD, Case

# TG_EXAMPLES=200 runs a deeper search (the default run stays small and deterministic)
FAST = settings(max_examples=int(os.environ.get("TG_EXAMPLES", 15)), deadline=None, derandomize=True)


@pytest.mark.parametrize("case", GRAD, ids=lambda c: c.name)
def test_gradient_matches_central_differences(case: Case) -> None:
    # two runs of one structure: the second backward reuses what the first one derived
    for seed in (3, 4):
        check_numeric_gradient(case.tg, case.inputs(seed=seed), eps=case.eps, rtol=case.rtol, atol=1e-8, seed=seed)


def _autograd(case: Case, xs: list, dtype: str) -> list:
    args = [tnp.array(x, dtype=dtype) for x in xs]
    for a in args:
        a.attach_grad()
    with autograd.record():
        out = case.tg(*args)
    out.backward()
    for a in args:
        assert a.grad.dtype == numpy.dtype(dtype), (case.name, a.grad.dtype)
    return [a.grad.asnumpy().astype(numpy.float64) for a in args]


@pytest.mark.parametrize("case", GRAD, ids=lambda c: c.name)
def test_float32_gradient_close_to_float64(case: Case) -> None:
    xs = case.inputs(seed=5)
    for g32, g64 in zip(_autograd(case, xs, "float32"), _autograd(case, xs, "float64")):
        assert_almost_equal(g32, g64, rtol=2e-3, atol=2e-4, names=("float32", "float64"))


# ---- broadcasting and axes, from hypothesis ------------------------------------------------
BINARY = {
    "add": (tnp.add, -1.0, 1.0),
    "subtract": (tnp.subtract, -1.0, 1.0),
    "multiply": (tnp.multiply, -1.0, 1.0),
    "divide": (tnp.divide, 0.5, 2.0),
    "power": (tnp.power, 0.5, 2.0),
    "maximum": (tnp.maximum, -1.0, 1.0),
    "minimum": (tnp.minimum, -1.0, 1.0),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@FAST
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       seed=st.integers(0, 2**16))
def test_binary_gradient_broadcasting(name: str, shapes, seed: int) -> None:
    f, lo, hi = BINARY[name]
    rs = numpy.random.RandomState(seed)
    xs = [rs.uniform(lo, hi, s) for s in shapes.input_shapes]
    if name in ("maximum", "minimum"):  # no ties: the kink is not differentiable
        xs[1] = xs[1] + 0.05 * numpy.sign(xs[1] - 0.0) + 0.01
    check_numeric_gradient(f, xs, rtol=1e-5, atol=1e-8)


REDUCTIONS = {
    "sum": tnp.sum,
    "mean": tnp.mean,
    "max": tnp.max,
    "min": tnp.min,
    "prod": tnp.prod,
    "var": tnp.var,
    "std": tnp.std,
}


@st.composite
def _shape_and_axis(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    nd = len(shape)
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        axis = None
    elif kind == "int":
        axis = draw(st.integers(-nd, nd - 1))
    else:
        axis = tuple(draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True)))
    return shape, axis, draw(st.booleans())


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@FAST
@given(spec=_shape_and_axis(), seed=st.integers(0, 2**16))
def test_reduction_gradient_axes(name: str, spec, seed: int) -> None:
    shape, axis, keepdims = spec
    rs = numpy.random.RandomState(seed)
    n = int(numpy.prod(shape))
    # distinct values (no max/min ties), away from 0 (prod), spread enough for std
    x = (rs.permutation(n) + 1.0 + rs.uniform(0, 0.5, n)).reshape(shape) / n
    if name == "std" and (n == 1 or (axis is not None and all(shape[a] == 1 for a in numpy.atleast_1d(axis)))):
        return  # sqrt at a zero variance has no derivative
    f = REDUCTIONS[name]
    want = getattr(numpy, name)(x, axis=axis, keepdims=keepdims)
    got = f(tnp.array(x, dtype="float64"), axis=axis, keepdims=keepdims)
    assert got.shape == numpy.shape(want)
    assert_almost_equal(got.asnumpy(), want, rtol=1e-12, atol=1e-12)
    check_numeric_gradient(lambda a: f(a, axis=axis, keepdims=keepdims), [x], rtol=1e-5, atol=1e-8)


@FAST
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=1, max_dims=3, max_side=3),
       seed=st.integers(0, 2**16))
def test_where_gradient_broadcasting(shapes, seed: int) -> None:
    rs = numpy.random.RandomState(seed)
    c = rs.uniform(-1, 1, shapes.input_shapes[0]) > 0
    xs = [rs.uniform(-1, 1, s) for s in shapes.input_shapes[1:]]
    check_numeric_gradient(lambda x, y: tnp.where(tnp.array(c), x, y), xs)


@FAST
@given(shapes=hnp.mutually_broadcastable_shapes(signature="(m,n),(n,p)->(m,p)", min_dims=0, max_dims=2,
                                                max_side=3),
       seed=st.integers(0, 2**16))
def test_matmul_gradient_batch_broadcasting(shapes, seed: int) -> None:
    rs = numpy.random.RandomState(seed)
    xs = [rs.uniform(-1, 1, s) for s in shapes.input_shapes]
    out = tnp.matmul(*[tnp.array(x, dtype="float64") for x in xs])
    assert_almost_equal(out.asnumpy(), numpy.matmul(*xs), rtol=1e-12, atol=1e-12)
    check_numeric_gradient(tnp.matmul, xs)


@st.composite
def _indexed(draw, advanced: bool):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    if advanced:
        key = draw(hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=4)))
    else:
        key = draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    return shape, key


@pytest.mark.parametrize("advanced", [False, True], ids=["basic", "integer_arrays"])
@FAST
@given(spec=st.data(), seed=st.integers(0, 2**16))
def test_indexing_forward_and_gradient(advanced: bool, spec, seed: int) -> None:
    shape, key = spec.draw(_indexed(advanced))
    x = numpy.random.RandomState(seed).uniform(-1, 1, shape)
    want = x[key]
    got = tnp.array(x, dtype="float64")[key]
    assert got.shape == want.shape
    assert_almost_equal(got.asnumpy(), want, rtol=0, atol=0)
    if want.size:
        check_numeric_gradient(lambda a: a[key], [x])


# ---- exact values where finite differences cannot look ----------------------------------
def test_prod_gradient_exact_at_zero() -> None:
    for vals, want in [
        ([0.0, 2.0, 3.0], [6.0, 0.0, 0.0]),
        ([0.0, 2.0, 0.0], [0.0, 0.0, 0.0]),
        ([1.0, 2.0, 3.0], [6.0, 3.0, 2.0]),
    ]:
        x = tnp.array(vals, dtype="float64")
        x.attach_grad()
        with autograd.record():
            y = tnp.prod(x)
        y.backward()
        numpy.testing.assert_array_equal(x.grad.asnumpy(), want)
    x = tnp.array([[0.0, 2.0], [3.0, 4.0]], dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = tnp.prod(x, axis=1)
    y.backward()
    numpy.testing.assert_array_equal(x.grad.asnumpy(), [[2.0, 0.0], [4.0, 3.0]])


def test_stop_gradient_blocks_flow() -> None:
    x = tnp.array([1.0, 2.0])
    x.attach_grad()
    with autograd.record():
        y = npx.stop_gradient(x) + x
    y.backward()
    numpy.testing.assert_array_equal(x.grad.asnumpy(), [1.0, 1.0])


def test_astype_gradient_cast_back() -> None:
    x = tnp.array([1.0, 2.0], dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = (x.astype("float32") * 3).sum()
    y.backward()
    assert x.grad.dtype == numpy.float64
    numpy.testing.assert_array_equal(x.grad.asnumpy(), [3.0, 3.0])


# ---- higher order -------------------------------------------------------------------------
def _derivative(f, x):
    """d/dx sum(f(x)) as a recorded array (create_graph=True), so it can be differentiated."""
    with autograd.record():
        y = f(x)
    return autograd.grad(y, [x], create_graph=True)[0]


SECOND = {
    # name: (f, f'', domain)
    "sin": (tnp.sin, lambda x: -numpy.sin(x), (-2, 2)),
    "exp": (tnp.exp, numpy.exp, (-1, 1)),
    "tanh": (tnp.tanh, lambda x: -2 * numpy.tanh(x) * (1 - numpy.tanh(x) ** 2), (-1, 1)),
    "log": (tnp.log, lambda x: -1 / x**2, (0.5, 2)),
    "sigmoid": (npx.sigmoid, lambda x: (s := 1 / (1 + numpy.exp(-x))) * (1 - s) * (1 - 2 * s), (-2, 2)),
    "mul": (lambda x: x * x * x, lambda x: 6 * x, (-1, 1)),
    "div": (lambda x: 1.0 / x, lambda x: 2 / x**3, (0.5, 2)),
    "pow": (lambda x: tnp.power(x, tnp.array(2.5, dtype="float64")), lambda x: 2.5 * 1.5 * x**0.5, (0.5, 2)),
    "integer_pow": (lambda x: x**4, lambda x: 12 * x**2, (-1, 1)),
    "prod": (tnp.prod, lambda x: numpy.array([x[1] + x[2], x[0] + x[2], x[0] + x[1]]), (-1, 1)),
    "sum": (lambda x: tnp.sum(x) ** 2, lambda x: numpy.full_like(x, 2.0 * x.size), (-1, 1)),
    "slice": (lambda x: x[1:] ** 3, lambda x: numpy.r_[0.0, 6 * x[1:]], (-1, 1)),
    "gather": (lambda x: x[[0, 0, 2]] ** 3, lambda x: numpy.array([12 * x[0], 0.0, 6 * x[2]]), (-1, 1)),
    # numpy/linalg ops (issue 9): reflect padding copies x1 twice more: sum(pad(x)^3)'' = 6 [1, 3, 1] x
    "pad": (lambda x: tnp.pad(x, 1, mode="reflect") ** 3, lambda x: 6 * numpy.array([1.0, 3.0, 1.0]) * x, (-1, 1)),
    "det": (lambda x: tnp.linalg.det(x.reshape(3, 1, 1)) ** 3, lambda x: 6 * x, (0.5, 2)),  # via the adjugate
}


@pytest.mark.parametrize("name", sorted(SECOND))
def test_second_order(name: str) -> None:
    f, f2, (lo, hi) = SECOND[name]
    xv = numpy.random.RandomState(4).uniform(lo, hi, 3)
    x = tnp.array(xv, dtype="float64")
    x.attach_grad()
    dx = _derivative(f, x)
    dx.backward()
    assert_almost_equal(x.grad.asnumpy(), f2(xv), rtol=1e-10, atol=1e-12)


def test_second_order_matmul() -> None:
    rs = numpy.random.RandomState(5)
    av, bv = rs.uniform(-1, 1, (2, 3)), rs.uniform(-1, 1, (3, 2))
    a = tnp.array(av, dtype="float64")
    b = tnp.array(bv, dtype="float64")
    a.attach_grad()
    b.attach_grad()
    with autograd.record():
        y = (tnp.matmul(a, b) ** 2).sum()
    ga = autograd.grad(y, [a], create_graph=True)[0]  # 2 (ab) b^T
    with autograd.record():
        z = ga.sum()
    z.backward()
    # d/db sum(2 a b b^T) and d/da likewise, by hand
    # z = 2 sum_{i,j,k,l} a_ij b_jk b_lk
    ones = numpy.ones((2, 3))
    ca, cb = av.sum(0), bv.sum(0)
    want_b = 2 * (numpy.outer(ca, cb) + (ca @ bv)[None, :])
    want_a = 2 * ones @ bv @ bv.T
    assert_almost_equal(a.grad.asnumpy(), want_a, rtol=1e-10, atol=1e-12)
    assert_almost_equal(b.grad.asnumpy(), want_b, rtol=1e-10, atol=1e-12)


def test_second_order_by_finite_differences_of_the_gradient() -> None:
    """The create_graph gradient of softmax cross-entropy, differentiated numerically."""

    def first(x):
        if not x._in_graph:
            x.attach_grad()
        lab = tnp.array([2, 0])
        with autograd.record():
            loss = -(npx.one_hot(lab, 3, dtype="float64") * npx.log_softmax(x)).sum()
        return autograd.grad(loss, [x], create_graph=True)[0] * tnp.array([[1.0, 2.0, 3.0]], dtype="float64")

    check_numeric_gradient(first, [numpy.random.RandomState(6).uniform(-1, 1, (2, 3))], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    "values, axis",
    [([0.5, 1.5, 2.0, -0.7], None), ([0.0, 1.5, 2.0, -0.7], None), ([0.0, 1.5, 0.0, -0.7], None),
     ([0.0, 0.0, 0.0, 3.0], None), ([[0.0, 1.5, 2.0], [0.0, 0.0, 3.0], [1.0, 2.0, 3.0]], 1),
     ([[0.0, 1.5, 2.0], [0.0, 0.0, 3.0], [1.0, 2.0, 3.0]], 0)],
)
def test_second_order_prod_exact_at_zeros(values, axis) -> None:
    """prod is multilinear, so central differences of its gradient are exact even at zeros."""

    def first(x):
        if not x._in_graph:
            x.attach_grad()
        with autograd.record():
            y = tnp.prod(x, axis=axis)
        return autograd.grad(y, [x], create_graph=True)[0]

    check_numeric_gradient(first, [numpy.array(values)], rtol=1e-7, atol=1e-9)


def test_third_order_sin() -> None:
    xv = numpy.array([0.3, -1.2, 2.0])
    x = tnp.array(xv, dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = tnp.sin(x)
    d1 = autograd.grad(y, [x], create_graph=True)[0]
    assert_almost_equal(d1.asnumpy(), numpy.cos(xv), rtol=1e-12)
    d2 = autograd.grad(d1, [x], create_graph=True)[0]
    assert_almost_equal(d2.asnumpy(), -numpy.sin(xv), rtol=1e-12)
    d2.backward()
    assert_almost_equal(x.grad.asnumpy(), -numpy.cos(xv), rtol=1e-12)


# ---- the table is covered --------------------------------------------------------------------
class _Sq(autograd.Function):
    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    def backward(self, g):
        (x,) = self.saved_tensors
        return 2 * x * g


def _ops_seen(x) -> set:
    return {e.op for e in autograd.get_symbol(x).eqns}


def test_every_differentiable_row_is_exercised() -> None:
    """Each row with a gradient rule is reached by the checks above (via traced ops)."""
    seen: set = set()
    for case in GRAD:
        args = [tnp.array(v, dtype="float64") for v in case.inputs()]
        for a in args:
            a.attach_grad()
        with autograd.record():
            out = case.tg(*args)
        seen |= _ops_seen(out)
    for name, (f, _, (lo, hi)) in SECOND.items():
        x = tnp.array(numpy.linspace(lo, hi, 3) * 0.9, dtype="float64")
        x.attach_grad()
        seen |= _ops_seen(_derivative(f, x))
    x = tnp.array([1.0, 2.0])
    x.attach_grad()
    with autograd.record():
        seen |= _ops_seen(_Sq()(x))  # CUSTOM; its numeric check is in test_semantics.py
    differentiable = {op for op, row in ir.TABLE.items() if row.differentiable and row.vjp is not None}
    differentiable -= NO_HIGHER_ORDER
    missing = sorted(op.name for op in differentiable - seen)
    assert not missing, f"differentiable table rows without a gradient check: {missing}"
    lacking = sorted(op.name for op, row in ir.TABLE.items() if row.differentiable and row.vjp is None)
    assert not lacking, f"rows marked differentiable without a gradient rule: {lacking}"


def test_higher_order_without_a_rule_raises_instead_of_a_silent_zero() -> None:
    x = tnp.array([1.0, 2.0])
    x.attach_grad()
    with autograd.record():
        y = _Sq()(x)
    d = autograd.grad(y, [x], create_graph=True)[0]
    assert d.asnumpy().tolist() == [2.0, 4.0]
    with pytest.raises((UnsupportedError, GraphError)):  # its backward is host code: no graph
        d.backward()


# rows whose gradient rule raises UnsupportedError by design (checked just above)
NO_HIGHER_ORDER = {Op.CUSTOM_VJP}


def test_custom_function_gradient_numerically() -> None:
    check_numeric_gradient(lambda x: _Sq()(x) * 3.0, [numpy.array([0.5, -1.5, 2.0])])


def test_the_checker_catches_a_wrong_gradient() -> None:
    class WrongSquare(autograd.Function):
        def forward(self, x):
            self.save_for_backward(x)
            return x * x

        def backward(self, g):
            (x,) = self.saved_tensors
            return 2.1 * x * g  # off by 5%

    with pytest.raises(AssertionError, match="differ"):
        check_numeric_gradient(lambda x: WrongSquare()(x), [numpy.array([0.5, 1.5])])
    with pytest.raises(AssertionError, match="shapes differ"):
        assert_almost_equal(numpy.ones(2), numpy.ones(3))
    got = check_numeric_gradient(lambda x, y: x * y, [numpy.array([2.0]), numpy.array([3.0])], head_grad=None)
    assert [g.tolist() for g in got] == [[3.0], [2.0]]
    got = check_numeric_gradient(lambda x, y: x * y, [numpy.array([2.0]), numpy.array([3.0])], grad_inputs=[1])
    assert len(got) == 1
    got = check_numeric_gradient(lambda x, y: x * y, [numpy.array([2.0]), numpy.array([3.0])], head_grad=None,
                                 grad_nodes=[0], numeric_eps=1e-4)
    assert [g.tolist() for g in got] == [[3.0]]


# ---- random programs: fan-out, broadcasting, layout, sync points mid-record -----------------
_UNARY_STEPS = [
    tnp.sin,
    tnp.tanh,
    lambda a: tnp.exp(a * 0.3),
    lambda a: a * a,
    npx.sigmoid,
    lambda a: a.sum(axis=-1, keepdims=True),
    lambda a: a.max(axis=0, keepdims=True) if a.ndim else a,
    lambda a: -a,
    lambda a: tnp.transpose(a),
    lambda a: a[..., ::-1],
    None,  # a sync point: float() of a recorded value
]
_BINARY_STEPS = [tnp.add, tnp.multiply, tnp.subtract, lambda a, b: a / (b * b + 1.0)]


@st.composite
def _programs(draw):
    steps = []
    for _ in range(draw(st.integers(2, 7))):
        if draw(st.booleans()):
            steps.append(("u", draw(st.integers(0, len(_UNARY_STEPS) - 1)), draw(st.integers(0, 99))))
        else:
            steps.append(("b", draw(st.integers(0, len(_BINARY_STEPS) - 1)), draw(st.integers(0, 99)),
                          draw(st.integers(0, 99))))
    return steps


def _run_program(steps, x, y):
    pool = [x, y]
    for s in steps:
        if s[0] == "u":
            f, a = _UNARY_STEPS[s[1]], pool[s[2] % len(pool)]
            if f is None:
                float(a.sum())
                continue
            pool.append(f(a))
        else:
            a, b = pool[s[2] % len(pool)], pool[s[3] % len(pool)]
            try:
                pool.append(_BINARY_STEPS[s[1]](a, b))
            except ShapeError:
                pass  # shapes that do not broadcast: skip the step
    return tnp.sum(pool[-1] * 1.0) + tnp.sum(pool[len(pool) // 2]) + 0.1 * (x**3).sum() + 0.1 * (y**3).sum()


@pytest.mark.filterwarnings("ignore:x.T on an array")
@FAST
@given(steps=_programs(), seed=st.integers(0, 1000))
def test_random_programs_first_and_second_order(steps, seed: int) -> None:
    rs = numpy.random.RandomState(seed)
    x, y = rs.uniform(-1, 1, (2, 3)), rs.uniform(-1, 1, (3,))
    for scale in (1.0, 0.9):  # the second run reuses the first one's derived program
        check_numeric_gradient(lambda a, b: _run_program(steps, a, b), [x * scale, y], rtol=1e-5, atol=1e-7)

    def first(a, b):
        for v in (a, b):
            if not v._in_graph:
                v.attach_grad()
        with autograd.record():
            out = _run_program(steps, a, b)
        ga, gb = autograd.grad(out, [a, b], create_graph=True)
        return (ga * ga).sum() + (gb * tnp.array([1.0, 2.0, 3.0], dtype="float64")).sum()

    check_numeric_gradient(first, [x, y], rtol=1e-5, atol=1e-7)
