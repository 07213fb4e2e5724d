"""MXNet 2.x semantics of ops: kinks, indexing, in-place writes, Function, npx, sync points.

See test_semantics.py for the list of MXNet behaviours deliberately not copied.
"""

from __future__ import annotations

import numpy
import pytest

from tracegrad import InPlaceError, autograd, npx
from tracegrad import np
from tracegrad.test_utils import check_numeric_gradient

from mx_helpers import _g, _leaf  # noqa: E402

# ---- op gradients with MXNet's choices at kinks -------------------------------------------------
def test_max_min_ties_each_get_full_gradient() -> None:
    x = _leaf([1.0, 3.0, 3.0])
    with autograd.record():
        y = x.max()
    y.backward()
    assert _g(x) == [0.0, 1.0, 1.0]
    with autograd.record():
        y = np.min(x * np.array([3.0, 1.0, 1.0]))
    y.backward()
    assert _g(x) == [3.0, 1.0, 1.0]
    m = _leaf([[2.0, 2.0], [1.0, 0.0]])
    with autograd.record():
        y = np.max(m, axis=1)
    y.backward()
    assert _g(m) == [[1.0, 1.0], [1.0, 0.0]]


def test_maximum_minimum_ties_go_to_the_left_operand() -> None:
    a, b = _leaf([1.0, 2.0]), _leaf([1.0, 3.0])
    with autograd.record():
        y = np.maximum(a, b) + np.minimum(a, b) * 10
    y.backward()
    assert _g(a) == [11.0, 10.0] and _g(b) == [0.0, 1.0]


def test_relu_at_zero_vs_maximum_at_zero() -> None:
    x = _leaf([-1.0, 0.0, 1.0])
    with autograd.record():
        y = npx.relu(x)
    y.backward()
    assert _g(x) == [0.0, 0.0, 1.0]
    with autograd.record():
        y = np.maximum(x, 0)
    y.backward()
    assert _g(x) == [0.0, 1.0, 1.0]
    with autograd.record():
        y = np.minimum(x, 0)
    y.backward()
    assert _g(x) == [1.0, 1.0, 0.0]


def test_abs_at_zero_and_clip_bounds_inclusive() -> None:
    x = _leaf([-1.0, 0.0, 1.0, 2.0])
    with autograd.record():
        y = np.abs(x)
    y.backward()
    assert _g(x) == [-1.0, 0.0, 1.0, 1.0]
    with autograd.record():
        y = np.clip(x, 0.0, 1.0)
    y.backward()
    assert _g(x) == [0.0, 1.0, 1.0, 0.0]
    with autograd.record():
        y = np.sign(x) * x
    y.backward()
    assert _g(x) == [-1.0, 0.0, 1.0, 1.0]  # sign has zero gradient


def test_power_gradient_wrt_exponent_is_nan_at_zero_base() -> None:
    x, p = _leaf([0.0, 2.0]), _leaf([2.0, 3.0])
    with autograd.record():
        y = x**p
    y.backward()
    g = p.grad.asnumpy()
    assert numpy.isnan(g[0]) or g[0] == 0.0  # 0 * log(0)
    numpy.testing.assert_allclose(g[1], 8 * numpy.log(2.0), rtol=1e-6)


def test_var_std_repeat_have_true_gradients() -> None:
    for f in (np.var, np.std, lambda a: (np.repeat(a, 2) ** 2).sum()):
        check_numeric_gradient(f, [numpy.array([1.0, 2.0, 4.0])])
    x = _leaf([1.0, 2.0, 4.0])
    with autograd.record():
        y = np.var(x)
    y.backward()
    assert numpy.abs(x.grad.asnumpy()).sum() > 0


def test_mean_of_float64_stays_float64_and_grad_dtype_follows_variable() -> None:
    x = _leaf([1.0, 2.0], dtype="float64")
    with autograd.record():
        y = np.mean(x)
    assert y.dtype == numpy.float64
    y.backward()
    assert x.grad.dtype == numpy.float64 and _g(x) == [0.5, 0.5]


# ---- indexing --------------------------------------------------------------------------------
def test_repeated_advanced_indices_accumulate() -> None:
    x = _leaf([1.0, 2.0, 3.0])
    with autograd.record():
        y = x[[0, 0, 2, 0]]
    y.backward()
    assert _g(x) == [3.0, 0.0, 1.0]
    m = _leaf([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    with autograd.record():
        y = m[[0, 0, 1], [1, 1, 2]]
    y.backward()
    assert _g(m) == [[0.0, 2.0, 0.0], [0.0, 0.0, 1.0]]


def test_cross_entropy_indexing_with_float32_labels() -> None:
    y_hat = _leaf([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
    labels = np.array([0, 2])
    assert labels.dtype == numpy.float32
    with autograd.record():
        loss = -np.log(y_hat[range(len(y_hat)), labels])
    numpy.testing.assert_allclose(loss.asnumpy(), -numpy.log([0.1, 0.5]), rtol=1e-6)
    loss.backward()
    numpy.testing.assert_allclose(y_hat.grad.asnumpy(), [[-10, 0, 0], [0, 0, -2]], rtol=1e-6)


def test_boolean_mask_gradient() -> None:
    x = _leaf([0.2, 0.7, 0.9, 0.1])
    with autograd.record():
        y = x[x > 0.5] * 2
    assert y.shape == (2,)
    y.backward()
    assert _g(x) == [0.0, 2.0, 2.0, 0.0]


def test_basic_indexing_views_and_copies() -> None:
    x = np.arange(12).reshape(3, 4)
    row = x[1]
    row[:] = 0  # contiguous: a view
    part = x[1:3]
    part[1, 0] = 99.0
    col = x[:, 1]
    col[:] = -1  # not contiguous: a copy
    step = x[::2]
    step[:] = -5
    assert x.asnumpy().tolist() == [[0, 1, 2, 3], [0, 0, 0, 0], [99, 9, 10, 11]]


def test_sliced_gradients_recorded_for_views_and_copies() -> None:
    x = _leaf(numpy.arange(6.0).reshape(2, 3))
    with autograd.record():
        y = x[1] * 2 + x[:, 1].sum() + x[:, ::-2].sum() * 10
    y.backward()
    assert _g(x) == [[30.0, 3.0, 30.0], [32.0, 5.0, 32.0]]  # scalar terms broadcast over 3


def test_setitem_with_index_arrays_and_masks_outside_record() -> None:
    x = np.zeros((4,))
    x[np.array([1, 3], dtype="int64")] = 5.0
    x[x > 1] += 1
    assert x.asnumpy().tolist() == [0.0, 6.0, 0.0, 6.0]


# ---- in-place writes ---------------------------------------------------------------------------
def test_in_place_inside_record_raises_on_graph_arrays() -> None:
    x = _leaf([1.0, 2.0])
    free = np.array([1.0, 2.0])
    with autograd.record():
        y = x * 2
        for write in (
            lambda: x.__iadd__(1),
            lambda: y.__imul__(2),
            lambda: x.__setitem__(0, 5.0),
            lambda: y.__setitem__(slice(None), 0.0),
        ):
            with pytest.raises(InPlaceError, match="Assigning to NDArrays that are already in a computational graph"):
                write()
        free += 1  # not in a graph: allowed
    assert free.asnumpy().tolist() == [2.0, 3.0]


def test_in_place_outside_record_is_seen_by_the_next_record() -> None:
    x = _leaf([1.0, 2.0])
    with autograd.record():
        y = (x * x).sum()
    y.backward()
    x -= 0.5 * x.grad  # an optimiser step
    x[0] = 10.0
    with autograd.record():
        y = x * x
    y.backward()
    assert _g(x) == [20.0, 0.0]


def test_mutating_a_leaf_never_changes_an_unevaluated_lazy_value() -> None:
    x = _leaf([1.0, 2.0])
    with autograd.record():
        y = x * x
    x[:] = 0
    assert y.asnumpy().tolist() == [1.0, 4.0]
    a = np.array([3.0])
    a.attach_grad()
    with autograd.record():
        b = a + 1
    a += 1
    assert b.asnumpy().tolist() == [4.0]


# ---- custom Function ------------------------------------------------------------------------
class Square(autograd.Function):
    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    def backward(self, g):
        (x,) = self.saved_tensors
        return 2 * x * g


class Mul(autograd.Function):
    def forward(self, x, y):
        self.save_for_backward(x, y)
        return x * y

    def backward(self, g):
        x, y = self.saved_tensors
        return g * y, g * x


class SplitTwo(autograd.Function):
    def forward(self, x):
        return x * 2, x * 3

    def backward(self, g1, g2):
        return g1 * 2 + g2 * 3


def test_function_forward_and_backward() -> None:
    x = _leaf([1.0, 2.0])
    f = Square()
    with autograd.record():
        y = f(x)
    assert f.saved_tensors[0] is x
    y.backward()
    assert _g(x) == [2.0, 4.0]


def test_function_forward_runs_paused_and_may_use_host_code() -> None:
    seen = {}

    class Host(autograd.Function):
        def forward(self, x):
            seen["rec"] = autograd.is_recording()
            return np.array(numpy.sin(x.asnumpy()))

        def backward(self, g):
            return g * 7

    x = _leaf([0.5])
    with autograd.record():
        y = Host()(x) * 2
    y.backward()
    assert seen["rec"] is False and _g(x) == [14.0]


def test_function_called_twice_raises() -> None:
    f = Square()
    f(np.array([1.0]))
    with pytest.raises(AssertionError, match="Each Function instance can only be called once"):
        f(np.array([1.0]))


def test_function_backward_wrong_count_raises() -> None:
    class Bad(autograd.Function):
        def forward(self, x, y):
            return x * y

        def backward(self, g):
            return g

    x, y = _leaf([1.0]), _leaf([2.0])
    with autograd.record():
        z = Bad()(x, y)
    with pytest.raises(AssertionError, match="Expecting 2 got 1"):
        z.backward()


def test_function_respects_grad_req_add_and_null_first() -> None:
    x = _leaf([1.0, 2.0], req="add")
    for _ in range(2):
        with autograd.record():
            y = Square()(x)
        y.backward()
    assert _g(x) == [4.0, 8.0]  # MXNet's callback drops 'add' silently; we do not
    a, b = _leaf([1.0, 2.0], req="null"), _leaf([3.0, 4.0])
    with autograd.record():
        z = Mul()(a, b)
    z.backward()
    assert _g(a) == [0.0, 0.0] and _g(b) == [1.0, 2.0]  # MXNet stops at the null input


def test_function_unused_output_gets_zero_gradient() -> None:
    x = _leaf([1.0])
    with autograd.record():
        p, q = SplitTwo()(x)
        y = p * 1
    y.backward()
    assert _g(x) == [2.0]


def test_function_composes_with_the_chain_rule() -> None:
    check_numeric_gradient(lambda a, b: np.sin(Mul()(np.exp(a), b)), [numpy.array([0.1, 0.4]), numpy.array([1.5, -0.5])])


# ---- npx ------------------------------------------------------------------------------------
def test_dropout_train_vs_predict_and_same_mask_in_backward() -> None:
    x = _leaf(numpy.ones(1000))
    with autograd.record():
        y = npx.dropout(x, p=0.5)
    yv = y.asnumpy()
    assert set(numpy.unique(yv).tolist()) == {0.0, 2.0}
    assert 300 < (yv == 0).sum() < 700
    y.backward()
    assert (x.grad.asnumpy() == yv).all()  # ones * mask/(1-p): the same mask
    assert (npx.dropout(x).asnumpy() == 1).all()  # predict mode outside record
    with autograd.record(train_mode=False):
        assert (npx.dropout(x).asnumpy() == 1).all()
    with autograd.train_mode():
        assert (npx.dropout(x).asnumpy() == 0).any()


def test_softmax_cross_entropy_gradient_is_softmax_minus_one_hot() -> None:
    x = _leaf([[1.0, 2.0, 3.0], [1.0, 0.0, -1.0]], dtype="float64")
    labels = np.array([2, 0])
    with autograd.record():
        loss = -(npx.one_hot(labels, 3) * npx.log_softmax(x)).sum()
    loss.backward()
    want = npx.softmax(x).asnumpy() - npx.one_hot(labels, 3).asnumpy()
    numpy.testing.assert_allclose(x.grad.asnumpy(), want, rtol=1e-12, atol=1e-15)
    x2 = _leaf([[1.0, 2.0, 3.0], [1.0, 0.0, -1.0]], dtype="float64")
    with autograd.record():
        loss = -npx.pick(npx.log_softmax(x2), labels).sum()
    loss.backward()
    numpy.testing.assert_allclose(x2.grad.asnumpy(), want, rtol=1e-12, atol=1e-15)


def test_one_hot_has_no_gradient() -> None:
    lab = _leaf([0.0, 1.0])
    x = _leaf([[1.0, 2.0], [3.0, 4.0]])
    with autograd.record():
        y = (npx.one_hot(lab, 2) * x).sum()
    y.backward()
    assert _g(lab) == [0.0, 0.0] and _g(x) == [[1.0, 0.0], [0.0, 1.0]]


def test_batch_dot_four_transpose_cases() -> None:
    rs = numpy.random.RandomState(0)
    a, b = rs.rand(2, 3, 3), rs.rand(2, 3, 3)
    for ta in (False, True):
        for tb in (False, True):
            aa = a.transpose(0, 2, 1) if ta else a
            bb = b.transpose(0, 2, 1) if tb else b
            got = npx.batch_dot(np.array(a, dtype="float64"), np.array(b, dtype="float64"),
                                transpose_a=ta, transpose_b=tb)
            numpy.testing.assert_allclose(got.asnumpy(), aa @ bb, rtol=1e-12)
            check_numeric_gradient(lambda p, q: npx.batch_dot(p, q, transpose_a=ta, transpose_b=tb), [a, b])


def test_dot_one_d_and_matrix_vector() -> None:
    x = _leaf(numpy.arange(4.0))
    with autograd.record():
        y = 2 * np.dot(x, x)
    assert y.shape == () and y.item() == 28.0
    y.backward()
    assert _g(x) == [0.0, 4.0, 8.0, 12.0]
    m = numpy.arange(6.0).reshape(2, 3)
    out = np.dot(np.array(m), np.array([1.0, 2.0, 3.0]))
    assert out.shape == (2,) and out.asnumpy().tolist() == [8.0, 26.0]


# ---- sync points ----------------------------------------------------------------------------
def test_sync_points_on_recorded_values() -> None:
    x = _leaf([2.0])
    with autograd.record():
        y = x * 3
        assert bool(y > 5) and float(y) == 6.0 and int(y) == 6 and y.item() == 6.0
        i = np.array([1], dtype="int64") * 1
        assert [10, 20][i] == 20
    with pytest.raises(ValueError):
        bool(np.array([1.0, 2.0]))
    with pytest.raises(AttributeError):
        np.array([1.0]).asscalar()


def test_ndarray_copies_and_views() -> None:
    a = np.array([1.0, 2.0])
    host = a.asnumpy()
    host[0] = 9.0  # asnumpy is a copy
    assert a.asnumpy().tolist() == [1.0, 2.0]
    b = np.zeros((2,))
    assert a.copyto(b) is b and b.asnumpy().tolist() == [1.0, 2.0]
    with pytest.warns(UserWarning, match="onto itself"):
        assert a.copyto(a) is False
    c = a.copy()
    c[0] = 5.0
    assert a.asnumpy().tolist() == [1.0, 2.0]
    assert a.as_np_ndarray() is a


def test_several_heads_duplicates_and_ancestors_accumulate() -> None:
    for _ in range(2):  # twice: the second pass reuses the derived program
        x = _leaf([1.0, 2.0])
        with autograd.record():
            y = x * x
        autograd.backward([y, y])
        assert _g(x) == [4.0, 8.0]
        with autograd.record():
            y = x * x
            z = y * 3
        autograd.backward([y, z])
        assert _g(x) == [8.0, 16.0]
        with autograd.record():
            y = x * x
        autograd.backward([y, x])
        assert _g(x) == [3.0, 5.0]


def test_function_without_forward_or_backward_says_what_to_define() -> None:
    class NoForward(autograd.Function):
        pass

    x = _leaf([1.0, 2.0])
    with autograd.record():
        with pytest.raises(NotImplementedError, match="forward must be defined by the subclass"):
            NoForward()(x)

    class NoBackward(autograd.Function):
        def forward(self, x):
            return x * 2

    with autograd.record():
        y = NoBackward()(x)
    with pytest.raises(NotImplementedError, match="backward must be defined by the subclass"):
        y.backward()
