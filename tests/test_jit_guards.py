"""tracegrad.jit guards: the closed set of kinds, each retracing with a message that names it;
threads sharing a compiled step; the bounded event list and the cap warning's line."""

import inspect
import threading
import types
import warnings

import numpy
import pytest

import tracegrad
from tracegrad import autograd, np, npx
from tracegrad.jit import JitWarning
from tracegrad.jit.api import EVENTS_KEPT
from tracegrad.jit.guards import GuardKind, guard
from tracegrad.jit.signature import describe_key_change


def test_an_unknown_guard_kind_cannot_be_created():
    with pytest.raises(ValueError):
        GuardKind("shape of something")
    with pytest.raises(AttributeError):
        GuardKind.ARG_COLOUR  # noqa: B018
    with pytest.raises(TypeError, match="GuardKind"):
        guard("GLOBAL_VALUE", "global 'x'", "f.py:1", "G0.get('x')", 1.0)
    with pytest.raises(ValueError, match="TRACE_GUARD"):
        guard(GuardKind.TRACE_GUARD, "branch", "f.py:1", "x", True)
    with pytest.raises(ValueError, match="source"):
        guard(GuardKind.GLOBAL_VALUE, "global 'x'", "f.py:1", "", 1.0)
    c = guard(GuardKind.GLOBAL_VALUE, "global 'x'", "f.py:1", "G0.get('x')", 1.0)
    assert c.kind is GuardKind.GLOBAL_VALUE and c.by_eq and "GLOBAL_VALUE" in repr(c) and "f.py:1" in repr(c)


# ---- each kind retraces, and the event names it ---------------------------------------
SCALE = 2.0
KMOD = types.ModuleType("jit_kinds_mod")
KMOD.__file__ = "/tmp/jit_kinds_mod.py"  # a user module (not tracegrad, stdlib or site-packages)
KMOD.B = 2.0
LIST = []
GW = None
NPG = numpy.array([1.0, 2.0])


class Holder:
    def __init__(self, scale):
        self.scale = scale

    def apply(self, x):
        return x * self.scale


def _scenarios():
    """kind -> (body, setup() -> list of call thunks: the last one must retrace with that kind)."""
    out = {}

    def arr(*shape, dtype="float32"):
        return np.array(numpy.arange(1, 1 + int(numpy.prod(shape))).reshape(shape)).astype(dtype)

    def count(*xs):
        return xs[0] * len(xs)

    out[GuardKind.ARG_COUNT] = (count, lambda: [((arr(2),), {}), ((arr(2), arr(2)), {})])

    def typed(x, n):
        return x * 2 if n is None else x * 3

    out[GuardKind.ARG_TYPE] = (typed, lambda: [((arr(2), None), {}), ((arr(2), "a"), {})])

    def plain(x):
        return x * 2

    out[GuardKind.ARG_SHAPE] = (plain, lambda: [((arr(2),), {}), ((arr(3),), {})])
    out[GuardKind.ARG_DTYPE] = (plain, lambda: [((arr(2),), {}), ((arr(2, dtype="float64"),), {})])

    def with_grad():
        a = arr(2)
        a.attach_grad()
        return [((arr(2),), {}), ((a,), {})]

    out[GuardKind.ARG_GRAD_REQ] = (plain, with_grad)

    def by_object(h, x):
        return h.apply(x)

    out[GuardKind.ARG_IDENTITY] = (by_object, lambda: [((Holder(2.0), arr(2)), {}), ((Holder(2.0), arr(2)), {})])

    def two(a, b):
        return a + b

    def aliased():
        w = arr(2)
        return [((w, arr(2)), {}), ((w, w), {})]

    out[GuardKind.ARG_ALIAS] = (two, aliased)

    def scaled(x, s):
        return x * s

    out[GuardKind.SCALAR_TYPE] = (scaled, lambda: [((arr(2), 1.5), {}), ((arr(2), 2), {})])
    out[GuardKind.SCALAR_VALUE] = (scaled, lambda: [((arr(2), 2), {}), ((arr(2), 3), {})])

    def code_body(x):
        return x * 2

    def other_code(x):
        return x * 5

    def swap_code():
        code_body.__code__ = other_code.__code__

    out[GuardKind.CODE_ID] = (code_body, lambda: [((arr(2),), {}), swap_code, ((arr(2),), {})])

    def global_body(x):
        return x * SCALE

    def set_global(v):
        global SCALE
        SCALE = v

    out[GuardKind.GLOBAL_VALUE] = (global_body, lambda: [lambda: set_global(2.0), ((arr(2),), {}),
                                                          lambda: set_global(3.0), ((arr(2),), {})])

    def module_body(x):
        return x * KMOD.B

    out[GuardKind.MODULE_ATTR] = (module_body, lambda: [lambda: setattr(KMOD, "B", 2.0), ((arr(2),), {}),
                                                         lambda: setattr(KMOD, "B", 4.0), ((arr(2),), {})])

    def closure():
        k = 2.0

        def body(x):
            return x * k

        def bump():
            nonlocal k
            k = 6.0

        return body, bump

    cbody, cbump = closure()
    out[GuardKind.CLOSURE_CELL] = (cbody, lambda: [((arr(2),), {}), cbump, ((arr(2),), {})])

    h = Holder(2.0)
    out[GuardKind.OBJECT_ATTR] = (by_object, lambda: [((h, arr(2)), {}), lambda: setattr(h, "scale", 7.0),
                                                       ((h, arr(2)), {})])

    class Swapped:
        def apply(self, x):
            return x * 2

    hs = Swapped()
    out[GuardKind.METHOD] = (by_object, lambda: [((hs, arr(2)), {}),
                                                  lambda: setattr(Swapped, "apply", lambda self, x: x * 8),
                                                  ((hs, arr(2)), {})])

    def list_body(x):
        return x * LIST[0] + len(LIST)

    def fill(*arrays):
        LIST[:] = list(arrays)

    out[GuardKind.CONTAINER_LEN] = (list_body, lambda: [lambda: fill(arr(2)), ((arr(2),), {}),
                                                         lambda: LIST.append(arr(2)), ((arr(2),), {})])
    out[GuardKind.CONTAINER_ITEM] = (list_body, lambda: [lambda: fill(arr(2)), ((arr(2),), {}),
                                                          lambda: fill(arr(2) * 3), ((arr(2),), {})])

    out[GuardKind.CONTAINER_VALUES] = (list_body, lambda: [lambda: fill(2.0), ((arr(2),), {}),
                                                            lambda: fill(5.0), ((arr(2),), {})])

    def np_body(x):
        return x * np.array(NPG)

    out[GuardKind.NUMPY_VALUE] = (np_body, lambda: [((arr(2),), {}), lambda: NPG.__setitem__(0, 9.0),
                                                     ((arr(2),), {})])

    def gw_body(x):
        return x + GW

    def set_gw():
        global GW
        GW = arr(2)
        return GW

    def outside():
        g = set_gw()
        return [((g,), {}), ((arr(2),), {})]

    out[GuardKind.OUTSIDE_ALIAS] = (gw_body, outside)

    def grad_req():
        g = set_gw()
        return [((arr(2),), {}), lambda: g.attach_grad(), ((arr(2),), {})]

    out[GuardKind.GRAD_REQ] = (gw_body, grad_req)

    def mode_body(x):
        return npx.dropout(x, p=0.5)

    def train_call():
        with autograd.train_mode():
            return STEPS[-1](arr(2))

    out[GuardKind.TRAINING_MODE] = (mode_body, lambda: [((arr(2),), {}), train_call])

    def dtype_body(x):
        return x * np.ones(2)

    def float64_call():
        npx.set_np(dtype=True)
        try:
            return STEPS[-1](arr(2, dtype="float64"))
        finally:
            npx.reset_np()

    out[GuardKind.DEFAULT_DTYPE] = (dtype_body, lambda: [((arr(2, dtype="float64"),), {}), float64_call])

    def branch(x):
        if x.sum() > 0:
            return x * 2
        return x - 1

    out[GuardKind.TRACE_GUARD] = (branch, lambda: [((arr(2),), {}), ((arr(2) * -1,), {})])
    return out


STEPS = []
SCENARIOS = _scenarios()
KINDS = [k for k in GuardKind if k is not GuardKind.ARG_DEVICE]  # a device needs a GPU: unit-tested below


def test_every_kind_has_a_scenario():
    assert set(SCENARIOS) == set(KINDS)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_each_guard_kind_retraces_with_a_message_naming_it(kind):
    body, setup = SCENARIOS[kind]
    step = tracegrad.jit(body, backend="interpret")
    STEPS.append(step)
    calls = setup()
    try:
        for c in calls:
            if callable(c):
                res = c()
                if res is not None:  # a call made inside a context (training mode, dtype)
                    assert step.counters.compiles >= 1
                continue
            args, kwargs = c
            out = step(*args, **kwargs)
            ref = body(*args, **kwargs)
            numpy.testing.assert_allclose(out.asnumpy(), ref.asnumpy())
        assert step.counters.compiles == 2, step.explain()
        ev = step.events[-1]
        assert ev.guard is kind, step.explain()
        assert kind.name in str(ev) and kind.name in step.explain()
        assert ev.where and "?" not in ev.where, str(ev)
    finally:
        STEPS.pop()
        LIST.clear()
        NPG[:] = [1.0, 2.0]


def test_device_and_keyword_changes_of_the_key_name_their_kind():
    a = ((2,), numpy.dtype("float32"), "null", None)
    b = ((2,), numpy.dtype("float32"), "null", "gpu(0)")
    kind, item, x, y = describe_key_change((a, None), (b, None), ["x"])
    assert kind is GuardKind.ARG_DEVICE and item == "device of argument 'x'" and y == "gpu(0)"
    kind, item, _, _ = describe_key_change((("lr", (int, 1)), None), (("lr", (int, 2)), None), [])
    assert kind is GuardKind.SCALAR_VALUE and "'lr'" in item
    kind, item, _, _ = describe_key_change(((tuple, ((int, 1), a)), None), ((tuple, ((int, 1), b)), None), ["xs"])
    assert kind is GuardKind.ARG_DEVICE and item == "device of argument 'xs'[1]"


# ---- threads ---------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["interpret", pytest.param("auto", marks=pytest.mark.slow)])
def test_threads_share_the_compiled_variants(backend):
    @tracegrad.jit(backend=backend)
    def step(x):
        if x.sum() > 0:
            return x * 2
        return x - 1

    xs = [np.array(numpy.array([1.0, 2.0], "float32") * s) for s in (-1, 1)]
    errors = []
    start = threading.Barrier(4)

    def work():
        start.wait()
        for i in range(400):
            x = xs[i % 2]
            out = step(x).asnumpy()
            ref = x.asnumpy() * 2 if i % 2 else x.asnumpy() - 1
            if not numpy.array_equal(out, ref):
                errors.append((i, out, ref))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    c = step.counters
    assert c.compiles <= 3 and c.fallbacks == 0 and len(step.variants) <= 3, step.explain()
    assert c.calls == 1600 or c.calls > 1500  # counters are not locked: a lost increment is allowed


# ---- the event list and the cap warning ---------------------------------------------------
def test_events_are_bounded_past_the_cap():
    def body(x, n):
        return x * n

    step = tracegrad.jit(body, max_variants=2, backend="interpret")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", JitWarning)
        for i in range(300):
            assert step(np.ones(2), i).asnumpy().tolist() == [float(i)] * 2
    assert len(step.events) == EVENTS_KEPT
    assert sum(step.event_counts.values()) == 300
    assert step.event_counts["fallback (cap) SCALAR_VALUE"] == 298
    text = step.explain()
    assert "300 compile/fallback events" in text and f"the last {EVENTS_KEPT}" in text
    assert len(text) < 20_000


def _line_of(fn, needle):
    src, first = inspect.getsourcelines(fn)
    return first + next(i for i, s in enumerate(src) if needle in s)


def test_the_cap_warning_names_the_line_whose_outcome_keeps_changing():
    def body(x):
        n = 0
        while (x > n).any():  # the outcome sequence differs for every new max
            n += 1
        return x * n

    step = tracegrad.jit(body, max_variants=2, backend="interpret")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(1, 6):
            assert step(np.array([float(k)])).asnumpy().tolist() == [float(k * k)]
    msgs = [str(w.message) for w in caught if issubclass(w.category, JitWarning)]
    assert len(msgs) == 1, msgs
    line = _line_of(body, "while (x > n)")
    assert "TRACE_GUARD: guard" in msgs[0] and f"test_jit_guards.py:{line}" in msgs[0], msgs[0]
    assert " at ?" not in msgs[0]
    assert caught[0].filename == __file__  # attributed to the user's call


def test_the_cap_warning_for_a_changing_shape_names_the_call():
    def body(x):
        return x * 2

    step = tracegrad.jit(body, max_variants=2, backend="interpret")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(1, 5):
            step(np.ones(n))  # the call line
    msgs = [str(w.message) for w in caught if issubclass(w.category, JitWarning)]
    line = _line_of(test_the_cap_warning_for_a_changing_shape_names_the_call, "step(np.ones(n))  # the call")
    assert len(msgs) == 1 and "ARG_SHAPE: shape of argument 'x'" in msgs[0]
    assert f"test_jit_guards.py:{line}" in msgs[0], msgs[0]


# ---- arrays made inside the step: baked only when nothing mutable feeds them ----------------
NP_TABLE = numpy.array([1.0, 2.0], "float32")
NP_BIG = numpy.arange(8192, dtype="float32")


def test_arrays_made_from_shapes_and_keyed_scalars_are_baked_safely():
    def body(x, n):
        return x + np.zeros(x.shape) + np.arange(n).sum() + np.ones(2) * n

    step = tracegrad.jit(body, backend="interpret")
    for n in (1, 2, 1, 2, 3):
        numpy.testing.assert_allclose(step(np.ones(2), n).asnumpy(), body(np.ones(2), n).asnumpy())
    assert step.counters.compiles == 3 and step.counters.fallbacks == 0


def test_a_numpy_array_the_step_reaches_is_read_live_or_guarded():
    direct = tracegrad.jit(lambda x: x * NP_TABLE, backend="interpret")
    copied = tracegrad.jit(lambda x: x * np.array(NP_TABLE), backend="interpret")
    try:
        for k in range(4):
            NP_TABLE[0] = 10.0 + k  # in place: the same object
            for step in (direct, copied):
                assert step(np.ones(2)).asnumpy().tolist() == [10.0 + k, 2.0]
        assert direct.counters.compiles == 1 and direct.counters.replays == 3  # bound by identity, read live
        assert copied.counters.compiles == 4 and copied.events[-1].guard is GuardKind.NUMPY_VALUE
        assert "NP_TABLE" in str(copied.events[-1])
    finally:
        NP_TABLE[:] = [1.0, 2.0]

    big = tracegrad.jit(lambda x: x + np.array(NP_BIG)[:2], backend="interpret")
    with pytest.warns(JitWarning, match="NP_BIG"):
        big(np.ones(2))
    NP_BIG[0] = 5.0
    assert big(np.ones(2)).asnumpy().tolist() == [6.0, 2.0] and big.counters.compiles == 0


def test_a_numpy_argument_copied_inside_the_step_is_not_baked():
    def body(x, a):
        return x * np.array(a)

    step = tracegrad.jit(body, backend="interpret")
    with pytest.warns(JitWarning, match="numpy argument 'a'"):
        step(np.ones(2), numpy.array([1.0, 2.0]))
    assert step(np.ones(2), numpy.array([3.0, 4.0])).asnumpy().tolist() == [3.0, 4.0]
    direct = tracegrad.jit(lambda x, a: x * a, backend="interpret")  # used directly: read each call
    for v in (1.0, 5.0, 7.0):
        assert direct(np.ones(2), numpy.full(2, v, "float32")).asnumpy().tolist() == [v, v]
    assert direct.counters.compiles == 1


def test_a_list_of_scalars_the_step_reads_is_guarded_by_value():
    coef = [1.0, 2.0]

    def body(x):
        return x * np.array(coef)

    step = tracegrad.jit(body, backend="interpret")
    assert step(np.ones(2)).asnumpy().tolist() == [1.0, 2.0]
    coef[1] = 3.0
    assert step(np.ones(2)).asnumpy().tolist() == [1.0, 3.0]
    assert step.events[-1].guard is GuardKind.CONTAINER_VALUES and "coef" in str(step.events[-1])


RNG = numpy.random.default_rng(0)


@pytest.mark.parametrize("draw", ["numpy", "python", "generator"])
def test_drawing_from_numpy_or_python_random_inside_the_step_is_not_baked(draw):
    import random

    def body(x):
        if draw == "generator":
            r = RNG.random(2)
        else:
            r = numpy.random.rand(2) if draw == "numpy" else [random.random(), random.random()]
        return x * np.array(r)

    step = tracegrad.jit(body, backend="interpret")
    with pytest.warns(JitWarning, match="numpy.random, Python's random module or a generator"):
        a = step(np.ones(2)).asnumpy()
    b = step(np.ones(2)).asnumpy()
    assert not numpy.array_equal(a, b) and step.counters.compiles == 0
