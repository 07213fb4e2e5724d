"""tracegrad.install_as_mxnet(): MXNet imports resolve to tracegrad; unimplemented MXNet
modules import and fail clearly on use; `python -m tracegrad run script.py` runs MXNet code."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy
import pytest

import tracegrad
from tracegrad.errors import UnsupportedError
from tracegrad.mxnet_compat import uninstall

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(tracegrad.__file__)))


@pytest.fixture
def mx():
    tracegrad.install_as_mxnet()
    import mxnet

    yield mxnet
    uninstall()


def test_imports_resolve_to_tracegrad(mx):
    from mxnet import autograd, context, device, gluon, init, initializer, np, npx, random, test_utils, util
    from mxnet import lr_scheduler, metric, optimizer
    from mxnet.gluon import data, loss, nn, rnn

    assert optimizer.SGD is tracegrad.optimizer.SGD and lr_scheduler is tracegrad.lr_scheduler
    assert loss.L2Loss is tracegrad.gluon.loss.L2Loss and data.DataLoader is tracegrad.gluon.data.DataLoader
    assert metric.Accuracy is tracegrad.gluon.metric.Accuracy and gluon.Trainer is tracegrad.gluon.Trainer

    assert np is tracegrad.np and npx is tracegrad.npx and autograd is tracegrad.autograd
    assert gluon is tracegrad.gluon and nn.Dense is tracegrad.gluon.nn.Dense and rnn.LSTM is tracegrad.gluon.rnn.LSTM
    assert init is initializer is tracegrad.initializer and mx.init.Xavier is tracegrad.initializer.Xavier
    assert mx.cpu() == "cpu(0)" and mx.context.num_gpus() == context.num_gpus() >= 0
    assert device.current_device() == mx.current_context() and mx.Context is mx.Device
    import mxnet.gluon.nn as nn2
    import mxnet.numpy as mnp

    assert nn2 is nn and mnp is np
    assert util.is_np_array() and util.use_np(len) is len and test_utils.same(np.ones(2), numpy.ones(2))
    random.seed(3)
    a = np.random.uniform(size=3).asnumpy()
    mx.random.seed(3)
    numpy.testing.assert_array_equal(a, np.random.uniform(size=3).asnumpy())
    assert mx.__version__.startswith("2.")


def test_errors_are_mxnet_errors(mx):
    from mxnet import np
    from mxnet.base import MXNetError

    with pytest.raises(MXNetError):
        np.ones((2, 3)) @ np.ones((2, 3))
    assert mx.MXNetError is MXNetError


MXNET_2_PACKAGE = (  # every module MXNet 2.0.0b1's `mxnet/__init__.py` imports
    "context device engine error base util contrib ndarray nd numpy np numpy_extension npx name sym np_symbol "
    "symbol symbol_doc io recordio operator rnd random optimizer model notebook initializer init visualization "
    "viz callback lr_scheduler rtc profiler log image img test_utils gluon kvstore kv kvstore_server library tvmop "
    "numpy_op_signature numpy_dispatch_protocol numpy_op_fallback api container autograd metric").split()


def test_every_mxnet_2_module_name_imports(mx):
    import importlib

    for name in MXNET_2_PACKAGE:
        assert importlib.import_module(f"mxnet.{name}") is getattr(mx, name), name


def test_unimplemented_modules_import_and_fail_on_use(mx):
    from mxnet import image, kv, nd, sym  # noqa: F401  (import works)
    import mxnet.ndarray

    with pytest.raises(UnsupportedError, match="mxnet.np / mxnet.npx"):
        mx.nd.array([1, 2])
    with pytest.raises(UnsupportedError, match="HybridBlock"):
        sym.var("x")
    with pytest.raises(UnsupportedError, match="not provided"):
        mxnet.ndarray.zeros((2,))
    with pytest.raises(ModuleNotFoundError, match="mxnet.not_a_module"):
        import mxnet.not_a_module  # noqa: F401
    with pytest.raises(AttributeError):
        mx.not_an_attribute


def test_test_utils_helpers(mx):
    from mxnet import np, test_utils

    test_utils.assert_almost_equal(np.array([1.0, 2.0]), numpy.array([1.0, 2.0 + 1e-7]), rtol=1e-5, atol=1e-6)
    with pytest.raises(AssertionError):
        test_utils.assert_almost_equal(np.array([1.0]), numpy.array([1.1]))
    assert test_utils.default_context() == mx.cpu()
    test_utils.set_default_device(mx.cpu())
    assert test_utils.default_device() == mx.cpu()
    x = test_utils.rand_ndarray((2, 3))
    assert x.shape == (2, 3) and x.dtype == numpy.float32
    with test_utils.environment("TRACEGRAD_TEST_ENV_X", "7"):
        assert os.environ["TRACEGRAD_TEST_ENV_X"] == "7"
    assert "TRACEGRAD_TEST_ENV_X" not in os.environ
    test_utils.check_numeric_gradient(lambda a: (a * a).sum(), [numpy.array([1.0, -2.0])])


SCRIPT = textwrap.dedent('''
    import sys
    import mxnet as mx
    from mxnet import autograd, gluon, init, np, npx
    from mxnet.gluon import nn
    from mxnet.gluon.data import ArrayDataset, DataLoader
    npx.set_np()
    mx.random.seed(0)
    ctx = mx.cpu()
    X = np.random.normal(size=(64, 4))
    w_true = np.array([[1.0], [-2.0], [0.5], [3.0]])
    y = np.dot(X, w_true) + 0.1
    loader = DataLoader(ArrayDataset(X, y), batch_size=16, shuffle=True)
    net = nn.HybridSequential()
    with net.name_scope():
        net.add(nn.Dense(8, activation="relu"))
        net.add(nn.Dense(1))
    net.initialize(init.Xavier(), ctx=ctx)
    net.hybridize()
    loss_fn = gluon.loss.L2Loss()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": float(sys.argv[1]), "momentum": 0.9})
    metric = mx.gluon.metric.MSE()
    for epoch in range(30):
        for data, label in loader:
            data, label = data.as_in_context(ctx), label.as_in_context(ctx)
            with autograd.record():
                loss = loss_fn(net(data), label)
            loss.backward()
            trainer.step(data.shape[0])
    metric.update(y, net(X))
    name, mse = metric.get()
    print("first-layer", net[0].weight.shape, "final-%s %.4f" % (name, mse))
    assert mse < 1.0, mse
''')


def test_run_cli_runs_an_mxnet_script(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "tracegrad", "run", str(script), "0.05"], capture_output=True,
                       text=True, env=env, timeout=600, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "first-layer (8, 4) final-mse" in r.stdout
    r = subprocess.run([sys.executable, "-m", "tracegrad", "run"], capture_output=True, text=True, env=env,
                       timeout=600)
    assert r.returncode == 2 and "usage" in r.stdout
