"""Forward values of every API function vs numpy, eager and recorded (lazy, interpreted).

Generated from tests/op_cases.py; `test_every_table_row_has_a_forward_case` fails when a
row is added to ir.TABLE without a case that runs it.
"""

from __future__ import annotations

import numpy
import pytest

from tracegrad import autograd, ir
from tracegrad import np as tnp
from tracegrad import npx
from tracegrad.ir import Op

from op_cases import ALL, Case

FWD = [c for c in ALL if c.ref is not None]

# Rows with no API function of their own: exercised elsewhere (named file).
INTERNAL = {
    Op.GUARD: "test_printer.py (tutorial f(a) trace), test_semantics.py",
    Op.CUSTOM: "test_semantics.py (autograd.Function)",
    Op.ALLREDUCE: "test_distributed.py (collectives inside a jit step)",
    Op.CUSTOM_VJP: "test_semantics.py (autograd.Function backward)",
    Op.PROD_OTHERS: "test_gradients.py (prod gradient)",
    Op.SLICE_VJP: "test_gradients.py (second order through slicing)",
    Op.SCATTER_ADD: "test_gradients.py (second order through gathering)",
    Op.PAD_VJP: "test_gradients.py (second order through pad)",  # numpy/linalg ops (issue 9)
    Op.ADJUGATE: "test_gradients.py (det's gradient), test_linalg_ops.py",
}


def _ops_of(x) -> set:
    return {e.op for e in autograd.get_symbol(x).eqns}


def _run(case: Case, xs: list, record: bool):
    args = [tnp.array(x, dtype=x.dtype) for x in xs]
    if not record:
        return case.tg(*args)
    for a in args:
        a.attach_grad()
    with autograd.record():
        return case.tg(*args)


@pytest.mark.parametrize("case", FWD, ids=lambda c: c.name)
def test_forward_matches_numpy_float64(case: Case) -> None:
    xs = case.inputs(seed=1)
    want = numpy.asarray(case.ref(*xs))
    for record in (False, True):
        got = _run(case, xs, record)
        assert got.shape == want.shape, (case.name, record)
        assert got.dtype == want.dtype, (case.name, record, got.dtype, want.dtype)
        numpy.testing.assert_allclose(got.asnumpy(), want, rtol=1e-12, atol=1e-12, err_msg=case.name)


@pytest.mark.parametrize("case", FWD, ids=lambda c: c.name)
def test_forward_float32_stays_float32(case: Case) -> None:
    xs = [x.astype(numpy.float32) for x in case.inputs(seed=2)]
    want = numpy.asarray(case.ref(*xs))
    got = _run(case, xs, record=False)
    assert got.dtype == want.dtype, case.name
    numpy.testing.assert_allclose(got.asnumpy(), want, rtol=2e-6, atol=1e-6, err_msg=case.name)


def test_every_table_row_has_a_forward_case() -> None:
    seen: set = set()
    for case in ALL:
        xs = case.inputs()
        out = _run(case, xs, record=True)
        ops = _ops_of(out) if out._prod is not None else set()
        assert case.ops <= ops, f"{case.name}: expected ops {case.ops - ops} in its trace"
        seen |= ops
    missing = [op for op in ir.TABLE if op not in seen and op not in INTERNAL]
    assert not missing, f"table rows without a forward case in tests/op_cases.py: {missing}"


# ---- creation and random: MXNet's float32 default ------------------------------------------
def test_creation_defaults_float32() -> None:
    assert tnp.array([[1, 2], [3, 4]]).dtype == numpy.float32
    assert tnp.array(numpy.arange(3, dtype=numpy.int64)).dtype == numpy.float32
    assert tnp.array(numpy.ones(2, dtype=numpy.float64)).dtype == numpy.float32
    assert tnp.array([True, False]).dtype == numpy.bool_
    assert tnp.array([1, 2], dtype="float64").dtype == numpy.float64
    for f in (tnp.zeros, tnp.ones, tnp.empty):
        a = f((2, 3))
        assert a.shape == (2, 3) and a.dtype == numpy.float32
    assert (tnp.zeros((2,)).asnumpy() == 0).all() and (tnp.ones(3).asnumpy() == 1).all()
    full = tnp.full((2, 2), 7)
    assert full.dtype == numpy.float32 and (full.asnumpy() == 7).all()
    numpy.testing.assert_array_equal(tnp.arange(4).asnumpy(), numpy.arange(4, dtype=numpy.float32))
    assert tnp.arange(4).dtype == numpy.float32
    numpy.testing.assert_array_equal(tnp.arange(1, 7, 2).asnumpy(), [1, 3, 5])
    numpy.testing.assert_allclose(tnp.linspace(0, 1, 5).asnumpy(), numpy.linspace(0, 1, 5))
    numpy.testing.assert_array_equal(tnp.eye(3).asnumpy(), numpy.eye(3))
    numpy.testing.assert_array_equal(tnp.eye(2, 3, k=1).asnumpy(), numpy.eye(2, 3, k=1))
    x = tnp.array([[1, 2, 3]], dtype="float64")
    for f, v in ((tnp.zeros_like, 0), (tnp.ones_like, 1)):
        y = f(x)
        assert y.shape == x.shape and y.dtype == numpy.float64 and (y.asnumpy() == v).all()
    assert (tnp.full_like(x, 3).asnumpy() == 3).all()
    assert tnp.empty_like(x).shape == (1, 3)
    assert tnp.asarray(x) is x


def test_set_np_dtype_true_makes_float64_default() -> None:
    try:
        npx.set_np(dtype=True)
        assert tnp.array([1, 2]).dtype == numpy.float64
        assert tnp.random.uniform(size=2).dtype == numpy.float64
    finally:
        npx.set_np()
    assert tnp.array([1, 2]).dtype == numpy.float32


def test_random_is_seeded_float32_and_in_range() -> None:
    tnp.random.seed(3)
    a = tnp.random.uniform(2, 3, size=(100,))
    tnp.random.seed(3)
    b = tnp.random.uniform(2, 3, size=(100,))
    assert a.dtype == numpy.float32
    numpy.testing.assert_array_equal(a.asnumpy(), b.asnumpy())
    assert (a.asnumpy() >= 2).all() and (a.asnumpy() < 3).all()
    assert tnp.random.uniform().shape == ()
    n = tnp.random.normal(1.0, 0.1, size=(2000,))
    assert n.dtype == numpy.float32 and abs(float(n.asnumpy().mean()) - 1.0) < 0.02
    r = tnp.random.randint(0, 5, size=(50,))
    assert r.dtype.kind == "i" and r.asnumpy().min() >= 0 and r.asnumpy().max() < 5
    assert tnp.random.randn(2, 3).shape == (2, 3)
    npx.random.seed(5)
    c = tnp.random.uniform(size=3)
    tnp.random.seed(5)
    numpy.testing.assert_array_equal(c.asnumpy(), tnp.random.uniform(size=3).asnumpy())


def test_normal_with_attached_loc_and_scale_is_reparameterised() -> None:
    loc = tnp.array([0.5, -1.0], dtype="float64")
    scale = tnp.array([2.0, 0.5], dtype="float64")
    loc.attach_grad()
    scale.attach_grad()
    with autograd.record():
        s = tnp.random.normal(loc, scale)
    s.backward()
    numpy.testing.assert_allclose(loc.grad.asnumpy(), [1.0, 1.0])
    eps = (s.asnumpy() - loc.asnumpy()) / scale.asnumpy()
    numpy.testing.assert_allclose(scale.grad.asnumpy(), eps, rtol=1e-12)


def test_split_returns_a_list_and_comparisons_return_bool() -> None:
    parts = tnp.split(tnp.arange(6), 3)
    assert isinstance(parts, list) and [p.asnumpy().tolist() for p in parts] == [[0, 1], [2, 3], [4, 5]]
    assert repr(tnp.array([1, 2]) == tnp.array([1, 3])) == "array([ True, False])"
    assert (tnp.array([1.0, 2.0]) < 1.5).dtype == numpy.bool_


def test_one_hot_defaults() -> None:
    oh = npx.one_hot(tnp.array([0, 2]), 3)
    assert oh.dtype == numpy.float32
    numpy.testing.assert_array_equal(oh.asnumpy(), [[1, 0, 0], [0, 0, 1]])
    oh = npx.one_hot(tnp.array([1]), 2, on_value=5.0, off_value=-1.0, dtype="float64")
    assert oh.dtype == numpy.float64
    numpy.testing.assert_array_equal(oh.asnumpy(), [[-1, 5]])


def test_mean_of_float64_stays_float64_and_ints_become_float32() -> None:
    assert tnp.mean(tnp.array([1, 2], dtype="float64")).dtype == numpy.float64
    assert tnp.mean(tnp.array([1, 2], dtype="int32")).dtype == numpy.float32
    assert tnp.array([1, 2], dtype="int32").sum().dtype.kind == "i"
    assert tnp.mean(tnp.array([1.0, 2.0]), dtype="float64").dtype == numpy.float64


def test_methods_match_functions() -> None:
    x = numpy.random.RandomState(0).uniform(-1, 1, (2, 3))
    a = tnp.array(x, dtype="float64")
    numpy.testing.assert_allclose(a.sum(axis=1).asnumpy(), x.sum(axis=1))
    numpy.testing.assert_allclose(a.mean().asnumpy(), x.mean())
    numpy.testing.assert_allclose(a.max(axis=0, keepdims=True).asnumpy(), x.max(axis=0, keepdims=True))
    numpy.testing.assert_allclose(a.prod().asnumpy(), x.prod())
    numpy.testing.assert_allclose(a.var(axis=0).asnumpy(), x.var(axis=0))
    numpy.testing.assert_allclose(a.std().asnumpy(), x.std())
    numpy.testing.assert_allclose(a.transpose().asnumpy(), x.T)
    numpy.testing.assert_allclose(a.reshape((3, 2)).asnumpy(), x.reshape(3, 2))
    numpy.testing.assert_allclose(a.flatten().asnumpy(), x.ravel())
    numpy.testing.assert_allclose(a.clip(-0.5, 0.5).asnumpy(), x.clip(-0.5, 0.5))
    numpy.testing.assert_allclose((a @ a.T).asnumpy(), x @ x.T)
    numpy.testing.assert_allclose(a.dot(a.T).asnumpy(), x @ x.T)
    assert a.argmax().item() == x.argmax() and a.argmin(axis=1).asnumpy().tolist() == x.argmin(1).tolist()
    assert a.astype("float32").dtype == numpy.float32
    assert a.size == 6 and a.ndim == 2 and len(a) == 2
    assert numpy.asarray(a).dtype == numpy.float64
    assert a.copy() is not a and numpy.array_equal(a.copy().asnumpy(), x)
