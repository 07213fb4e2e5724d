"""tracegrad.jit's compiled replays (the default backend), against plain Python and closed forms.

test_jit.py checks the jit's logic mostly with `backend="interpret"`; here every variant
must be compiled (`backend == "compiled"`) and the checks are on the replays: both outcomes
of every guard (the tutorial's else-branch included), side exits that leave parameters and
`.grad` untouched, `grad_req='add'`, random ops, and a step large enough for the threaded
kernels.
"""

from __future__ import annotations

import numpy
import pytest

import tracegrad
from tracegrad import autograd, np, npx
from tracegrad.errors import GuardFailure
from tracegrad.examples import tutorial_f


def _all_compiled(step):
    assert step.variants and all(v.backend == "compiled" for v in step.variants), [v.backend for v in step.variants]


def _tutorial_step(a):
    with autograd.record():
        c = tutorial_f(a)
    c.backward()
    return c


def _closed_form(x):
    """c = 2^k x[i] with k the doublings until |.|.sum() >= 1000, i = 0 if the sum >= 0 else 1."""
    k = 1
    while numpy.abs(x * numpy.float32(2.0**k)).sum() < 1000:
        k += 1
    i = 0 if (x * numpy.float32(2.0**k)).sum() >= 0 else 1
    g = numpy.zeros(2, numpy.float32)
    g[i] = 2.0**k
    return numpy.float32(x[i] * numpy.float32(2.0**k)), g


def test_tutorial_both_branches_replay_compiled():
    step = tracegrad.jit(_tutorial_step)
    rng = numpy.random.RandomState(5)
    # signs chosen so both branches (b[0] and b[1]) occur, with magnitudes that change the
    # loop count: each variant is replayed after its capture
    xs = [numpy.array(v, numpy.float32) for v in ([0.3, 0.2], [-0.3, 0.1], [0.25, 0.3], [-0.2, 0.05])]
    xs = xs * 3 + [rng.uniform(-1, 1, 2).astype(numpy.float32) for _ in range(40)]
    branches = set()
    for x in xs:
        a = np.array(x)
        a.attach_grad()
        replays = step.counters.replays
        c = step(a)
        want_c, want_g = _closed_form(x)
        assert c.asnumpy() == want_c, (x, c.asnumpy(), want_c)
        numpy.testing.assert_array_equal(a.grad.asnumpy(), want_g)
        if step.counters.replays > replays:
            branches.add(int(want_g[1] != 0))
    _all_compiled(step)
    assert branches == {0, 1}, "the replays did not take both branches"
    assert step.counters.fallbacks == 0 and step.counters.replays >= 30


def _sgd_with_branch(params, req_add):
    w, b = params

    def step(x, y, lr):
        with autograd.record():
            pred = np.tanh(np.dot(x, w) + b)
            err = pred - y
            if (err * err).mean() > 0.05:  # a data-dependent branch on the loss
                loss = (err * err).mean()
            else:
                loss = np.abs(err).mean()
        loss.backward()
        for p in (w, b):
            p -= lr * p.grad
        return loss

    return step


def _params(req):
    rs = numpy.random.RandomState(0)
    ps = [np.array(rs.randn(6, 3) * 0.5, dtype="float32"), np.array(rs.randn(3) * 0.1, dtype="float32")]
    for p in ps:
        p.attach_grad(req)
    return ps


@pytest.mark.parametrize("req", ["write", "add"])
def test_sgd_with_a_branch_replays_compiled_like_python(req):
    plain_p, jit_p = _params(req), _params(req)
    plain = _sgd_with_branch(plain_p, req == "add")
    jstep = tracegrad.jit(_sgd_with_branch(jit_p, req == "add"))
    rs = numpy.random.RandomState(1)
    for i in range(24):
        x = rs.randn(8, 6).astype(numpy.float32)
        scale = 3.0 if i % 3 else 0.05  # the mean-square branch, and the abs branch
        y = (numpy.tanh(x @ plain_p[0].asnumpy()) + rs.randn(8, 3) * scale * 0.3).astype(numpy.float32)
        l1 = plain(np.array(x), np.array(y), 0.05)
        l2 = jstep(np.array(x), np.array(y), 0.05)
        numpy.testing.assert_allclose(l2.asnumpy(), l1.asnumpy(), rtol=1e-5, atol=1e-6)
        for p, q in zip(plain_p, jit_p):
            # float32, the same ops in the same order except sums (float64 partials when
            # compiled): a few ulps per step, compounding over 24 steps
            numpy.testing.assert_allclose(q.asnumpy(), p.asnumpy(), rtol=1e-5, atol=1e-6)
            numpy.testing.assert_allclose(q.grad.asnumpy(), p.grad.asnumpy(), rtol=1e-5, atol=1e-5)
    _all_compiled(jstep)
    assert len(jstep.variants) == 2 and jstep.counters.replays >= 18 and jstep.counters.side_exits >= 1


@pytest.mark.parametrize("req", ["write", "add"])
def test_side_exit_of_a_compiled_replay_leaves_params_and_grads_untouched(req):
    w = np.array([1.0, 2.0, -0.5])
    w.attach_grad(req)

    def step(x):
        with autograd.record():
            y = (w * x).sum()
            z = y * 2 if y > 0 else y * y
        z.backward()
        w[:] = w - 0.125 * w.grad
        return z

    jstep = tracegrad.jit(step)
    jstep(np.array([1.0, 1.0, 1.0]))  # captures the y > 0 path
    jstep(np.array([2.0, 1.0, 1.0]))  # a compiled replay
    assert jstep.counters.replays == 1
    _all_compiled(jstep)
    variant = jstep.variants[0]
    w_before, g_before = w.asnumpy().copy(), w.grad.asnumpy().copy()
    with pytest.raises(GuardFailure):
        variant.run((np.array([-10.0, -10.0, -10.0]),), {})
    numpy.testing.assert_array_equal(w.asnumpy(), w_before)
    numpy.testing.assert_array_equal(w.grad.asnumpy(), g_before)
    x = numpy.array([-10.0, -10.0, -10.0], numpy.float32)
    z = jstep(np.array(x))  # side exit, then Python runs the body once and a variant is made
    y = float((w_before * x).sum())
    g = 2 * y * x + (g_before if req == "add" else 0)
    assert float(z.asnumpy()) == pytest.approx(y * y, rel=1e-6)
    numpy.testing.assert_allclose(w.grad.asnumpy(), g, rtol=1e-6)
    numpy.testing.assert_allclose(w.asnumpy(), w_before - 0.125 * g, rtol=1e-6)
    jstep(np.array(x * 0.5))  # the new variant, replayed
    _all_compiled(jstep)
    assert jstep.counters.side_exits == 1 and len(jstep.variants) == 2 and jstep.counters.replays == 2


def test_random_ops_are_redrawn_on_compiled_replays():
    def body(x):
        noise = np.random.uniform(-1, 1, size=x.shape)
        n2 = np.random.normal(0.0, 2.0, size=x.shape)
        return x + noise * 2 + n2, npx.dropout(x, p=0.5, mode="always")

    step = tracegrad.jit(body)
    x = np.array(numpy.linspace(-1, 1, 64))
    seen = set()
    for seed in range(5):
        np.random.seed(seed)
        a, d = step(x)
        np.random.seed(seed)
        a_ref, d_ref = body(x)
        numpy.testing.assert_allclose(a.asnumpy(), a_ref.asnumpy(), rtol=1e-6, atol=1e-6)
        numpy.testing.assert_array_equal(d.asnumpy(), d_ref.asnumpy())
        seen.add(a.asnumpy().tobytes())
    assert len(seen) == 5
    _all_compiled(step)
    assert step.counters.compiles == 1 and step.counters.replays == 4


def test_large_step_replays_on_the_threaded_kernels():
    """W1's shape past the pool threshold (2^19 elements): forward, backward and update compiled."""
    n = (1 << 19) + 1000
    x = np.array(numpy.random.RandomState(2).uniform(-2, 2, n).astype(numpy.float32))
    x.attach_grad()

    def step(lr):
        with autograd.record():
            y = (2 * x * x).sum()
        y.backward()
        x[:] = x - lr * x.grad
        return y

    jstep = tracegrad.jit(step)
    for i in range(3):
        ref = x.asnumpy().astype(numpy.float64)
        y = jstep(0.01 * (i + 1))
        want_y = (2 * ref * ref).sum()
        # float32 products summed in float64 partials: one float32 rounding per term
        assert abs(float(y.asnumpy()) - want_y) <= 1e-6 * want_y
        numpy.testing.assert_allclose(x.grad.asnumpy(), 4 * ref, rtol=2e-7, atol=1e-6)
        numpy.testing.assert_allclose(x.asnumpy(), ref - 0.01 * (i + 1) * 4 * ref, rtol=1e-6, atol=1e-6)
    _all_compiled(jstep)
    prog = jstep.variants[0].program.program
    assert any(k.parallel for k in prog.plan.kernels())
    assert jstep.counters.replays == 2


def test_strict_mode_raises_where_a_variant_would_fall_back(monkeypatch):
    import tracegrad.codegen as codegen
    from tracegrad.errors import CompileError
    from tracegrad.runtime import execute

    def refuse(trace, par_min=None, generic=None):
        raise CompileError("refused by the test")

    monkeypatch.setattr(codegen, "compile_trace", refuse)
    monkeypatch.setattr(codegen, "prepare", refuse)  # the runtime plans through prepare()
    step = tracegrad.jit(lambda x: x * 2 + 1)
    assert step(np.ones(3)).asnumpy().tolist() == [3.0] * 3  # auto: interpreted, with a logged reason
    assert step.variants[0].backend == "interpret"
    monkeypatch.setattr(execute, "MODE", "strict")
    monkeypatch.setattr(execute, "_program", lambda *a, **k: None)  # only the variant compiles
    sstep = tracegrad.jit(lambda x: x * 3 + 1)
    with pytest.raises(CompileError, match="refused by the test"):
        sstep(np.ones(3))
