"""The MXNet tutorial, line by line, printing what MXNet 2.0.0b1 prints (shared/seed/EXPECTED.md)."""

import re

from tracegrad import autograd, np, npx
from tracegrad.examples import tutorial_f


f = tutorial_f  # the tutorial's f(a), from tracegrad/examples.py


def test_basic_use_prints_as_mxnet():
    npx.set_np()
    x = np.array([[1, 2], [3, 4]])
    assert repr(x) == "array([[1., 2.],\n       [3., 4.]])"
    x.attach_grad()
    with autograd.record():
        y = 2 * x * x
    y.backward()
    assert repr(x.grad) == "array([[ 4.,  8.],\n       [12., 16.]])"
    assert repr((x.dtype, x.grad.dtype)) == "(float32, float32)"
    assert str(np.array([[1, 2], [3, 4]])) == "[[1. 2.]\n [3. 4.]]"


def test_other_forms():
    assert repr(np.array([1, 2, 3], dtype="float64")) == "array([1., 2., 3.], dtype=float64)"
    assert repr(np.array([1, 2, 3], dtype="int32")) == "array([1, 2, 3], dtype=int32)"
    assert repr(np.arange(3)) == "array([0., 1., 2.])"


def test_control_flow_example():
    for seed in range(20):
        np.random.seed(seed)
        a = np.random.uniform(size=2)
        a.attach_grad()
        with autograd.record():
            c = f(a)
        c.backward()
        eq = a.grad == c / a
        picked = 0 if (a.asnumpy().sum() >= 0) else 1
        expected = "array([ True, False])" if picked == 0 else "array([False,  True])"
        assert repr(eq) == expected
        assert re.fullmatch(r"array\(\d+\.\d*\)", repr(c))
        g = a.grad.asnumpy()
        assert g[1 - picked] == 0 and g[picked] == c.item() / a.asnumpy()[picked]


def test_second_backward_raises_graph_error():
    x = np.array([[1, 2], [3, 4]])
    x.attach_grad()
    with autograd.record():
        y = 2 * x * x
    y.backward()
    import pytest

    from tracegrad import GraphError

    with pytest.raises(GraphError, match="not in a computational graph"):
        y.backward()
