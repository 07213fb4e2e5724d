"""Convolution, pooling and normalization layers: gradients vs finite differences (their
forwards are checked against MXNet's own outputs in test_gluon_mxnet_fixtures.py), shapes,
BatchNorm running statistics in train vs predict mode."""

from __future__ import annotations

import numpy
import pytest

from tracegrad import autograd, np
from tracegrad import initializer as init
from tracegrad.errors import UnsupportedError
from tracegrad.gluon import nn

from gluon_helpers import as64, check_block_gradients

RS = numpy.random.RandomState(0)

LAYERS = [
    (lambda: nn.Conv1D(2, 3, strides=2, padding=1), (2, 3, 7)),
    (lambda: nn.Conv2D(4, (2, 3), padding=(1, 0), dilation=(2, 1), groups=2, activation="tanh"), (1, 2, 5, 5)),
    (lambda: nn.Conv3D(2, 2, use_bias=False), (1, 2, 3, 3, 3)),
    (lambda: nn.Conv1DTranspose(2, 3, strides=2, padding=1, output_padding=1), (2, 2, 4)),
    (lambda: nn.Conv2DTranspose(3, 2, strides=2), (1, 2, 3, 3)),
    (lambda: nn.MaxPool2D(2, 1), (1, 2, 4, 4)),
    (lambda: nn.AvgPool1D(3, 2, padding=1, ceil_mode=True, count_include_pad=False), (2, 2, 6)),
    (lambda: nn.AvgPool3D(2), (1, 1, 4, 2, 4)),
    (lambda: nn.GlobalAvgPool2D(), (2, 3, 3, 2)),
    (lambda: nn.GlobalMaxPool1D(), (2, 3, 5)),
    (lambda: nn.LayerNorm(), (3, 5)),
    (lambda: nn.GroupNorm(2), (2, 4, 3)),
    (lambda: nn.InstanceNorm(scale=True), (2, 3, 4)),
    (lambda: nn.BatchNorm(), (4, 3, 2)),
]


@pytest.mark.parametrize("make,shape", LAYERS, ids=[f"layer{i}" for i in range(len(LAYERS))])
def test_layer_gradients_match_finite_differences(make, shape):
    layer = make()
    layer.initialize(init.Normal(0.5))
    x = RS.normal(size=shape)
    as64(layer, x)
    for name, p in layer.collect_params().items():  # non-trivial gammas and betas
        if name in ("gamma", "beta"):
            p.set_data(RS.normal(size=p.shape))
    check_block_gradients(layer, x, rtol=1e-5, atol=1e-6)


def test_batchnorm_gradients_in_training_mode():
    layer = nn.BatchNorm(momentum=0.5)
    layer.initialize()
    x = RS.normal(size=(5, 3))
    as64(layer, x)
    layer.gamma.set_data(numpy.array([0.5, 2.0, -1.0]))
    check_block_gradients(layer, x, train=True, rtol=1e-5, atol=1e-6)


def test_batchnorm_running_stats_train_vs_predict():
    layer = nn.BatchNorm(momentum=0.9, in_channels=2)
    layer.initialize()
    x = RS.normal(loc=3.0, scale=2.0, size=(8, 2, 3))
    xa = np.array(x)
    y_pred = layer(xa).asnumpy()  # predict mode: running stats (0, 1), unchanged
    numpy.testing.assert_allclose(y_pred, x / numpy.sqrt(1 + 1e-5), rtol=1e-5)
    numpy.testing.assert_array_equal(layer.running_mean.data().asnumpy(), [0, 0])
    with autograd.record():
        y = layer(xa)
    y.backward()
    mean = x.mean(axis=(0, 2))
    var = x.var(axis=(0, 2))
    ref = (x - mean[None, :, None]) / numpy.sqrt(var[None, :, None] + 1e-5)
    numpy.testing.assert_allclose(y.asnumpy(), ref, rtol=1e-4, atol=1e-5)
    numpy.testing.assert_allclose(layer.running_mean.data().asnumpy(), 0.1 * mean, rtol=1e-5)
    rv = layer.running_var.data().asnumpy()
    assert numpy.allclose(rv, 0.9 + 0.1 * var, rtol=1e-4) or numpy.allclose(rv, 0.9 + 0.1 * var * 24 / 23, rtol=1e-4)
    before = layer.running_mean.data().asnumpy().copy()
    layer(xa)  # predict mode again: no update
    numpy.testing.assert_array_equal(layer.running_mean.data().asnumpy(), before)
    g = nn.BatchNorm(use_global_stats=True, in_channels=2)
    g.initialize()
    with autograd.record():
        yg = g(xa)
    numpy.testing.assert_allclose(yg.asnumpy(), x / numpy.sqrt(1 + 1e-5), rtol=1e-5)
    numpy.testing.assert_array_equal(g.running_mean.data().asnumpy(), [0, 0])
    assert [p.grad_req for p in layer.collect_params().values()] == ["write", "write", "null", "null"]
    assert list(layer.collect_params()) == ["gamma", "beta", "running_mean", "running_var"]


def test_conv_shapes_names_and_errors():
    c = nn.Conv2D(6, 3, groups=2)
    assert c.weight.shape == (6, -1, 3, 3)
    c.initialize()
    assert c(np.ones((1, 4, 5, 5))).shape == (1, 6, 3, 3) and c.weight.shape == (6, 2, 3, 3)
    t = nn.Conv2DTranspose(5, 3, in_channels=2)
    assert t.weight.shape == (2, 5, 3, 3)
    assert nn.MaxPool2D()._strides == (2, 2) and nn.MaxPool1D(3)._strides == (3,)
    assert nn.GlobalAvgPool3D()(np.ones((2, 3, 2, 2, 2))).shape == (2, 3, 1, 1, 1)
    with pytest.raises(UnsupportedError, match="NHWC"):
        nn.Conv2D(2, 3, layout="NHWC")
    bad = nn.Conv2D(2, 3)
    bad.initialize()
    with pytest.raises(ValueError, match="4-D input"):
        bad(np.ones((2, 3, 4)))
    with pytest.raises(TypeError, match="count_include_pad"):
        nn.MaxPool2D(2, count_include_pad=False)
    assert repr(c) == "Conv2D(4 -> 6, kernel_size=(3, 3), stride=(1, 1), groups=2)"
