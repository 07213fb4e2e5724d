"""gluon.Parameter / Constant: initialization (deferred too), data/grad identity, grad_req."""

from __future__ import annotations

import numpy
import pytest

from tracegrad import autograd, gluon, np
from tracegrad import initializer as init
from tracegrad.errors import UnsupportedError
from tracegrad.gluon.parameter import DeferredInitializationError, ParameterNotInitializedError


def test_default_init_uniform_007_and_grad_attached():
    np.random.seed(0)
    p = gluon.Parameter("weight", shape=(30, 40))
    p.initialize()
    v = p.data().asnumpy()
    assert v.dtype == numpy.float32 and v.shape == (30, 40)
    assert 0.06 < numpy.abs(v).max() <= 0.07
    assert p.grad().shape == (30, 40) and float(abs(p.grad()).sum()) == 0.0
    assert p.grad() is p.grad() and p.data() is p.data()
    assert p.list_ctx()[0] == "cpu(0)" and p.list_data()[0] is p.data()


def test_own_init_beats_default_init():
    p = gluon.Parameter("bias", shape=(3,), init="ones")
    p.initialize(default_init=init.Xavier())
    numpy.testing.assert_array_equal(p.data().asnumpy(), numpy.ones(3))
    p = gluon.Parameter("weight", shape=(2, 2))
    p.initialize(init=init.Constant(4.0))
    numpy.testing.assert_array_equal(p.data().asnumpy(), numpy.full((2, 2), 4.0))


def test_deferred_init():
    p = gluon.Parameter("weight", shape=(4, -1), allow_deferred_init=True, init=init.One())
    p.initialize()
    assert p.shape == (4, -1)
    with pytest.raises(DeferredInitializationError, match="first forward pass"):
        p.data()
    p.shape = (4, 5)
    with pytest.raises(ValueError, match="incompatible"):
        p.shape = (4, 6)
    p._finish_deferred_init()
    numpy.testing.assert_array_equal(p.data().asnumpy(), numpy.ones((4, 5)))
    q = gluon.Parameter("weight", shape=(4, 0))
    assert q.shape == (4, -1)
    with pytest.raises(ValueError, match="invalid shape"):
        q.initialize()
    with pytest.raises(ParameterNotInitializedError, match="initialize"):
        q.data()


def test_set_data_keeps_identity_and_gradients_flow():
    p = gluon.Parameter("weight", shape=(3,))
    p.initialize()
    d = p.data()
    p.set_data(np.array([1.0, -2.0, 3.0]))
    assert p.data() is d
    with autograd.record():
        y = (p.data() * p.data()).sum()
    y.backward()
    numpy.testing.assert_allclose(p.grad().asnumpy(), [2.0, -4.0, 6.0])
    p.zero_grad()
    numpy.testing.assert_array_equal(p.grad().asnumpy(), numpy.zeros(3))
    with pytest.raises(ValueError, match="shape"):
        p.set_data(numpy.zeros(4))


def test_grad_req_add_and_null():
    p = gluon.Parameter("weight", shape=(2,), grad_req="add")
    p.initialize(init=init.One())
    for _ in range(2):
        with autograd.record():
            y = (3 * p.data()).sum()
        y.backward()
    numpy.testing.assert_allclose(p.grad().asnumpy(), [6.0, 6.0])
    p.grad_req = "null"
    with pytest.raises(RuntimeError, match="grad_req='null'"):
        p.grad()
    p.grad_req = "write"
    assert p.grad().shape == (2,)
    with pytest.raises(ValueError, match="grad_req"):
        p.grad_req = "sometimes"


def test_cast_and_reinit():
    p = gluon.Parameter("weight", shape=(2, 2))
    p.initialize(init=init.Constant(1.5))
    p.cast("float64")
    assert p.dtype == "float64" and p.data().dtype == numpy.float64 and p.grad().dtype == numpy.float64
    numpy.testing.assert_array_equal(p.data().asnumpy(), numpy.full((2, 2), 1.5))
    with pytest.warns(UserWarning, match="already initialized"):
        p.initialize()
    p.initialize(init=init.Zero(), force_reinit=True)
    numpy.testing.assert_array_equal(p.data().asnumpy(), numpy.zeros((2, 2)))


def test_load_init_checks_shape_and_dtype():
    p = gluon.Parameter("weight", shape=(2, -1), allow_deferred_init=True)
    p.initialize()
    p._load_init(numpy.ones((2, 3), numpy.float32))
    assert p.shape == (2, 3) and p.grad().shape == (2, 3)
    with pytest.raises(ValueError, match="shape incompatible"):
        p._load_init(numpy.ones((3, 3), numpy.float32))
    with pytest.raises(TypeError, match="cast_dtype=True"):
        p._load_init(numpy.ones((2, 3), numpy.float64))
    p._load_init(numpy.full((2, 3), 2.0), cast_dtype=True)
    assert p.data().dtype == numpy.float32 and float(p.data().sum()) == 12.0


def test_constant_and_devices():
    c = gluon.Constant([[1, 2], [3, 4]])
    assert c.grad_req == "null" and c.shape == (2, 2)
    c.initialize(default_init=init.Uniform())  # what net.initialize(init) passes: the value stays
    numpy.testing.assert_array_equal(c.data().asnumpy(), [[1, 2], [3, 4]])
    p = gluon.Parameter("weight", shape=(2,))
    with pytest.raises(UnsupportedError, match="one device"):
        p.initialize(ctx=[np.zeros(1).device, np.zeros(1).device])
    p.initialize(ctx=["cpu(0)"])
    p.reset_ctx("cpu(0)")
    assert p.grad().shape == (2,)
