"""Item 10: a Gluon training step written the Gluon way (record, loss, backward,
trainer.step) under @tracegrad.jit is ONE compiled program (forward, backward, the update
of every parameter, BatchNorm's running statistics), equal to the same loop not compiled."""

from __future__ import annotations

import numpy
import pytest

import tracegrad
from tracegrad import autograd, gluon, np
from tracegrad import initializer as init
from tracegrad.gluon import nn

import gluon_helpers


def _net(hybridize: bool):
    np.random.seed(0)
    net = nn.HybridSequential()
    net.add(nn.Dense(16, activation="relu"), nn.BatchNorm(), nn.Dense(8, activation="tanh"), nn.Dense(3))
    net.initialize(init.Xavier())
    net(np.zeros((2, 6)))
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    return net


@pytest.mark.parametrize("optimizer,params", [
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9, "wd": 1e-4}),
    pytest.param("adam", {"learning_rate": 0.01}, marks=pytest.mark.slow),  # another cold compile
])
def test_gluon_training_step_under_jit_is_one_program(optimizer, params):
    rs = numpy.random.RandomState(0)
    X = np.array(rs.normal(size=(16, 6)))
    Y = np.array(rs.randint(0, 3, size=16))
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    plain, compiled = _net(False), _net(True)
    t_plain = gluon.Trainer(plain.collect_params(), optimizer, dict(params))
    t_comp = gluon.Trainer(compiled.collect_params(), optimizer, dict(params))

    train_step = gluon_helpers.train_step(loss_fn)

    step = tracegrad.jit(train_step)
    losses = []
    for _ in range(6):
        la = train_step(plain, t_plain, X, Y)
        lb = step(compiled, t_comp, X, Y)
        numpy.testing.assert_allclose(lb.asnumpy(), la.asnumpy(), rtol=1e-5, atol=1e-6)
        losses.append(float(lb.mean()))
    assert losses[-1] < losses[0]
    c = step.counters
    assert c.compiles == 1 and c.replays == 5 and c.fallbacks == 0 and c.side_exits == 0, step.explain()
    assert len(step.variants) == 1
    for (name, pa), pb in zip(plain.collect_params().items(), compiled.collect_params().values()):
        numpy.testing.assert_allclose(pb.data().asnumpy(), pa.data().asnumpy(), rtol=1e-5, atol=1e-6,
                                      err_msg=name)
    rm = compiled[1].running_mean.data().asnumpy()
    assert numpy.abs(rm).sum() > 0  # running statistics moved in the replays too


def test_hybridized_block_inside_record_and_predict():
    net = _net(True)
    x = np.array(numpy.random.RandomState(1).normal(size=(4, 6)))
    a = net(x).asnumpy()  # predict mode: the compiled forward
    b = net(x).asnumpy()
    numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # capture run vs compiled replay
    fn = net.jit_function
    assert fn.counters.compiles == 1 and fn.counters.replays == 1
    with autograd.record():  # inside a record scope it runs through the tracer (train mode: batch stats)
        y = net(x)
    y.backward()
    assert net[0].weight.grad().shape == (16, 6)
    c = net(x).asnumpy()  # the running statistics moved: a new value, the same compiled program
    assert not numpy.allclose(c, a) and fn.counters.compiles == 1
    net.hybridize(False)
    numpy.testing.assert_allclose(net(x).asnumpy(), c, rtol=1e-6, atol=1e-7)


def test_deferred_init_on_the_compiled_steps_first_call():
    """Parameters created by the first forward inside a captured step are ordinary outside
    arrays: the step still compiles and later calls replay it (no fallback)."""
    def make():
        np.random.seed(3)
        net = nn.HybridSequential()
        net.add(nn.Dense(5, activation="relu"), nn.Dense(2))
        net.initialize()
        net.hybridize()
        return net, gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})

    loss_fn = gluon.loss.L2Loss()

    def body(net, tr, X, Y):
        with autograd.record():
            loss = loss_fn(net(X), Y)
        loss.backward()
        tr.step(X.shape[0])
        return loss

    rs = numpy.random.RandomState(2)
    X, Y = np.array(rs.normal(size=(4, 3))), np.array(rs.normal(size=(4, 2)))
    (na, ta), (nb, tb) = make(), make()
    step = tracegrad.jit(body, backend="interpret")
    for _ in range(4):
        np.random.seed(5)  # the deferred initializations of the first call draw the same numbers
        la = body(na, ta, X, Y)
        np.random.seed(5)
        lb = step(nb, tb, X, Y)
        numpy.testing.assert_allclose(lb.asnumpy(), la.asnumpy(), rtol=1e-5, atol=1e-7)
    for pa, pb in zip(na.collect_params().values(), nb.collect_params().values()):
        numpy.testing.assert_allclose(pb.data().asnumpy(), pa.data().asnumpy(), rtol=1e-5, atol=1e-7)
    assert step.counters.compiles == 1 and step.counters.replays == 3 and step.counters.fallbacks == 0
    assert nb[0].weight.shape == (5, 3)
