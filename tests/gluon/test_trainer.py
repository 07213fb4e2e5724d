"""gluon.Trainer: rescaling by batch size, grad_req='add', stale gradients, a loop whose loss
decreases, save/load of optimizer states, and the whole step captured by tracegrad.jit."""

from __future__ import annotations

import numpy as onp
import pytest

import tracegrad
from tracegrad import autograd, np
from tracegrad import lr_scheduler as lrs
from tracegrad.gluon import Parameter, Trainer
from tracegrad.gluon import loss as gloss


def _params(seed=0, req="write"):
    rng = onp.random.default_rng(seed)
    w = Parameter("weight", shape=(1, 5), grad_req=req)
    b = Parameter("bias", shape=(1,), grad_req=req)
    w.initialize()
    b.initialize()
    w.set_data(np.array(rng.standard_normal((1, 5)).astype("float32")))
    b.set_data(np.array(onp.zeros(1, "float32")))
    return w, b


def _data(n=64, seed=1):
    rng = onp.random.default_rng(seed)
    X = rng.standard_normal((n, 5)).astype("float32")
    y = (X @ onp.array([1.0, -2.0, 0.5, 3.0, -1.0], "float32") + 0.7).astype("float32")
    return np.array(X), np.array(y)


def _forward(w, b, X):
    return (X @ w.data().T).reshape((-1,)) + b.data()


def test_sgd_step_rescales_by_batch_size():
    w, b = _params()
    X, y = _data(8)
    tr = Trainer({"w": w, "b": b}, "sgd", {"learning_rate": 0.1})
    w0 = w.data().asnumpy().copy()
    with autograd.record():
        loss = gloss.L2Loss()(_forward(w, b, X), y)
    loss.backward()
    g = w.grad().asnumpy().copy()
    tr.step(8)
    onp.testing.assert_allclose(w.data().asnumpy(), w0 - 0.1 * g / 8, rtol=1e-5, atol=1e-7)
    assert tr.learning_rate == pytest.approx(0.1)
    tr.set_learning_rate(0.05)
    assert tr.learning_rate == pytest.approx(0.05)


def test_training_loop_loss_decreases():
    w, b = _params()
    X, y = _data(64)
    tr = Trainer([w, b], "sgd", {"learning_rate": 0.2, "momentum": 0.5})
    l2 = gloss.L2Loss()
    losses = []
    for _ in range(40):
        with autograd.record():
            loss = l2(_forward(w, b, X), y)
        loss.backward()
        tr.step(64)
        losses.append(float(loss.mean()))
    assert losses[-1] < 0.01 * losses[0]
    onp.testing.assert_allclose(b.data().asnumpy(), [0.7], atol=0.05)


def test_grad_req_add_accumulates_until_zero_grad():
    w, b = _params(req="add")
    X, y = _data(8)
    tr = Trainer([w, b], "sgd", {"learning_rate": 0.1})
    w.zero_grad()
    b.zero_grad()
    grads = []
    for half in (slice(0, 4), slice(4, 8)):
        with autograd.record():
            loss = gloss.L2Loss()(_forward(w, b, X[half]), y[half])
        loss.backward()
        grads.append(w.grad().asnumpy().copy())
    w0 = w.data().asnumpy().copy()
    tr.step(8)
    onp.testing.assert_allclose(w.data().asnumpy(), w0 - 0.1 * grads[1] / 8, rtol=1e-5, atol=1e-7)
    with autograd.record():  # the full batch's gradient equals the accumulated one
        loss = gloss.L2Loss()(_forward(w, b, X), y)
    w.zero_grad()
    loss.backward()
    assert not onp.allclose(grads[0], grads[1])


def test_stale_gradient_raises_or_is_skipped():
    w, b = _params()
    unused = Parameter("unused", shape=(3,))
    unused.initialize()
    X, y = _data(8)
    tr = Trainer([w, b, unused], "sgd", {"learning_rate": 0.1})
    with autograd.record():
        loss = gloss.L2Loss()(_forward(w, b, X), y)
    loss.backward()
    with pytest.raises(UserWarning, match="Parameter `unused`.*has not been updated by backward"):
        tr.step(8)
    u0, w0 = unused.data().asnumpy().copy(), w.data().asnumpy().copy()
    tr.step(8, ignore_stale_grad=True)
    onp.testing.assert_array_equal(unused.data().asnumpy(), u0)
    assert not onp.allclose(w.data().asnumpy(), w0)
    w1 = w.data().asnumpy().copy()
    tr.step(8, ignore_stale_grad=True)  # no backward since: nothing is fresh, nothing moves
    onp.testing.assert_array_equal(w.data().asnumpy(), w1)
    with pytest.raises(UserWarning, match="Parameter `weight`"):
        tr.step(8)


def _adam_loop(tr, w, b, X, y, steps):
    for _ in range(steps):
        with autograd.record():
            loss = gloss.L2Loss()(_forward(w, b, X), y)
        loss.backward()
        tr.step(X.shape[0])


def test_save_and_load_states_continue_identically(tmp_path):
    X, y = _data(16)
    w, b = _params()
    tr = Trainer([w, b], "adam", {"learning_rate": 0.05})
    _adam_loop(tr, w, b, X, y, 3)
    f = str(tmp_path / "trainer.states")
    tr.save_states(f)
    saved = [w.data().asnumpy().copy(), b.data().asnumpy().copy()]
    _adam_loop(tr, w, b, X, y, 2)
    expect = w.data().asnumpy().copy()

    w2, b2 = _params(seed=5)
    w2.set_data(np.array(saved[0]))
    b2.set_data(np.array(saved[1]))
    tr2 = Trainer([w2, b2], "adam", {"learning_rate": 0.05})
    tr2.load_states(f)
    assert tr2.optimizer.num_update == 3
    _adam_loop(tr2, w2, b2, X, y, 2)
    onp.testing.assert_allclose(w2.data().asnumpy(), expect, rtol=1e-6, atol=1e-7)
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x80\x04N.")
    with pytest.raises(ValueError, match="not an MXNet Trainer states file"):
        tr2.load_states(str(bad))


@pytest.mark.parametrize("name,params", [
    ("sgd", {"learning_rate": 0.05, "momentum": 0.9, "wd": 1e-3}),
    ("adam", {"learning_rate": None, "lr_scheduler": lrs.FactorScheduler(step=2, factor=0.5, base_lr=0.05)}),
])
def test_gluon_step_under_jit_equals_plain_step(name, params):
    X, y = _data(32)

    def make():
        w, b = _params()
        return w, b, Trainer([w, b], name, dict(params))

    wa, ba, ta = make()
    wb, bb, tb = make()
    l2 = gloss.L2Loss()

    def body(w, b, tr, X, y):
        with autograd.record():
            loss = l2(_forward(w, b, X), y)
        loss.backward()
        tr.step(X.shape[0])
        return loss

    step = tracegrad.jit(body)
    for _ in range(6):
        la = body(wa, ba, ta, X, y)
        lb = step(wb, bb, tb, X, y)
        onp.testing.assert_allclose(lb.asnumpy(), la.asnumpy(), rtol=2e-5, atol=1e-6)
    onp.testing.assert_allclose(wb.data().asnumpy(), wa.data().asnumpy(), rtol=2e-5, atol=1e-6)
    assert step.counters.replays == 5 and step.counters.fallbacks == 0
    assert tb.optimizer.num_update == 6 and tb.learning_rate == pytest.approx(ta.learning_rate)


def test_allreduce_hook_and_kvstore_checks():
    calls = []

    class Hooked(Trainer):
        def _allreduce_grads(self):
            calls.append(len(self._params))

    w, b = _params()
    tr = Hooked([w, b], "sgd")
    X, y = _data(4)
    with autograd.record():
        loss = gloss.L2Loss()(_forward(w, b, X), y)
    loss.backward()
    tr.allreduce_grads()
    tr.update(4)
    assert calls == [2]
    with pytest.raises(ValueError, match="kvstore 'dist_sync' is not supported"):
        Trainer([w], "sgd", kvstore="dist_sync")
    with pytest.raises(ValueError, match="list or dict of Parameters"):
        Trainer([1.0], "sgd")
    from tracegrad import optimizer
    with pytest.raises(ValueError, match="optimizer_params must be None"):
        Trainer([w], optimizer.SGD(), {"learning_rate": 0.1})


def test_hybridized_gluon_loop_equals_plain_loop():
    from tracegrad.gluon import nn
    from tracegrad.gluon.data import ArrayDataset, DataLoader

    rng = onp.random.default_rng(3)
    X = rng.standard_normal((48, 6)).astype("float32")
    y = (X[:, 0] > X[:, 1]).astype("int32")

    def make():
        net = nn.HybridSequential()
        net.add(nn.Dense(16, activation="relu"), nn.Dense(2))
        net.initialize()
        net(np.array(X[:2]))
        return net

    a, b = make(), make()
    for (ka, pa), (kb, pb) in zip(a.collect_params().items(), b.collect_params().items()):
        pb.set_data(pa.data().copy())
    b.hybridize()
    ce = gloss.SoftmaxCrossEntropyLoss()
    ta = Trainer(a.collect_params(), "adam", {"learning_rate": 0.01})
    tb = Trainer(b.collect_params(), "adam", {"learning_rate": 0.01})

    import gluon_helpers

    body = gluon_helpers.train_step(ce)

    step = tracegrad.jit(body)
    first = last = None
    for _ in range(3):
        for xb, yb in DataLoader(ArrayDataset(X, y), batch_size=16):
            la = body(a, ta, xb, yb)
            lb = step(b, tb, xb, yb)
            onp.testing.assert_allclose(lb.asnumpy(), la.asnumpy(), rtol=1e-4, atol=1e-5)
            first = float(la.mean()) if first is None else first
            last = float(la.mean())
    for pa, pb in zip(a.collect_params().values(), b.collect_params().values()):
        onp.testing.assert_allclose(pb.data().asnumpy(), pa.data().asnumpy(), rtol=1e-4, atol=1e-5)
    assert last < first
    assert step.counters.fallbacks == 0 and step.counters.replays >= 7


def test_horovod_kvstore_in_a_one_rank_world_equals_local():
    distributed = pytest.importorskip("tracegrad.distributed")
    started = not distributed.is_initialized()
    distributed.init()
    try:
        _horovod_vs_local()
    finally:
        if started:
            distributed.shutdown()


def _horovod_vs_local():
    X, y = _data(8)
    results = []
    for kv in ("device", "horovod"):
        w, b = _params()
        tr = Trainer([w, b], "sgd", {"learning_rate": 0.1}, kvstore=kv)
        with autograd.record():
            loss = gloss.L2Loss()(_forward(w, b, X), y)
        loss.backward()
        tr.step(8)
        results.append(w.data().asnumpy().copy())
    onp.testing.assert_allclose(results[1], results[0], rtol=1e-6)
