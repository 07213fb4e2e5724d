"""tracegrad.jit: capture, replay, guards, variants, retrace reasons, caps, strict, opt-out."""

import warnings

import numpy
import pytest

import tracegrad
from tracegrad import autograd, np, npx
from tracegrad.errors import GuardFailure
from tracegrad.examples import tutorial_f
from tracegrad.jit import JitWarning, RetraceError


f = tutorial_f  # the tutorial's f(a), from tracegrad/examples.py


def tutorial_step(a):
    with autograd.record():
        c = f(a)
    c.backward()
    return c


def _record_grad(x):
    a = np.array(x)
    a.attach_grad()
    with autograd.record():
        c = f(a)
    c.backward()
    return c.asnumpy(), a.grad.asnumpy()


def test_tutorial_500_inputs_match_record_scope_and_closed_form():
    step = tracegrad.jit(tutorial_step, backend="interpret")
    rng = numpy.random.RandomState(0)
    compiles_at = []
    for i in range(500):
        x = rng.uniform(size=2).astype(numpy.float32)  # the tutorial: np.random.uniform(size=2)
        a = np.array(x)
        a.attach_grad()
        before = step.counters.compiles
        c = step(a)
        if step.counters.compiles != before:
            compiles_at.append(i)
        c_ref, g_ref = _record_grad(x)
        assert c.asnumpy() == c_ref
        g = a.grad.asnumpy()
        assert numpy.array_equal(g, g_ref)
        picked = 0 if x.sum() * 1.0 >= 0 else 1
        closed = numpy.zeros(2, numpy.float32)
        closed[picked] = c_ref / x[picked]
        numpy.testing.assert_allclose(g, closed, rtol=1e-6)
    cnt = step.counters
    assert cnt.calls == 500 and cnt.fallbacks == 0
    assert cnt.replays + cnt.compiles == 500
    assert cnt.compiles == len(step.variants) <= 8
    assert compiles_at[-1] < 400, compiles_at  # settled: no compiles in the last 100 calls


def _sgd_setup(seed=0, n_in=4, n_hidden=8):
    rng = numpy.random.RandomState(seed)
    w1 = np.array(rng.randn(n_in, n_hidden) * 0.5)
    b1 = np.array(rng.randn(n_hidden) * 0.1)
    w2 = np.array(rng.randn(n_hidden, 1) * 0.5)
    params = [w1, b1, w2]
    for p in params:
        p.attach_grad()
    return params


def _make_mlp_step(params):
    w1, b1, w2 = params

    def step(x, y, lr):
        with autograd.record():
            h = np.tanh(x @ w1 + b1)
            loss = ((h @ w2 - y) ** 2).mean()
        loss.backward()
        for p in (w1, b1, w2):
            p -= lr * p.grad
        return loss

    return step


def test_sgd_200_steps_matches_plain_python():
    rng = numpy.random.RandomState(1)
    data = [(rng.randn(16, 4).astype(numpy.float32), rng.randn(16, 1).astype(numpy.float32)) for _ in range(5)]
    plain_params = _sgd_setup()
    jit_params = _sgd_setup()
    plain = _make_mlp_step(plain_params)
    jitted = tracegrad.jit(_make_mlp_step(jit_params), strict=True, backend="interpret")
    for i in range(200):
        x, y = data[i % 5]
        lr = 0.1 / (1 + 0.01 * i)  # a decaying learning rate: a runtime input, no recompile
        l1 = plain(np.array(x), np.array(y), lr)
        l2 = jitted(np.array(x), np.array(y), lr)
        numpy.testing.assert_allclose(l2.asnumpy(), l1.asnumpy(), rtol=1e-5, atol=1e-6)
    for p, q in zip(plain_params, jit_params):
        numpy.testing.assert_allclose(q.asnumpy(), p.asnumpy(), rtol=1e-5, atol=1e-6)
        numpy.testing.assert_allclose(q.grad.asnumpy(), p.grad.asnumpy(), rtol=1e-5, atol=1e-6)
    assert jitted.counters.compiles == 1 and jitted.counters.replays == 199


def test_guard_failure_leaves_params_and_grads_untouched():
    w = np.array([1.0, 2.0])
    w.attach_grad()

    def step(x):
        with autograd.record():
            y = (w * x).sum()
            if y > 0:
                z = y * 2
            else:
                z = y * 3
        z.backward()
        w[:] = w - 0.5 * w.grad
        return z

    for backend in ("interpret", "auto"):
        jstep = tracegrad.jit(step, backend=backend)
        jstep(np.array([1.0, 1.0]))  # captures the y > 0 path
        variant = jstep.variants[0]
        w_before, g_before = w.asnumpy(), w.grad.asnumpy()
        with pytest.raises(GuardFailure):
            variant.run((np.array([-10.0, -10.0]),), {})
        assert numpy.array_equal(w.asnumpy(), w_before)
        assert numpy.array_equal(w.grad.asnumpy(), g_before)
        # through the front door: a side exit, then a new variant, with Python's results
        z = jstep(np.array([-10.0, -10.0]))
        assert jstep.counters.side_exits == 1 and len(jstep.variants) == 2
        assert float(z.asnumpy()) == pytest.approx(3 * float((w_before * -10).sum()))
        numpy.testing.assert_allclose(w.grad.asnumpy(), [-30.0, -30.0])
        assert "guard 0 of variant" in jstep.explain() and "test_jit.py" in jstep.explain()


def test_cap_warns_once_and_stays_correct():
    step = tracegrad.jit(tutorial_step, max_variants=2, backend="interpret")
    rng = numpy.random.RandomState(3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(60):
            x = rng.uniform(0.001, 1, size=2).astype(numpy.float32)
            a = np.array(x)
            a.attach_grad()
            c = step(a)
            c_ref, g_ref = _record_grad(x)
            assert c.asnumpy() == c_ref and numpy.array_equal(a.grad.asnumpy(), g_ref)
    cap = [w for w in caught if issubclass(w.category, JitWarning)]
    assert len(cap) == 1, [str(w.message) for w in cap]
    assert "test_jit.py:" in str(cap[0].message)
    assert len(step.variants) == 2 and step.counters.fallbacks > 0


SCALE = 2.0


def helper(x):
    return x * 3


def test_redefined_helper_changed_global_and_closure_retrace_with_reason():
    global helper, SCALE
    offset = 1.0

    def body(x):
        return helper(x) * SCALE + offset

    step = tracegrad.jit(body, backend="interpret")
    x = np.array([1.0, 2.0])
    assert step(x).asnumpy().tolist() == [7.0, 13.0]
    assert step(x).asnumpy().tolist() == [7.0, 13.0]
    assert step.counters.compiles == 1

    old_helper = helper

    def helper(x):  # noqa: F811  (a notebook cell redefines the helper)
        return x * 4

    try:
        assert step(x).asnumpy().tolist() == [9.0, 17.0]
        assert "global 'helper'" in str(step.events[-1])
        SCALE = 3.0
        assert step(x).asnumpy().tolist() == [13.0, 25.0]
        assert "global 'SCALE'" in str(step.events[-1]) and "expected 2.0, seen 3.0" in str(step.events[-1])
        offset = 5.0  # noqa: F841  (read through the closure cell)
        assert step(x).asnumpy().tolist() == [17.0, 29.0]
        assert "closure variable 'offset'" in str(step.events[-1])
        assert step.counters.compiles == 4
        text = step.explain()
        assert "global 'helper'" in text and "global 'SCALE'" in text and "closure variable 'offset'" in text
    finally:
        helper, SCALE = old_helper, 2.0


def test_shape_and_dtype_retrace_scalars_do_not():
    step = tracegrad.jit(lambda x, s: (x * s).sum(), backend="interpret")
    assert float(step(np.ones(3), 2.0).asnumpy()) == 6.0
    assert float(step(np.ones(3), 0.5).asnumpy()) == 1.5
    assert step.counters.compiles == 1
    assert float(step(np.ones(4), 0.5).asnumpy()) == 2.0
    assert "shape of argument 'x'" in str(step.events[-1])
    out = step(np.ones(4, dtype="float64"), 0.5)
    assert out.dtype == numpy.float64 and "dtype of argument 'x'" in str(step.events[-1])
    assert step.counters.compiles == 3


def test_float_used_by_python_is_keyed_by_value():
    def body(x, lr):
        k = lr * 2  # Python arithmetic on the argument: its value is baked, so it keys
        return x * k

    step = tracegrad.jit(body, backend="interpret")
    assert step(np.ones(2), 1.0).asnumpy().tolist() == [2.0, 2.0]
    assert step(np.ones(2), 3.0).asnumpy().tolist() == [6.0, 6.0]
    assert step(np.ones(2), 3.0).asnumpy().tolist() == [6.0, 6.0]
    assert step.counters.compiles == 2 and step.counters.replays == 1


def test_strict_mode_raises_on_retrace():
    step = tracegrad.jit(lambda x: x * 2, strict=True, backend="interpret")
    step(np.ones(2))
    step(np.ones(2))
    with pytest.raises(RetraceError, match="shape of argument"):
        step(np.ones(3))


def test_disable_jit_env(monkeypatch):
    monkeypatch.setenv("TRACEGRAD_DISABLE_JIT", "1")
    step = tracegrad.jit(lambda x: x * 2)
    assert step(np.ones(2)).asnumpy().tolist() == [2.0, 2.0]
    assert step.counters.calls == 1 and step.counters.compiles == 0 and step.disabled


def test_random_samples_are_redrawn_on_every_replay():
    def body(x):
        noise = np.random.uniform(-1, 1, size=2)
        return x + noise * 2, npx.dropout(x, p=0.5, mode="always")

    step = tracegrad.jit(body, backend="interpret")
    for seed in range(4):
        np.random.seed(seed)
        a, d = step(np.ones(2))
        np.random.seed(seed)
        a_ref, d_ref = body(np.ones(2))
        assert numpy.array_equal(a.asnumpy(), a_ref.asnumpy()) and numpy.array_equal(d.asnumpy(), d_ref.asnumpy())
    assert step.counters.compiles == 1 and step.counters.replays == 3

    def shuffled(x):
        np.random.shuffle(x)  # in place on an argument: not replayable
        return x * 1

    sstep = tracegrad.jit(shuffled, backend="interpret")
    with pytest.warns(JitWarning, match="np.random.shuffle"):
        sstep(np.arange(4))
    assert sstep.counters.fallbacks == 1


def test_python_read_of_a_value_falls_back():
    def body(x):
        return x * float(x.sum())

    step = tracegrad.jit(body, backend="interpret")
    with pytest.warns(JitWarning, match="float"):
        step(np.ones(2))
    assert step(np.full(2, 2.0)).asnumpy().tolist() == [8.0, 8.0]


def test_method_and_returned_structure():
    class Model:
        def __init__(self):
            self.w = np.array([1.0, 2.0])
            self.w.attach_grad()

        @tracegrad.jit(backend="interpret")
        def step(self, x, lr):
            with autograd.record():
                loss = (self.w * x).sum()
            loss.backward()
            self.w -= lr * self.w.grad
            return {"loss": loss, "w": self.w, "n": 3}

    m = Model()
    for i in range(3):
        out = m.step(np.array([1.0, 1.0]), 0.5)
        assert out["w"] is m.w and out["n"] == 3 and float(out["loss"].asnumpy()) == 3.0 - i
    assert m.w.asnumpy().tolist() == [-0.5, 0.5]
    assert Model.step.counters.compiles == 1 and Model.step.counters.replays == 2
    m.w = np.array([0.0, 0.0])  # rebinding an attribute retraces
    m.w.attach_grad()
    m.step(np.array([1.0, 1.0]), 0.5)
    assert "attribute self.w" in str(Model.step.events[-1])
    assert m.w.asnumpy().tolist() == [-0.5, -0.5]


def test_setitem_and_inplace_writes_are_replayed():
    buf = np.zeros(4)

    def body(x):
        buf[1:3] = x
        buf[0] = 7.0
        buf[...] += 1
        return buf.sum()

    step = tracegrad.jit(body, backend="interpret")
    for k in range(3):
        buf[...] = 0.0
        s = step(np.array([k, 2.0 * k]))
        assert buf.asnumpy().tolist() == [8.0, k + 1.0, 2.0 * k + 1, 1.0]
        assert float(s.asnumpy()) == 11.0 + 3 * k
    assert step.counters.compiles == 1


def test_variants_print_trace_and_source():
    step = tracegrad.jit(tutorial_step, backend="interpret")
    a = np.array([0.3, 0.4])
    a.attach_grad()
    step(a)
    text = step.show_variants()
    assert "guard[expect=False" in text and "def replay" in text


class _Net:
    def __init__(self):
        self.layers = [np.array([1.0, 2.0])]
        self.scale = 2.0


NET = _Net()


def test_global_object_attributes_lists_and_grad_req_retrace():
    def body(x):
        return (NET.layers[0] * x).sum() * NET.scale

    step = tracegrad.jit(body, backend="interpret")
    assert float(step(np.ones(2)).asnumpy()) == 6.0
    NET.layers[0] = np.array([3.0, 3.0])  # an element of a list attribute is replaced
    assert float(step(np.ones(2)).asnumpy()) == 12.0
    assert "NET.layers[0]" in str(step.events[-1])
    NET.scale = 1.0
    assert float(step(np.ones(2)).asnumpy()) == 6.0
    assert "attribute NET.scale" in str(step.events[-1])

    w = np.array([1.0, 2.0])

    def grad_step(x):
        with autograd.record():
            y = (w * x).sum()
        y.backward()
        return y

    w.attach_grad()
    gstep = tracegrad.jit(grad_step, backend="interpret")
    gstep(np.ones(2))
    w.attach_grad("add")  # grad_req write -> add: the replayed step must accumulate
    gstep(np.array([1.0, 2.0]))
    gstep(np.array([1.0, 2.0]))
    assert w.grad.asnumpy().tolist() == [2.0, 4.0]
    assert "grad_req" in str(gstep.events[-1])


COUNTER = [0]


def test_side_effects_and_host_constructs_fall_back_correctly():
    def bump(x):
        COUNTER.append(1)  # mutates a global list: a replay would skip it
        return x * 2

    step = tracegrad.jit(bump, backend="interpret")
    with pytest.warns(JitWarning, match="COUNTER"):
        step(np.ones(2))
    step(np.ones(2))
    assert len(COUNTER) == 3

    def detached(x):
        y = (x * 2).detach()
        z = x.copy()
        x[:] = 0.0  # the copy keeps the old value
        return y + z

    dstep = tracegrad.jit(detached, backend="interpret")
    for k in range(3):
        a = np.array([1.0, k])
        out = dstep(a)
        assert out.asnumpy().tolist() == [3.0, 3.0 * k] and a.asnumpy().tolist() == [0.0, 0.0]
    assert dstep.counters.compiles == 1


def test_int_args_are_keyed_by_value_and_nested_jit_inlines():
    inner = tracegrad.jit(lambda x: x * 2, backend="interpret")

    def body(x, n):
        for _ in range(n):
            x = inner(x)
        return x

    step = tracegrad.jit(body, backend="interpret")
    assert step(np.ones(1), 2).asnumpy().tolist() == [4.0]
    assert step(np.ones(1), 3).asnumpy().tolist() == [8.0]
    assert step(np.ones(1), 3).asnumpy().tolist() == [8.0]
    assert step.counters.compiles == 2 and inner.counters.compiles == 0
    assert "argument 'n'" in str(step.events[-1])


def test_exception_in_body_leaves_no_capture_behind():
    def bad(x):
        raise KeyError("boom")

    step = tracegrad.jit(bad, backend="interpret")
    with pytest.raises(KeyError):
        step(np.ones(2))
    from tracegrad.tracer.state import STATE

    assert STATE.capture is None
    assert (np.ones(2) * 2).asnumpy().tolist() == [2.0, 2.0]


def test_lazy_argument_from_a_record_scope_is_computed_first():
    step = tracegrad.jit(lambda x: x + 1, backend="interpret")
    step(np.ones(2))
    x = np.ones(2)
    x.attach_grad()
    with autograd.record():
        y = x * 3
    assert step(y).asnumpy().tolist() == [4.0, 4.0]
    assert step.counters.compiles == 1


def test_clipping_and_metrics_inside_the_step_match_python():
    def make():
        w = np.array([[0.5, -1.0], [2.0, 0.3]])
        w.attach_grad()

        def step(x, y, lr):
            with autograd.record():
                logits = x @ w
                loss = -npx.pick(npx.log_softmax(logits), y).mean()
            loss.backward()
            norm = np.sqrt((w.grad ** 2).sum())
            if norm > 0.5:  # a guard: clip only when the gradient is large
                w.grad[:] = w.grad * (0.5 / norm)
            w[:] = w - lr * w.grad
            acc = (logits.argmax(axis=1) == y).mean()
            return loss, acc

        return w, step

    w1, plain = make()
    w2, step = make()
    jstep = tracegrad.jit(step, backend="interpret")
    rng = numpy.random.RandomState(5)
    for i in range(30):
        x = rng.randn(4, 2).astype(numpy.float32) * (3 if i % 3 else 0.01)
        y = rng.randint(0, 2, 4)
        l1, a1 = plain(np.array(x), np.array(y, dtype="int64"), 0.1)
        l2, a2 = jstep(np.array(x), np.array(y, dtype="int64"), 0.1)
        numpy.testing.assert_allclose(l2.asnumpy(), l1.asnumpy(), rtol=1e-6)
        assert a2.asnumpy() == a1.asnumpy()
        numpy.testing.assert_allclose(w2.asnumpy(), w1.asnumpy(), rtol=1e-6)
    assert 1 <= jstep.counters.compiles <= 2 and jstep.counters.fallbacks == 0


PARAMS = {"w": np.array([1.0, 1.0])}


def test_dict_entries_and_user_module_attributes_retrace(tmp_path):
    import sys
    import types

    mod = types.ModuleType("jit_user_mod")
    mod.__file__ = str(tmp_path / "jit_user_mod.py")
    mod.B = np.array([10.0, 20.0])
    sys.modules["jit_user_mod"] = mod
    globals()["jit_user_mod"] = mod
    try:
        def body(x):
            return x * PARAMS["w"] + jit_user_mod.B  # noqa: F821

        step = tracegrad.jit(body, backend="interpret")
        assert step(np.ones(2)).asnumpy().tolist() == [11.0, 21.0]
        PARAMS["w"] = np.array([2.0, 3.0])
        assert step(np.ones(2)).asnumpy().tolist() == [12.0, 23.0]
        assert "PARAMS['w']" in str(step.events[-1])
        mod.B = np.array([0.0, 0.0])
        assert step(np.ones(2)).asnumpy().tolist() == [2.0, 3.0]
        assert "module attribute jit_user_mod.B" in str(step.events[-1])
        assert step(np.ones(2)).asnumpy().tolist() == [2.0, 3.0]
        assert step.counters.compiles == 3
    finally:
        del sys.modules["jit_user_mod"], globals()["jit_user_mod"]
        PARAMS["w"] = np.array([1.0, 1.0])


MODE = 1.0


def test_a_global_that_keeps_changing_is_capped():
    global MODE

    def body(x):
        return x * MODE

    step = tracegrad.jit(body, max_variants=3, backend="interpret")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for i in range(10):
                MODE = float(i)
                assert step(np.ones(1)).asnumpy().tolist() == [float(i)]
        msgs = [str(w.message) for w in caught if issubclass(w.category, JitWarning)]
        assert len(msgs) == 1 and "global 'MODE'" in msgs[0]
        assert step.counters.compiles == 4 and step.counters.fallbacks == 6
    finally:
        MODE = 1.0


def _inplace_arg():
    def f(x, y):
        x += y
        x *= 2
        return x.sum()

    return [], f, lambda r: [np.array(r.randn(3)), np.array(r.randn(3))]


def _setitem_arg():
    def f(x):
        x[0] = x[1] * 3
        x[1:] += 1
        return x

    return [], f, lambda r: [np.array(r.randn(3))]


def _retain_grad():
    w = np.array([1.0, 2.0, 3.0])
    w.attach_grad()

    def f(x):
        with autograd.record():
            h = w * x
            h.attach_grad()
            y = (h * h).sum()
        y.backward()
        return y, h.grad

    return [w], f, lambda r: [np.array(r.randn(3))]


def _grad_add_and_autograd_grad():
    w = np.array([1.0, 2.0, 3.0])
    w.attach_grad("add")

    def f(x):
        with autograd.record():
            y = (w * x * w).sum()
        (g,) = autograd.grad(y, [w], retain_graph=True)
        y.backward()
        return g * 2

    return [w], f, lambda r: [np.array(r.randn(3))]


def _attach_on_arg():
    def f(x):
        x.attach_grad()
        with autograd.record():
            y = (x**3).sum()
        y.backward()
        return x.grad

    return [], f, lambda r: [np.array(r.randn(3))]


def _int_index_and_int_sync():
    def f(x, idx):
        return x[idx] * 2, int(x.argmax())

    return [], f, lambda r: [np.array(r.randn(5)), np.array([0, 2, 4], dtype="int64")]


@pytest.mark.parametrize("make", [_inplace_arg, _setitem_arg, _retain_grad, _grad_add_and_autograd_grad,
                                  _attach_on_arg, _int_index_and_int_sync])
def test_step_patterns_match_plain_python(make):
    state1, plain, args_of = make()
    state2, body, _ = make()
    step = tracegrad.jit(body, backend="interpret")
    r1, r2 = numpy.random.RandomState(7), numpy.random.RandomState(7)
    for _ in range(8):
        a1, a2 = args_of(r1), args_of(r2)
        out1, out2 = plain(*a1), step(*a2)
        out1 = out1 if isinstance(out1, tuple) else (out1,)
        out2 = out2 if isinstance(out2, tuple) else (out2,)
        for u, v in zip(out1, out2):
            if isinstance(u, tracegrad.ndarray):
                numpy.testing.assert_allclose(v.asnumpy(), u.asnumpy(), rtol=1e-6)
            else:
                assert u == v
        for x1, x2 in zip(a1 + state1, a2 + state2):
            numpy.testing.assert_allclose(x2.asnumpy(), x1.asnumpy(), rtol=1e-6)
            if x1.grad is not None:
                numpy.testing.assert_allclose(x2.grad.asnumpy(), x1.grad.asnumpy(), rtol=1e-6)
    assert step.counters.fallbacks == 0 and step.counters.replays >= 3


def test_aliased_arguments_are_part_of_the_signature():
    def body(x, y):
        x += 1
        return y * 2  # reads y after the write to x: differs when y is x

    step = tracegrad.jit(body, backend="interpret")
    a, b = np.zeros(2), np.zeros(2)
    assert step(a, b).asnumpy().tolist() == [0.0, 0.0]
    w = np.zeros(2)
    assert step(w, w).asnumpy().tolist() == [2.0, 2.0]
    assert "same object" in str(step.events[-1])
    assert step(np.zeros(2), np.zeros(2)).asnumpy().tolist() == [0.0, 0.0]
    assert step.counters.compiles == 2


GW = np.array([1.0, 1.0])


def test_argument_that_is_also_a_global_array():
    def body(x):
        x += 1
        return GW * 1  # reads the global after writing the argument

    step = tracegrad.jit(body, backend="interpret")
    GW[:] = 1.0
    assert step(np.zeros(2)).asnumpy().tolist() == [1.0, 1.0]
    assert step(GW).asnumpy().tolist() == [2.0, 2.0]  # now the argument IS the global
    assert step(np.zeros(2)).asnumpy().tolist() == [2.0, 2.0]
    assert "is not an outside array" in str(step.events[1]) and "argument 0 is global 'GW'" in str(step.events[2])


def test_a_returned_random_sample_is_fresh_on_every_replay():
    def draw():
        return np.random.uniform(size=3)

    def derived(x):
        s = np.random.normal(size=3)
        return s * 2 + 1, x + 1, s

    for body, args in ((draw, ()), (derived, (np.ones(3),))):
        step = tracegrad.jit(body, backend="interpret")
        seen = []
        for seed in range(3):
            np.random.seed(seed)
            out = step(*args)
            np.random.seed(seed)
            ref = body(*args)
            out, ref = (out, ref) if isinstance(out, tuple) else ((out,), (ref,))
            for a, b in zip(out, ref):
                assert numpy.array_equal(a.asnumpy(), b.asnumpy())
            seen.append(out[0].asnumpy())
        assert step.counters.compiles == 1 and step.counters.replays == 2
        assert not numpy.array_equal(seen[1], seen[2])
