"""The numpy/linalg ops (issue 9) beyond the generated op cases: second order of einsum and
norm, norm's gradient at zero, the subgradients chosen, errors, and sampling."""

from __future__ import annotations

import math

import numpy
import pytest

from tracegrad import LinAlgError, ShapeError, UnsupportedError, autograd, npx
from tracegrad import np as tnp
from tracegrad.test_utils import assert_almost_equal, check_numeric_gradient


def _first_derivative(f):
    """x -> d/dx sum(f(x)^2) (create_graph=True), flattened into one array."""

    def first(*xs):
        for v in xs:
            if not v._in_graph:
                v.attach_grad()
        with autograd.record():
            y = f(*xs)
            y = (y * y).sum()
        gs = autograd.grad(y, list(xs), create_graph=True)
        return tnp.concatenate([g.reshape(-1) for g in gs])

    return first


SECOND = {
    "einsum_matmul": (lambda a, b: tnp.einsum("ij,jk->ik", a, b), [(2, 3), (3, 2)]),
    "einsum_trace_ellipsis": (lambda a, b: tnp.einsum("...ii,...i", a, b), [(2, 3, 3), (3,)]),
    "einsum_diag_out": (lambda a: tnp.einsum("ii->i", a) * 2.0, [(3, 3)]),
    "einsum_three": (lambda a, b, c: tnp.einsum("ij,jk,k->i", a, b, c), [(2, 3), (3, 2), (2,)]),
    "norm_vector": (lambda a: tnp.linalg.norm(a, axis=1), [(3, 4)]),
    "norm_fro": (lambda a: tnp.linalg.norm(a, "fro"), [(3, 4)]),
    "norm_p3": (lambda a: tnp.linalg.norm(a, 3, axis=0, keepdims=True), [(3, 4)]),
    "norm_nuc": (lambda a: tnp.linalg.norm(a, "nuc"), [(3, 4)]),
    "norm_2": (lambda a: tnp.linalg.norm(a, 2), [(4, 3)]),
    "norm_inf": (lambda a: tnp.linalg.norm(a, math.inf), [(3, 4)]),
    "det": (lambda a: tnp.linalg.det(a + tnp.array(numpy.eye(3) * 2, dtype=a.dtype)), [(2, 3, 3)]),
    "inv": (lambda a: tnp.linalg.inv(a + tnp.array(numpy.eye(3) * 2, dtype=a.dtype)), [(3, 3)]),
    "svd_values": (lambda a: tnp.linalg.svd(a)[1], [(3, 4)]),
}


@pytest.mark.parametrize("name", sorted(SECOND))
def test_second_order_by_finite_differences(name: str) -> None:
    f, shapes = SECOND[name]
    rs = numpy.random.RandomState(7)
    xs = [rs.uniform(0.2, 1.0, s) * rs.choice([-1.0, 1.0], s) for s in shapes]
    check_numeric_gradient(_first_derivative(f), xs, rtol=1e-5, atol=1e-7)


def test_second_order_einsum_is_exact_for_a_bilinear_form() -> None:
    """d2/dA dB of sum(einsum('ij,jk->ik', A, B)) contracted with ones, by hand."""
    rs = numpy.random.RandomState(1)
    av, bv = rs.normal(size=(2, 3)), rs.normal(size=(3, 4))
    a, b = tnp.array(av, dtype="float64"), tnp.array(bv, dtype="float64")
    a.attach_grad()
    b.attach_grad()
    with autograd.record():
        y = (tnp.einsum("ij,jk->ik", a, b) ** 2).sum()
    ga = autograd.grad(y, [a], create_graph=True)[0]  # 2 (AB) B^T
    with autograd.record():
        z = ga.sum()
    z.backward()
    assert_almost_equal(a.grad.asnumpy(), 2 * numpy.ones((2, 3)) @ bv @ bv.T, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("ord", [None, "fro", 1, 2, math.inf, -math.inf, "nuc", 3])
def test_norm_gradient_at_zero_is_a_subgradient_not_nan(ord) -> None:
    matrix = ord in ("fro", "nuc") or ord in (1, 2, math.inf, -math.inf)
    x = tnp.zeros((3, 3) if matrix else (4,), dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = tnp.linalg.norm(x, ord=ord)
    y.backward()
    g = x.grad.asnumpy()
    assert numpy.isfinite(g).all(), (ord, g)
    # a subgradient of a norm at 0 lies in the dual-norm unit ball
    if ord in (None, "fro", 3):
        assert (g == 0).all()
    elif ord in (2, "nuc"):
        assert numpy.linalg.norm(g, 2) <= 1 + 1e-12
    else:
        assert numpy.abs(g).sum() <= 1 + 1e-12


def test_norm_second_order_at_zero_is_finite() -> None:
    x = tnp.zeros((3,), dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = tnp.linalg.norm(x)
        d = autograd.grad(y, [x], create_graph=True)[0]
        z = (d * d).sum() + y
    z.backward()
    assert numpy.isfinite(x.grad.asnumpy()).all()
    numpy.testing.assert_array_equal(d.asnumpy(), [0.0, 0.0, 0.0])


def test_norm_values_match_numpy_for_every_order() -> None:
    rs = numpy.random.RandomState(3)
    m = rs.normal(size=(3, 4))
    for ord in [None, "fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf]:
        assert_almost_equal(tnp.linalg.norm(tnp.array(m, dtype="float64"), ord).asnumpy(),
                            numpy.linalg.norm(m, ord), rtol=1e-12, atol=1e-12)
    v = rs.normal(size=(5,))
    for ord in [None, 0, 1, 2, 3, 0.5, -1, math.inf, -math.inf]:
        assert_almost_equal(tnp.linalg.norm(tnp.array(v, dtype="float64"), ord).asnumpy(),
                            numpy.linalg.norm(v, ord), rtol=1e-12, atol=1e-12)


def test_sort_gradient_routes_to_original_positions() -> None:
    x = tnp.array([3.0, 1.0, 2.0], dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = tnp.sort(x) * tnp.array([1.0, 10.0, 100.0], dtype="float64")
    y.backward()
    numpy.testing.assert_array_equal(x.grad.asnumpy(), [100.0, 1.0, 10.0])


def test_descending_order_is_stable_and_topk_matches_mxnet_examples() -> None:
    x = tnp.array([1.0, 2.0, 2.0, 0.0])
    assert tnp.argsort(x, descending=True).asnumpy().tolist() == [1, 2, 0, 3]
    m = tnp.array([[0.3, 0.2, 0.4], [0.1, 0.3, 0.2]])
    idx = npx.topk(m)
    assert idx.dtype == numpy.float32 and idx.asnumpy().tolist() == [[2.0], [1.0]]
    numpy.testing.assert_allclose(npx.topk(m, ret_typ="value", k=2, is_ascend=True).asnumpy(),
                                  [[0.2, 0.3], [0.1, 0.2]])
    numpy.testing.assert_allclose(npx.topk(m, axis=0, ret_typ="value", k=2).asnumpy(),
                                  [[0.3, 0.3, 0.4], [0.1, 0.2, 0.2]])
    vals, ids = npx.topk(m, ret_typ="both", k=2)
    assert ids.asnumpy().tolist() == [[2.0, 0.0], [1.0, 2.0]]
    assert npx.topk(m, k=2, ret_typ="mask").asnumpy().tolist() == [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]
    assert npx.topk(m, axis=None, k=1, dtype="int64").asnumpy().tolist() == [2]
    assert npx.topk(m, k=0, ret_typ="value").shape == (2, 3)  # k < 1: all, sorted


def test_svd_reconstructs_and_follows_mxnet_shapes() -> None:
    a = numpy.arange(54.0).reshape(6, 9) / 10
    ut, s, v = tnp.linalg.svd(tnp.array(a, dtype="float64"))
    assert (ut.shape, s.shape, v.shape) == ((6, 6), (6,), (6, 9))
    assert_almost_equal((ut.asnumpy() * s.asnumpy()) @ v.asnumpy(), a, rtol=1e-10, atol=1e-10)


def test_slogdet_and_eigh_return_pairs() -> None:
    a = numpy.array([[2.0, 1.0], [1.0, 3.0]])
    sign, logdet = tnp.linalg.slogdet(tnp.array(a, dtype="float64"))
    assert sign.item() == 1.0 and abs(logdet.item() - math.log(5.0)) < 1e-12
    w, v = tnp.linalg.eigh(tnp.array(a, dtype="float64"))
    assert_almost_equal(w.asnumpy(), numpy.linalg.eigvalsh(a), rtol=1e-12, atol=1e-12)


def test_det_gradient_is_the_adjugate_also_at_singular_matrices() -> None:
    x = tnp.array([[1.0, 2.0], [2.0, 4.0]], dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = tnp.linalg.det(x)
    y.backward()
    numpy.testing.assert_allclose(x.grad.asnumpy(), [[4.0, -2.0], [-2.0, 1.0]], rtol=1e-12, atol=1e-12)
    rank1 = numpy.outer([1.0, 2.0, 0.5], [0.3, -1.0, 2.0])
    check_numeric_gradient(tnp.linalg.det, [rank1 + numpy.diag([0.0, 0.0, 0.7])], rtol=1e-6, atol=1e-9)
    check_numeric_gradient(tnp.linalg.det, [numpy.zeros((3, 3))], atol=1e-9)


def test_cholesky_gradient_is_zero_above_the_diagonal() -> None:
    x = tnp.array([[4.0, 9.0], [2.0, 3.0]], dtype="float64")  # the 9.0 is never read
    x.attach_grad()
    with autograd.record():
        y = tnp.linalg.cholesky(x)
    y.backward()
    assert x.grad.asnumpy()[0, 1] == 0.0


# ---- errors --------------------------------------------------------------------------------
def test_bad_einsum_subscripts_name_the_op_shapes_and_line() -> None:
    a, b = tnp.ones((2, 3)), tnp.ones((2, 3))
    cases = [("ij,jk->ik", "letter 'j' has sizes"), ("ij,jl->ik", "appear in no operand"),
             ("ij,jk,kl", "3 operand terms for 2 operands"), ("i.j,jk", "stray '.'"),
             ("ij,j1", "invalid subscript characters"), ("ijk,jk", "names 3 dims"),
             ("...j,ij->i", "no '...' in the output"), ("ij,ik->ii", "twice")]
    for spec, why in cases:
        with pytest.raises(ShapeError) as info:
            tnp.einsum(spec, a, b)
        msg = str(info.value)
        assert why in msg and "einsum" in msg and "float32[2, 3]" in msg and "test_linalg_ops.py" in msg, msg


def test_non_square_and_wrong_dtype_matrices_raise() -> None:
    for f in (tnp.linalg.inv, tnp.linalg.det, tnp.linalg.cholesky, tnp.linalg.eigh, tnp.linalg.slogdet):
        with pytest.raises(ShapeError) as info:
            f(tnp.ones((2, 3)))
        assert "(2, 3)" in str(info.value) and "test_linalg_ops.py" in str(info.value)
    with pytest.raises(ShapeError, match="right-hand side"):
        tnp.linalg.solve(tnp.eye(3), tnp.ones((2, 2)))
    with pytest.raises(ShapeError, match="norm order"):
        tnp.linalg.norm(tnp.ones((2, 2)), ord=3)
    with pytest.raises(UnsupportedError, match="mode 'wrap'"):
        tnp.pad(tnp.ones(3), 1, mode="wrap")
    with pytest.raises(ShapeError, match="k=5 is larger"):
        npx.topk(tnp.ones((2, 3)), k=5)
    assert tnp.linalg.inv(tnp.array([[2, 0], [0, 4]], dtype="int32")).dtype == numpy.float32  # ints: float32


def test_non_finite_matrices_give_nan_without_error_or_warning() -> None:
    import warnings

    a = numpy.array([[[numpy.nan, 1.0], [1.0, 2.0]], [[2.0, 1.0], [1.0, 3.0]]])
    x = tnp.array(a, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for f in (tnp.linalg.inv, tnp.linalg.cholesky, tnp.linalg.det, lambda m: tnp.linalg.svd(m)[1],
                  lambda m: tnp.linalg.eigh(m)[0], lambda m: tnp.linalg.solve(m, tnp.ones((2, 2), dtype="float64"))):
            r = f(x).asnumpy()
            assert numpy.isnan(r[0]).all() and numpy.isfinite(r[1]).all()
    assert_almost_equal(tnp.linalg.inv(x).asnumpy()[1], numpy.linalg.inv(a[1]), rtol=1e-12, atol=1e-12)


def test_singular_matrices_raise_linalg_error_with_lines() -> None:
    s = tnp.array([[1.0, 2.0], [2.0, 4.0]])
    with pytest.raises(LinAlgError) as info:
        tnp.linalg.inv(s)
    assert "inv: Singular matrix" in str(info.value) and "test_linalg_ops.py" in str(info.value)
    assert isinstance(info.value, numpy.linalg.LinAlgError)
    s.attach_grad()
    with autograd.record():
        y = tnp.linalg.solve(s, tnp.ones(2))
        z = y.sum()
    with pytest.raises(LinAlgError) as info:
        z.backward()
    msg = str(info.value)
    assert "solve" in msg and "recorded at" in msg and "computed at" in msg and "test_linalg_ops.py" in msg
    with pytest.raises(LinAlgError, match="not positive definite"):
        tnp.linalg.cholesky(-tnp.eye(2))


# ---- sampling ------------------------------------------------------------------------------
def test_multinomial_counts_and_seeding() -> None:
    tnp.random.seed(11)
    a = tnp.random.multinomial(20, [0.2, 0.3, 0.5], size=(4,))
    tnp.random.seed(11)
    b = tnp.random.multinomial(20, tnp.array([0.2, 0.3, 0.5]), size=(4,))
    assert a.shape == (4, 3) and a.dtype == numpy.int64
    numpy.testing.assert_array_equal(a.asnumpy(), b.asnumpy())
    assert (a.asnumpy().sum(axis=1) == 20).all()
    assert tnp.random.multinomial(5, [1.0]).asnumpy().tolist() == [5]
    big = tnp.random.multinomial(100000, [0.1, 0.9]).asnumpy()
    assert abs(big[0] / 100000 - 0.1) < 0.01
    with pytest.raises(ShapeError, match="pvals"):
        tnp.random.multinomial(3, [[0.5, 0.5]])


def test_choice_with_probabilities() -> None:
    tnp.random.seed(2)
    c = tnp.random.choice(3, size=20000, p=[0.7, 0.0, 0.3]).asnumpy()
    assert c.dtype == numpy.int64 and set(numpy.unique(c)) <= {0, 2}
    assert abs((c == 0).mean() - 0.7) < 0.02
    tnp.random.seed(2)
    d = tnp.random.choice(3, size=20000, p=tnp.array([0.7, 0.0, 0.3], dtype="float64")).asnumpy()
    numpy.testing.assert_array_equal(c, d)
    v = tnp.random.choice(tnp.array([5.0, 6.0]), size=4, p=[0.0, 1.0]).asnumpy()
    assert v.tolist() == [6.0] * 4


# ---- tracegrad.jit -------------------------------------------------------------------------
def test_jit_step_with_einsum_linalg_sort_and_multinomial_replays():
    import tracegrad

    def body(x, w):
        counts = tnp.random.multinomial(10, [0.25, 0.75], size=(2,))
        with autograd.record():
            h = tnp.einsum("ij,jk->ik", x, w)
            u, s, v = tnp.linalg.svd(h)
            sign, logdet = tnp.linalg.slogdet(tnp.matmul(h.T, h) + tnp.eye(2, dtype="float64"))
            loss = tnp.linalg.norm(h) + s.sum() + logdet + tnp.sort(h, axis=0)[0].sum()
        loss.backward()
        return loss, counts * 1  # (returning the raw sample itself trips the jit: see the report)

    rs = numpy.random.RandomState(0)
    for backend in ("interpret",):  # (the compiled path of these rows: tests/codegen/test_compiled_linalg.py)
        step = tracegrad.jit(body, backend=backend)
        for i in range(3):
            xv, wv = rs.normal(size=(3, 4)), rs.normal(size=(4, 2))
            x, w = tnp.array(xv, dtype="float64"), tnp.array(wv, dtype="float64")
            w.attach_grad()
            tnp.random.seed(i)
            loss, counts = step(x, w)
            got_grad = w.grad.asnumpy().copy()
            w2 = tnp.array(wv, dtype="float64")
            w2.attach_grad()
            tnp.random.seed(i)
            loss_ref, counts_ref = body(x, w2)
            assert_almost_equal(loss.asnumpy(), loss_ref.asnumpy(), rtol=1e-10, atol=1e-10)
            assert_almost_equal(got_grad, w2.grad.asnumpy(), rtol=1e-9, atol=1e-10)
            numpy.testing.assert_array_equal(counts.asnumpy(), counts_ref.asnumpy())
        assert step.counters.replays == 2, (backend, step.counters)
