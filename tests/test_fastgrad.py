"""backward()'s cached path gives what the general path (gradients emitted op by op) gives."""

from __future__ import annotations

import numpy
import pytest

from tracegrad import autograd, np, npx
from tracegrad.tracer import fastgrad

rs = numpy.random.RandomState(0)


def _leaf(shape, req="write"):
    x = np.array(rs.randn(*shape), dtype="float64")
    x.attach_grad(req)
    return x


def _gelu_mse(x, t, w, b):
    z = x * w + b
    h = 0.5 * z * (1 + np.tanh(0.7978845608 * (z + 0.044715 * z**3)))
    return ((h - t) ** 2).mean()


def _mlp(X, y, W1, b1, W2, b2):
    h = np.tanh(np.dot(X, W1) + b1)
    return -npx.pick(npx.log_softmax(np.dot(h, W2) + b2), y).mean()


def _paused(x):
    y = x * x
    with autograd.pause():
        c = y * 3
    return y + c


def _fanout(x, w):
    a = x * w
    return (a * a + np.sin(a) * w).sum() + (x.sum() * 2)


CASES = {
    "gelu_mse": (lambda: [np.array(rs.randn(7)), np.array(rs.randn(7)), _leaf((7,)), _leaf((7,))], _gelu_mse),
    "mlp": (
        lambda: [np.array(rs.randn(4, 6)), np.array([0, 2, 1, 2], dtype="int64"), _leaf((6, 5)), _leaf((5,)),
                 _leaf((5, 3)), _leaf((3,))],
        _mlp,
    ),
    "paused": (lambda: [_leaf((3,))], _paused),
    "fanout": (lambda: [_leaf((2, 3)), _leaf((2, 3), "add")], _fanout),
    "broadcast": (lambda: [_leaf((3, 1)), _leaf((4,))], lambda x, w: np.maximum(x * w, 0.1)),
}


def _run(make, f, fast: bool, monkeypatch):
    if not fast:
        monkeypatch.setattr(fastgrad, "try_backward", lambda *a, **k: False)
    args = make()
    for _ in range(2):  # twice: the second backward hits the cache (and 'add' accumulates)
        with autograd.record():
            out = f(*args)
        out.backward()
    monkeypatch.undo()
    return [a.grad.asnumpy() for a in args if a.grad is not None], out.asnumpy()


@pytest.mark.parametrize("name", sorted(CASES))
def test_fast_path_matches_general_path(name, monkeypatch):
    make, f = CASES[name]
    state = rs.get_state()
    fast = _run(make, f, True, monkeypatch)
    rs.set_state(state)
    slow = _run(make, f, False, monkeypatch)
    for a, b in zip(fast[0], slow[0]):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    numpy.testing.assert_allclose(fast[1], slow[1], rtol=1e-12)


def test_fast_path_is_taken_and_cached(monkeypatch):
    calls = []
    real = fastgrad._build
    monkeypatch.setattr(fastgrad, "_build", lambda *a: calls.append(1) or real(*a))
    fastgrad._CACHE.clear()
    x = _leaf((5,))
    for _ in range(3):
        with autograd.record():
            y = np.exp(x) * 2
        y.backward()
    assert len(calls) == 1
    numpy.testing.assert_allclose(x.grad.asnumpy(), 2 * numpy.exp(x.asnumpy()))


def test_structure_change_gets_new_plan():
    x = _leaf((5,))
    for f, d in [(lambda v: v * v, lambda v: 2 * v), (lambda v: v * v * v, lambda v: 3 * v * v)]:
        with autograd.record():
            y = f(x)
        y.backward()
        numpy.testing.assert_allclose(x.grad.asnumpy(), d(x.asnumpy()))
