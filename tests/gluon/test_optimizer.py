"""Every optimizer's update against a hand-written float64 numpy reference over several steps:
momentum, weight decay, clipping, rescale_grad, lr_mult/wd_mult and lr schedules. One
parameter is large enough (> 2**14 elements) to take the compiled multi-chunk path."""

from __future__ import annotations

import math

import numpy as onp
import pytest

from tracegrad import np, optimizer as opt_mod
from tracegrad import lr_scheduler as lrs

SHAPES = [(3, 4), (7,), (130, 140)]
STEPS = 4


def _ref_step(name, kw, w, g, state, t, lr, wd):
    """One float64 step of optimizer `name` on one parameter (MXNet 2.x formulas)."""
    rescale = kw.get("rescale_grad", 1.0)
    clip = kw.get("clip_gradient")
    g = g * rescale
    if clip is not None:
        g = onp.clip(g, -clip, clip)
    if name in ("sgd", "nag"):
        mom = kw.get("momentum", 0.0)
        g = g + wd * w
        if mom == 0:
            return w - lr * g, state
        m = mom * state - lr * g
        if name == "sgd":
            return w + m, m
        return w + mom * m - lr * g, m
    if name == "adam":
        b1, b2, eps = kw.get("beta1", 0.9), kw.get("beta2", 0.999), kw.get("epsilon", 1e-8)
        g = g + wd * w
        m, v = state
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        lr_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        return w - lr_t * m / (onp.sqrt(v) + eps), (m, v)
    if name == "adamw":
        b1, b2, eps = kw.get("beta1", 0.9), kw.get("beta2", 0.999), kw.get("epsilon", 1e-6)
        m, v = state
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        lr_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) if kw.get("correct_bias", True) else lr
        return w - lr_t * (m / (onp.sqrt(v) + eps) + wd * w), (m, v)
    if name == "lamb":
        b1, b2, eps = kw.get("beta1", 0.9), kw.get("beta2", 0.999), kw.get("epsilon", 1e-6)
        m, v = state
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mh, vh = m / (1 - b1 ** t), v / (1 - b2 ** t)
        d = mh / (onp.sqrt(vh) + eps) + wd * w
        r1 = onp.linalg.norm(w)
        if kw.get("lower_bound") is not None:
            r1 = max(r1, kw["lower_bound"])
        if kw.get("upper_bound") is not None:
            r1 = min(r1, kw["upper_bound"])
        r2 = onp.linalg.norm(d)
        ratio = r1 / r2 if r1 > 0 and r2 > 0 else 1.0
        return w - lr * ratio * d, (m, v)
    if name == "rmsprop":
        rho, eps = kw.get("rho", 0.9), kw.get("epsilon", 1e-8)
        g = g + wd * w
        if not kw.get("centered", False):
            var = rho * state + (1 - rho) * g * g
            new, st = w - lr * g / (onp.sqrt(var) + eps), var
        else:
            mean, var, mom = state
            mean = rho * mean + (1 - rho) * g
            var = rho * var + (1 - rho) * g * g
            mom = kw.get("momentum", 0.9) * mom - lr * g / onp.sqrt(var - mean * mean + eps)
            new, st = w + mom, (mean, var, mom)
        cw = kw.get("clip_weights")
        return (onp.clip(new, -cw, cw) if cw else new), st
    if name == "adagrad":
        eps = kw.get("epsilon", 1e-6)
        g = g + wd * w
        h = state + g * g
        return w - lr * g / (onp.sqrt(h) + eps), h
    if name == "adadelta":
        rho, eps = kw.get("rho", 0.9), kw.get("epsilon", 1e-6)
        g = g + wd * w
        ag, ad = state
        ag = rho * ag + (1 - rho) * g * g
        d = onp.sqrt(ad + eps) / onp.sqrt(ag + eps) * g
        ad = rho * ad + (1 - rho) * d * d
        return w - lr * d, (ag, ad)
    raise AssertionError(name)


def _ref_state(name, kw, w):
    z = onp.zeros_like(w)
    if name in ("sgd", "nag"):
        return z if kw.get("momentum", 0.0) else None
    if name in ("adam", "adamw", "lamb", "adadelta"):
        return (z, z.copy())
    if name == "rmsprop":
        return (z, z.copy(), z.copy()) if kw.get("centered") else z
    return z


CASES = [
    ("sgd", dict(learning_rate=0.1)),
    ("sgd", dict(learning_rate=0.05, momentum=0.9, wd=1e-2, clip_gradient=0.5, rescale_grad=0.5)),
    ("nag", dict(learning_rate=0.05, momentum=0.9, wd=1e-3)),
    ("nag", dict(learning_rate=0.05)),
    ("adam", dict(learning_rate=0.01, wd=1e-2, clip_gradient=1.0)),
    ("adam", dict(learning_rate=0.01, beta1=0.8, beta2=0.99, epsilon=1e-6)),
    ("adamw", dict(learning_rate=0.01, wd=0.1)),
    ("adamw", dict(learning_rate=0.01, wd=0.1, correct_bias=False)),
    ("lamb", dict(learning_rate=0.01, wd=0.01)),
    ("lamb", dict(learning_rate=0.01, lower_bound=0.5, upper_bound=2.0)),
    ("rmsprop", dict(learning_rate=0.01, wd=1e-3)),
    ("rmsprop", dict(learning_rate=0.01, centered=True, clip_weights=0.9, momentum=0.5)),
    ("adagrad", dict(learning_rate=0.1, wd=1e-3, clip_gradient=2.0)),
    ("adadelta", dict(rho=0.8, wd=1e-3)),
]


def _run(name, kw, sched=None, steps=STEPS, seed=0):
    rng = onp.random.default_rng(seed)
    ws = [rng.standard_normal(s) for s in SHAPES]
    gs = [[rng.standard_normal(s) * 2 for s in SHAPES] for _ in range(steps)]
    o = opt_mod.create(name, lr_scheduler=sched, **kw)
    tw = [np.array(w.astype("float32")) for w in ws]
    states = [o.create_state(i, w) for i, w in enumerate(tw)]
    ref_w = [w.astype("float32").astype("float64") for w in ws]
    ref_s = [_ref_state(name, kw, w) for w in ref_w]
    default_lr = {"sgd": 0.1, "nag": 0.1, "adagrad": 0.01, "adadelta": 1.0}.get(name, 0.001)
    for k in range(steps):
        o.update(list(range(len(tw))), tw, [np.array(g.astype("float32")) for g in gs[k]], states)
        t = k + 1
        lr = sched(t) if sched is not None else kw.get("learning_rate", default_lr)
        for i in range(len(ref_w)):
            g = gs[k][i].astype("float32").astype("float64")
            ref_w[i], ref_s[i] = _ref_step(name, kw, ref_w[i], g, ref_s[i], t, lr, kw.get("wd", 0.0))
        for i in range(len(tw)):
            onp.testing.assert_allclose(tw[i].asnumpy(), ref_w[i], rtol=2e-5, atol=2e-6,
                                        err_msg=f"{name} {kw} step {t} param {i}")
    return o


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_update_matches_numpy_reference(name, kw):
    o = _run(name, kw)
    assert o.num_update == STEPS
    assert o._index_update_count == {0: STEPS, 1: STEPS, 2: STEPS}


def test_one_compiled_program_for_all_parameters_and_steps():
    o = _run("adam", dict(learning_rate=0.01), steps=5)
    c = o._program.counters
    assert c.compiles == 1 and c.replays == 4 and c.fallbacks == 0


def test_learning_rate_change_does_not_recompile():
    o = opt_mod.SGD(learning_rate=0.1)
    w = np.array(onp.ones(5, "float32"))
    g = np.array(onp.ones(5, "float32"))
    o.update([0], [w], [g], [None])
    o.set_learning_rate(0.5)
    o.rescale_grad = 0.5
    o.update([0], [w], [g], [None])
    onp.testing.assert_allclose(w.asnumpy(), 1 - 0.1 - 0.25, rtol=1e-6)
    assert o._program.counters.compiles == 1


@pytest.mark.parametrize("sched", [
    lrs.FactorScheduler(step=2, factor=0.5, base_lr=0.1),
    lrs.MultiFactorScheduler(step=[1, 3], factor=0.1, base_lr=0.1),
    lrs.PolyScheduler(max_update=5, base_lr=0.1, pwr=2, final_lr=0.001, warmup_steps=2),
    lrs.CosineScheduler(max_update=4, base_lr=0.1, final_lr=0.01, warmup_steps=1, warmup_begin_lr=0.02),
], ids=["factor", "multifactor", "poly-warmup", "cosine-warmup"])
def test_schedules_inside_the_compiled_update(sched):
    o = _run("sgd", dict(momentum=0.9, learning_rate=None), sched=sched, steps=6)
    assert o._program.counters.compiles == 1
    assert o.learning_rate == pytest.approx(sched(6))


def test_custom_scheduler_runs_in_python():
    class Halving(lrs.LRScheduler):
        def __call__(self, num_update):
            return self.base_lr * 0.5 ** num_update

    _run("sgd", dict(learning_rate=None), sched=Halving(base_lr=0.2), steps=3)


def test_lr_mult_and_wd_mult_from_param_dict():
    class P:
        lr_mult, wd_mult = 0.5, 0.0

    o = opt_mod.SGD(learning_rate=0.1, wd=0.1, param_dict={0: P()})
    w0, w1 = np.array(onp.ones(3, "float32")), np.array(onp.ones(3, "float32"))
    g = np.array(onp.ones(3, "float32"))
    o.update([0, 1], [w0, w1], [g, g], [None, None])
    onp.testing.assert_allclose(w0.asnumpy(), 1 - 0.05 * 1.0, rtol=1e-6)
    onp.testing.assert_allclose(w1.asnumpy(), 1 - 0.1 * 1.1, rtol=1e-6)


def test_registry_and_errors():
    assert isinstance(opt_mod.create("SGD", momentum=0.9), opt_mod.SGD)
    assert set(["sgd", "nag", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "lamb"]) <= set(opt_mod.registry)
    with pytest.raises(ValueError, match="unknown optimizer 'nope'"):
        opt_mod.create("nope")
    with pytest.raises(TypeError, match="unexpected arguments"):
        opt_mod.SGD(momentun=0.9)
    with pytest.raises(UserWarning, match="LRScheduler"):
        opt_mod.SGD(lr_scheduler=lrs.FactorScheduler(step=1)).set_learning_rate(0.1)
    o = opt_mod.SGD()
    with pytest.raises(ValueError, match="gradient shape"):
        o.update([0], [np.zeros(3)], [np.zeros(4)], [None])


def test_scheduler_base_lr_used_when_no_learning_rate_given():
    s = lrs.FactorScheduler(step=10, base_lr=0.3)
    assert opt_mod.SGD(lr_scheduler=s).learning_rate == pytest.approx(0.3)
    with pytest.warns(UserWarning, match="overwritten"):
        o = opt_mod.Adam(learning_rate=0.02, lr_scheduler=lrs.FactorScheduler(step=10, base_lr=0.3))
    assert o.learning_rate == pytest.approx(0.02)


def test_updater_creates_states():
    o = opt_mod.SGD(learning_rate=0.1, momentum=0.5)
    up = opt_mod.get_updater(o)
    w = np.array(onp.ones(4, "float32"))
    for _ in range(2):
        up(0, np.array(onp.ones(4, "float32")), w)
    onp.testing.assert_allclose(w.asnumpy(), 1 - 0.1 - (0.05 + 0.1), rtol=1e-6)
