"""The tracer's declared capture hooks (tracer/hooks.py): a default that does nothing, and
random draws handed to a capture as explicit recipes (op, params, shape, dtype, source)."""

from __future__ import annotations

import numpy
import pytest

import tracegrad
from tracegrad import autograd, np, npx
from tracegrad.jit import JitWarning
from tracegrad.tracer.hooks import NO_CAPTURE, CaptureHooks, RandomRecipe, capturing, hooks
from tracegrad.tracer.state import STATE


class _Recorder(CaptureHooks):
    def __init__(self) -> None:
        self.recipes: list[RandomRecipe] = []
        self.applied = 0

    def on_random(self, recipe: RandomRecipe) -> None:
        self.recipes.append(recipe)

    def on_apply(self, prod, outs) -> None:
        self.applied += 1


def _under(cap: CaptureHooks, fn):
    saved = STATE.capture
    STATE.capture = cap
    try:
        return fn()
    finally:
        STATE.capture = saved


def test_outside_a_capture_the_hooks_do_nothing():
    assert hooks() is NO_CAPTURE and not capturing()
    x = np.array([1.0, 2.0])
    assert NO_CAPTURE.on_copy(x) is None and NO_CAPTURE.on_detach(x) is None
    assert NO_CAPTURE.on_inplace(x, lambda a, b: a, 1) is None
    x[0] = 5.0  # the default on_setitem does the write itself
    assert x.asnumpy().tolist() == [5.0, 2.0]


def test_a_capture_gets_each_draw_as_a_recipe_that_draws_the_same_sample_again():
    cap = _Recorder()
    np.random.seed(3)
    sample = _under(cap, lambda: np.random.uniform(-1, 1, size=(2, 3)))
    (r,) = cap.recipes
    assert r.op == "uniform" and r.shape == (2, 3) and r.params["low"] == -1 and r.params["size"] == (2, 3)
    assert r.source is np.random._rng_state()
    np.random.seed(3)
    numpy.testing.assert_array_equal(r.draw(), sample.asnumpy())

    cap = _Recorder()
    x = np.ones((4, 5))
    np.random.seed(7)
    out = _under(cap, lambda: npx.dropout(x, p=0.5, mode="always"))
    (r,) = cap.recipes
    assert r.op == "dropout" and r.shape == (4, 5) and r.dtype == numpy.float32 and r.params["p"] == 0.5
    np.random.seed(7)
    numpy.testing.assert_array_equal(r.draw(), out.asnumpy())  # on ones, dropout is its mask


def test_ops_under_a_capture_are_reported_to_it():
    cap = _Recorder()
    x = np.ones(3)
    _under(cap, lambda: (x * 2 + 1).sum())
    assert cap.applied == 3


def test_rrelu_samples_are_redrawn_on_every_replay():
    def body(x):
        with autograd.train_mode():
            return npx.leaky_relu(x, act_type="rrelu")

    step = tracegrad.jit(body, backend="interpret")
    x = np.array(-numpy.arange(1.0, 7.0, dtype=numpy.float32))
    outs = []
    for seed in range(3):
        np.random.seed(seed)
        got = step(x)
        np.random.seed(seed)
        numpy.testing.assert_array_equal(got.asnumpy(), body(x).asnumpy())
        outs.append(got.asnumpy())
    assert not numpy.array_equal(outs[0], outs[1])
    assert step.counters.compiles == 1 and step.counters.replays == 2


def test_star_argument_draws_are_redrawn_and_array_arguments_stop_the_jit():
    def body(x):
        return x + np.random.randn(2, 3)

    step = tracegrad.jit(body, backend="interpret")
    x = np.zeros((2, 3))
    for seed in range(3):
        np.random.seed(seed)
        got = step(x)
        np.random.seed(seed)
        numpy.testing.assert_array_equal(got.asnumpy(), body(x).asnumpy())
    assert step.counters.compiles == 1 and step.counters.replays == 2

    def reparam(loc):
        return np.random.normal(loc, 1.0, size=(3,))

    rstep = tracegrad.jit(reparam, backend="interpret")
    with pytest.warns(JitWarning, match="np.random.normal"):
        rstep(np.zeros(3))
    assert rstep.counters.fallbacks == 1
