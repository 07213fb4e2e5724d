"""A Gluon MLP trained with Adam (weight decay, gradient clipping, a FactorScheduler) under
`tracegrad.jit`: N steps equal to the same loop not compiled and to a float64 numpy
reference of the forward, backward and MXNet's Adam. The weight gradients of `x @ w.T` come
out of BLAS in the weight's layout (the `transposed_products` pass), so the compiled update
reads them contiguously; `.grad` still holds the gradient after `trainer.step`."""

from __future__ import annotations

import math

import numpy
import pytest

import tracegrad
from tracegrad import gluon, np
from tracegrad import lr_scheduler as lrs
from tracegrad.codegen.fusion import HostStep
from tracegrad.gluon import nn

import gluon_helpers

SIZES = (24, 70, 300, 40, 7)  # batch, in, hidden (300 x 70 = 21000 weights: the multi-chunk path), hidden2, classes
STEPS = 5
ADAM = {"learning_rate": 0.01, "wd": 0.02, "clip_gradient": 0.05, "beta1": 0.8, "beta2": 0.95, "epsilon": 1e-7}


def _data():
    rs = numpy.random.RandomState(3)
    batch, d_in, h1, h2, k = SIZES
    X = rs.normal(size=(batch, d_in)).astype("float32")
    X[0, :5] = 0.0  # zeros in the inputs (relu's boundary is reached through the weights)
    y = rs.randint(0, k, size=batch).astype("int64")
    ws = {"0.weight": rs.normal(scale=d_in ** -0.5, size=(h1, d_in)), "0.bias": rs.normal(scale=0.1, size=h1),
          "1.weight": rs.normal(scale=h1 ** -0.5, size=(h2, h1)),
          "2.weight": rs.normal(scale=h2 ** -0.5, size=(k, h2)), "2.bias": rs.normal(scale=0.1, size=k)}
    return X, y, {n: w.astype("float32") for n, w in ws.items()}


def _net(ws):
    batch, d_in, h1, h2, k = SIZES
    net = nn.HybridSequential()
    net.add(nn.Dense(h1, activation="relu", in_units=d_in), nn.Dense(h2, activation="relu", use_bias=False, in_units=h1),
            nn.Dense(k, in_units=h2))
    net.initialize()
    for name, p in net.collect_params().items():
        p.set_data(np.array(ws[name]))
    net.hybridize(static_alloc=True, static_shape=True)
    return net


def _trainer(net):
    sched = lrs.FactorScheduler(step=2, factor=0.5, base_lr=ADAM["learning_rate"])
    return gluon.Trainer(net.collect_params(), "adam", dict(ADAM, lr_scheduler=sched))


def _close_adam(got, want, atol, what):
    """Equal within `atol` but for a few elements where weight decay cancels the gradient
    (Adam's m / sqrt(v) turns a rounding-level difference of a near-zero gradient into up to
    one step of lr): those stay within 1% of the base learning rate."""
    err = numpy.abs(got - want)
    assert (err > atol).mean() < 1e-3, (what, float(err.max()), int((err > atol).sum()))
    assert err.max() < 1e-2 * ADAM["learning_rate"], (what, float(err.max()))


def _reference(X, y, ws):
    """float64: per step the summed softmax cross-entropy's gradients and MXNet's Adam
    (rescale 1/batch, clip, + wd * w, bias-corrected lr_t, the schedule at the update count)."""
    w = {n: a.astype("float64") for n, a in ws.items()}
    m = {n: numpy.zeros_like(a) for n, a in w.items()}
    v = {n: numpy.zeros_like(a) for n, a in w.items()}
    X = X.astype("float64")
    batch = X.shape[0]
    sched = lrs.FactorScheduler(step=2, factor=0.5, base_lr=ADAM["learning_rate"])
    grads, losses = [], []
    for t in range(1, STEPS + 1):
        z1 = X @ w["0.weight"].T + w["0.bias"]
        a1 = numpy.maximum(z1, 0)
        z2 = a1 @ w["1.weight"].T
        a2 = numpy.maximum(z2, 0)
        z3 = a2 @ w["2.weight"].T + w["2.bias"]
        z3 = z3 - z3.max(axis=1, keepdims=True)
        logp = z3 - numpy.log(numpy.exp(z3).sum(axis=1, keepdims=True))
        losses.append(-logp[numpy.arange(batch), y])
        d3 = numpy.exp(logp)
        d3[numpy.arange(batch), y] -= 1.0
        g = {"2.weight": d3.T @ a2, "2.bias": d3.sum(0)}
        d2 = (d3 @ w["2.weight"]) * (z2 > 0)
        g["1.weight"] = d2.T @ a1
        d1 = (d2 @ w["1.weight"]) * (z1 > 0)
        g["0.weight"], g["0.bias"] = d1.T @ X, d1.sum(0)
        grads.append(g)
        lr = sched(t)
        b1, b2 = ADAM["beta1"], ADAM["beta2"]
        for n in w:
            gn = numpy.clip(g[n] / batch, -ADAM["clip_gradient"], ADAM["clip_gradient"]) + ADAM["wd"] * w[n]
            m[n] = b1 * m[n] + (1 - b1) * gn
            v[n] = b2 * v[n] + (1 - b2) * gn * gn
            lr_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            w[n] = w[n] - lr_t * m[n] / (numpy.sqrt(v[n]) + ADAM["epsilon"])
    return w, grads, losses


def test_adam_mlp_under_jit_matches_plain_loop_and_numpy():
    X, y, ws = _data()
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    plain, compiled = _net(ws), _net(ws)
    plain.hybridize(active=False)
    tp, tc = _trainer(plain), _trainer(compiled)
    Xa, ya = np.array(X), np.array(y)

    train_step = gluon_helpers.train_step(loss_fn)

    step = tracegrad.jit(train_step)
    w_ref, g_ref, l_ref = _reference(X, y, ws)
    for t in range(STEPS):
        lp = train_step(plain, tp, Xa, ya)
        lc = step(compiled, tc, Xa, ya)
        numpy.testing.assert_allclose(lc.asnumpy(), l_ref[t], rtol=2e-4, atol=2e-5)
        numpy.testing.assert_allclose(lc.asnumpy(), lp.asnumpy(), rtol=1e-5, atol=1e-6)
        for name, p in compiled.collect_params().items():  # .grad after step: the step's gradient
            gr = g_ref[t][name]
            numpy.testing.assert_allclose(p.grad().asnumpy(), gr, rtol=2e-4, atol=2e-4 * numpy.abs(gr).max(),
                                          err_msg=f"step {t} {name}.grad")
    c = step.counters
    (variant,) = step.variants  # every weight gradient leaves BLAS in the weight's layout
    products = [s.eqn.out.shape for s in variant.program.program.plan.steps
                if isinstance(s, HostStep) and s.eqn.op.value == "matmul"]
    for name in ("0.weight", "1.weight", "2.weight"):
        assert ws[name].shape in products and ws[name].shape[::-1] not in products, (name, products)
    assert c.compiles == 1 and c.replays == STEPS - 1 and c.fallbacks == 0, step.explain()
    assert tc.optimizer.num_update == STEPS and tc.learning_rate == pytest.approx(ADAM["learning_rate"] * 0.25)
    for (name, pp), pc in zip(plain.collect_params().items(), compiled.collect_params().values()):
        wr = w_ref[name]
        _close_adam(pc.data().asnumpy(), pp.data().asnumpy(), 1e-6, name + " (compiled vs plain)")
        _close_adam(pc.data().asnumpy(), wr, 1e-5, name + " (compiled vs float64)")
        assert numpy.abs(wr - ws[name]).max() > 1e-3  # the updates moved every parameter

