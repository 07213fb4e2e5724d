"""mx.init: each initializer's values against its formula (statistics on large samples)."""

from __future__ import annotations

import json

import numpy
import pytest

from tracegrad import initializer as init
from tracegrad import np


def _filled(ini, shape, name="weight", dtype="float32"):
    arr = np.zeros(shape, dtype=dtype)
    ini(init.InitDesc(name), arr)
    return arr.asnumpy()


def test_uniform_default_scale_and_range():
    np.random.seed(0)
    v = _filled(init.Uniform(), (200, 300))
    assert v.dtype == numpy.float32
    assert -0.07 <= v.min() < -0.069 and 0.069 < v.max() <= 0.07
    assert abs(v.mean()) < 1e-3
    assert abs(v.std() - 0.07 / numpy.sqrt(3)) < 1e-3


def test_normal_sigma():
    np.random.seed(1)
    v = _filled(init.Normal(0.5), (400, 400))
    assert abs(v.std() - 0.5) < 5e-3 and abs(v.mean()) < 5e-3


@pytest.mark.parametrize("factor_type", ["avg", "in", "out"])
def test_xavier_uniform_bound_uses_receptive_field(factor_type):
    np.random.seed(2)
    shape = (64, 32, 3, 3)
    v = _filled(init.Xavier(factor_type=factor_type, magnitude=2), shape)
    fan_in, fan_out = 32 * 9, 64 * 9
    factor = {"avg": (fan_in + fan_out) / 2, "in": fan_in, "out": fan_out}[factor_type]
    bound = numpy.sqrt(2 / factor)
    assert v.max() <= bound and v.min() >= -bound
    assert v.max() > 0.98 * bound and v.min() < -0.98 * bound


def test_xavier_gaussian_and_msraprelu_std():
    np.random.seed(3)
    v = _filled(init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=3), (500, 400))
    assert abs(v.std() - numpy.sqrt(3 / 400)) < 2e-3
    v = _filled(init.MSRAPrelu(factor_type="in", slope=0.0), (500, 400))
    assert abs(v.std() - numpy.sqrt(2 / 400)) < 2e-3


def test_xavier_rejects_vectors():
    with pytest.raises(ValueError, match="at least 2D"):
        _filled(init.Xavier(), (5,))


@pytest.mark.parametrize("shape", [(6, 10), (10, 6), (4, 3, 2)])
def test_orthogonal_rows_or_columns_orthonormal(shape):
    np.random.seed(4)
    v = _filled(init.Orthogonal(scale=2.0), shape).astype(numpy.float64).reshape(shape[0], -1)
    g = v @ v.T if v.shape[0] <= v.shape[1] else v.T @ v
    numpy.testing.assert_allclose(g, 4.0 * numpy.eye(g.shape[0]), atol=1e-5)


def test_constant_zero_one():
    numpy.testing.assert_array_equal(_filled(init.Constant(2.5), (2, 3)), numpy.full((2, 3), 2.5, numpy.float32))
    numpy.testing.assert_array_equal(_filled(init.Constant([1.0, 2.0]), (2, 2)), [[1, 2], [1, 2]])
    numpy.testing.assert_array_equal(_filled(init.Zero(), (3,), name="anything"), numpy.zeros(3))
    numpy.testing.assert_array_equal(_filled(init.One(), (3,)), numpy.ones(3))


def test_dispatch_by_name_bias_gamma_beta_and_unknown():
    u = init.Uniform(1.0)
    numpy.testing.assert_array_equal(_filled(u, (4,), "bias"), numpy.zeros(4))
    numpy.testing.assert_array_equal(_filled(u, (4,), "bn_gamma"), numpy.ones(4))
    numpy.testing.assert_array_equal(_filled(u, (4,), "beta"), numpy.zeros(4))
    numpy.testing.assert_array_equal(_filled(u, (4,), "running_var"), numpy.ones(4))
    with pytest.raises(ValueError, match="Unknown initialization pattern for foo"):
        _filled(u, (4,), "foo")
    # a per-parameter init in attrs wins over the name
    arr = np.zeros((3,))
    u(init.InitDesc("bias", {"__init__": "ones"}), arr)
    numpy.testing.assert_array_equal(arr.asnumpy(), numpy.ones(3))


def test_custom_subclass_and_registry():
    @init.register
    class MyInit(init.Initializer):
        def _init_weight(self, name, arr):
            arr[:] = np.arange(arr.size).reshape(arr.shape) * 2

    v = _filled(init.create("myinit"), (2, 3))
    numpy.testing.assert_array_equal(v, numpy.arange(6).reshape(2, 3) * 2)
    assert isinstance(init.create("zeros"), init.Zero) and isinstance(init.create("ones"), init.One)
    x = init.create(init.Xavier(magnitude=2).dumps())
    assert isinstance(x, init.Xavier) and x.magnitude == 2
    assert json.loads(init.Normal(0.3).dumps()) == ["normal", {"sigma": 0.3}]
    with pytest.raises(ValueError, match="unknown initializer 'nope'"):
        init.create("nope")
    with pytest.raises(NotImplementedError, match="_init_weight"):
        _filled(init.Initializer(), (2,))


def test_seed_makes_init_reproducible():
    np.random.seed(7)
    a = _filled(init.Xavier(), (5, 4))
    np.random.seed(7)
    b = _filled(init.Xavier(), (5, 4))
    numpy.testing.assert_array_equal(a, b)


def test_mixed_and_load():
    m = init.Mixed(["conv.*", ".*"], [init.One(), init.Constant(3.0)])
    numpy.testing.assert_array_equal(_filled(m, (2,), "conv_weight"), [1, 1])
    numpy.testing.assert_array_equal(_filled(m, (2,), "conv_bias"), [0, 0])  # One's bias rule, as MXNet
    numpy.testing.assert_array_equal(_filled(m, (2,), "weight"), [3, 3])
    ld = init.Load({"arg:weight": numpy.array([5.0, 6.0])}, default_init=init.Zero())
    numpy.testing.assert_array_equal(_filled(ld, (2,), "weight"), [5, 6])
    numpy.testing.assert_array_equal(_filled(ld, (2,), "other"), [0, 0])


def test_bilinear_and_lstm_bias():
    """Against MXNet 2.x's definitions, written as loops over every element."""
    from tracegrad.gluon import rnn

    arr = np.zeros((2, 1, 4, 3))
    init.Bilinear()("upsample_weight", arr)
    shape = arr.shape
    f = numpy.ceil(shape[3] / 2.0)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    want = numpy.zeros(int(numpy.prod(shape)))
    for i in range(want.size):
        x, y = i % shape[3], (i // shape[3]) % shape[2]
        want[i] = (1 - abs(x / f - c)) * (1 - abs(y / f - c))
    numpy.testing.assert_allclose(arr.asnumpy(), want.reshape(shape), rtol=1e-6)
    cell = rnn.LSTMCell(3, input_size=2, i2h_bias_initializer=init.LSTMBias(forget_bias=2.5))
    cell.initialize()
    numpy.testing.assert_array_equal(cell.i2h_bias.data().asnumpy(), [0] * 3 + [2.5] * 3 + [0] * 6)
    numpy.testing.assert_array_equal(cell.h2h_bias.data().asnumpy(), numpy.zeros(12))
    assert isinstance(init.create("lstmbias"), init.LSTMBias)
