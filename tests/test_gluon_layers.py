"""gluon.nn basic layers and activations: forward vs numpy, gradients vs finite differences."""

from __future__ import annotations

import math

import numpy
import pytest

from tracegrad import autograd, np
from tracegrad import initializer as init
from tracegrad.gluon import nn

from gluon_helpers import as64, check_block_gradients

RS = numpy.random.RandomState(0)
X = RS.normal(size=(3, 4)) * 2
X[0, 0] = 0.0  # a zero among negatives and positives


def _erf(v):
    return numpy.vectorize(math.erf)(v)


ACTS = [
    (lambda: nn.Activation("relu"), lambda x: numpy.maximum(x, 0)),
    (lambda: nn.Activation("sigmoid"), lambda x: 1 / (1 + numpy.exp(-x))),
    (lambda: nn.Activation("tanh"), numpy.tanh),
    (lambda: nn.Activation("softrelu"), lambda x: numpy.log1p(numpy.exp(x))),
    (lambda: nn.Activation("softsign"), lambda x: x / (1 + numpy.abs(x))),
    (lambda: nn.LeakyReLU(0.2), lambda x: numpy.where(x > 0, x, 0.2 * x)),
    (lambda: nn.ELU(0.5), lambda x: numpy.where(x > 0, x, 0.5 * numpy.expm1(x))),
    (lambda: nn.SELU(), lambda x: 1.0507009873554805 * numpy.where(x > 0, x, 1.6732632423543772 * numpy.expm1(x))),
    (lambda: nn.GELU(), lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2)))),
    (lambda: nn.GELU(approximation="tanh"),
     lambda x: 0.5 * x * (1 + numpy.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))),
    (lambda: nn.SiLU(), lambda x: x / (1 + numpy.exp(-x))),
    (lambda: nn.Swish(2.0), lambda x: x / (1 + numpy.exp(-2 * x))),
]


@pytest.mark.parametrize("make,ref", ACTS, ids=[f"act{i}" for i in range(len(ACTS))])
def test_activation_forward_and_gradient(make, ref):
    layer = make()
    numpy.testing.assert_allclose(layer(np.array(X, dtype="float64")).asnumpy(), ref(X), rtol=1e-6, atol=2e-7)
    xg = X.copy()
    xg[0, 0] = 0.3  # finite differences need a point away from the kink
    check_block_gradients(layer, xg)


def test_activation_large_inputs_stay_finite():
    x = np.array([-100.0, -30.0, 30.0, 100.0])
    for layer in (nn.Activation("softrelu"), nn.ELU(), nn.SELU(), nn.GELU(), nn.SiLU()):
        x.attach_grad()
        with autograd.record():
            y = layer(x)
        y.backward()
        assert numpy.all(numpy.isfinite(y.asnumpy())) and numpy.all(numpy.isfinite(x.grad.asnumpy())), layer
    with pytest.raises(ValueError, match="act_type"):
        nn.Activation("nope")(x)


def test_prelu_per_channel():
    layer = nn.PReLU(alpha_initializer=init.Constant(0.1), in_channels=3)
    layer.initialize()
    x = RS.normal(size=(2, 3, 4))
    as64(layer, x)
    layer.alpha.set_data(numpy.array([0.1, 0.2, 0.3]))
    ref = numpy.where(x > 0, x, numpy.array([0.1, 0.2, 0.3])[None, :, None] * x)
    numpy.testing.assert_allclose(layer(np.array(x, dtype="float64")).asnumpy(), ref, rtol=1e-12)
    check_block_gradients(layer, x)
    shared = nn.PReLU()
    shared.initialize()
    assert shared.alpha.shape == (1,) and float(shared.alpha.data()[0]) == 0.25


@pytest.mark.parametrize("flatten", [True, False])
def test_dense_forward_and_gradients(flatten):
    layer = nn.Dense(3, activation="tanh", flatten=flatten)
    layer.initialize(init.Normal(0.5))
    x = RS.normal(size=(2, 4, 5))
    as64(layer, x)
    w, b = layer.weight.data().asnumpy(), layer.bias.data().asnumpy()
    assert w.shape == ((3, 20) if flatten else (3, 5))
    ref = numpy.tanh((x.reshape(2, 20) if flatten else x) @ w.T + b)
    numpy.testing.assert_allclose(layer(np.array(x, dtype="float64")).asnumpy(), ref, rtol=1e-12)
    check_block_gradients(layer, x)


def test_dense_options():
    layer = nn.Dense(4, use_bias=False, in_units=3, weight_initializer=init.One(), dtype="float64")
    layer.initialize()
    assert layer.bias is None and list(layer.collect_params()) == ["weight"]
    assert layer.weight.data().dtype == numpy.float64
    numpy.testing.assert_array_equal(layer(np.ones((2, 3), dtype="float64")).asnumpy(), numpy.full((2, 4), 3.0))
    assert repr(layer) == "Dense(3 -> 4, linear)"
    assert repr(nn.Dense(2, activation="relu")) == "Dense(-1 -> 2, Activation(relu))"


def test_embedding_forward_and_gradient():
    layer = nn.Embedding(6, 3)
    layer.initialize(init.Normal(1.0))
    idx = np.array([[0, 5, 2], [2, 2, 1]], dtype="int64")
    w = layer.weight.data().asnumpy()
    numpy.testing.assert_array_equal(layer(idx).asnumpy(), w[idx.asnumpy()])
    with autograd.record():
        y = layer(idx.astype("float32"))  # float indices as MXNet allows
    head = RS.normal(size=y.shape).astype(numpy.float32)
    y.backward(np.array(head))
    ref = numpy.zeros_like(w)
    numpy.add.at(ref, idx.asnumpy().reshape(-1), head.reshape(-1, 3))
    numpy.testing.assert_allclose(layer.weight.grad().asnumpy(), ref, rtol=1e-6)


def test_dropout_train_vs_predict():
    layer = nn.Dropout(0.5)
    x = np.ones((200, 50))
    numpy.testing.assert_array_equal(layer(x).asnumpy(), x.asnumpy())  # predict mode: identity
    with autograd.record():
        y = layer(x).asnumpy()
    kept = y != 0
    assert 0.45 < kept.mean() < 0.55 and numpy.all(y[kept] == 2.0)
    with autograd.record():
        y = nn.Dropout(0.5, axes=(1,))(x).asnumpy()
    assert numpy.all((y == 0).all(axis=1) | (y == 2).all(axis=1))  # one mask per row
    assert nn.Dropout(0.0)(x) is x


def test_flatten_and_identity_gradients():
    x = RS.normal(size=(2, 3, 2))
    numpy.testing.assert_array_equal(nn.Flatten()(np.array(x)).asnumpy(), x.reshape(2, 6).astype(numpy.float32))
    check_block_gradients(nn.Flatten(), x)


def test_layer_shape_errors_name_the_users_line():
    layer = nn.Dense(3, in_units=4)
    layer.initialize()
    with pytest.raises(ValueError, match=r"in_units=4\n  \(at .*test_gluon_layers.py:\d+"):
        layer(np.ones((2, 5)))
