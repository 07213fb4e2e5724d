"""An in-place write never changes a lazy value that was recorded before it."""

import numpy

from tracegrad import autograd, np
from tracegrad.tracer import lazy


def _leaf(v):
    x = np.array(v)
    x.attach_grad()
    return x


def test_freed_reader_keeps_old_value_without_being_computed(monkeypatch):
    x = _leaf([1.0, 2.0, 3.0])
    with autograd.record():
        y = x * x  # an intermediate nobody read: it stays lazy through backward
        loss = (y * 2).sum()
    loss.backward()
    computed = []
    real = lazy.materialize
    monkeypatch.setattr(lazy, "materialize", lambda t, d=None: computed.append(len(t)) or real(t, d))
    x -= 0.5 * x.grad  # y is outside any graph now: it gets a copy of the old x
    assert computed == []
    numpy.testing.assert_allclose(y.asnumpy(), [1.0, 4.0, 9.0])
    numpy.testing.assert_allclose(x.asnumpy(), [1.0 - 2, 2.0 - 4, 3.0 - 6])


def test_reader_still_in_graph_is_computed_before_write():
    x = _leaf([1.0, 2.0])
    with autograd.record():
        y = x * 3
    x[:] = 0  # outside record: y (still in its graph) is computed from the old x first
    numpy.testing.assert_allclose(y.asnumpy(), [3.0, 6.0])


def test_view_write_freezes_readers_of_the_base():
    base = np.array([1.0, 2.0, 3.0, 4.0])
    w = _leaf([1.0, 1.0, 1.0, 1.0])
    with autograd.record():
        y = base * w
    y.backward()
    view = base[1:3]
    view[:] = 10
    numpy.testing.assert_allclose(y.asnumpy(), [1.0, 2.0, 3.0, 4.0])
    numpy.testing.assert_allclose(base.asnumpy(), [1.0, 10.0, 10.0, 4.0])


def test_sgd_loop_matches_numpy():
    rs = numpy.random.RandomState(1)
    X, t = rs.randn(8, 3), rs.randn(8)
    w0 = rs.randn(3)
    w = _leaf(w0)
    Xa, ta = np.array(X), np.array(t)
    ref = w0.astype(numpy.float32)
    for _ in range(20):
        with autograd.record():
            loss = ((np.dot(Xa, w) - ta) ** 2).mean()
        loss.backward()
        w -= 0.1 * w.grad
        g = 2 * (X.astype(numpy.float32) @ ref - t.astype(numpy.float32)) @ X.astype(numpy.float32) / 8
        ref = ref - 0.1 * g
    numpy.testing.assert_allclose(w.asnumpy(), ref, rtol=1e-4, atol=1e-5)
