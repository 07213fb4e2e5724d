"""Small recorded values computed at once (tracer/eager.py) against the traced path.

Every op case and the tutorial run twice, with the eager path forced on and off: forward
values and gradients must agree (the eager values are the reference interpreter's, the
traced ones may come from a compiled program: equal up to float64 rounding). The policy
tests pin when the path is on (a session that reads recorded values) and that a sync on an
eager value runs no trace.
"""

from __future__ import annotations

import numpy
import pytest

from tracegrad import autograd
from tracegrad import np as tnp
from tracegrad.examples import tutorial_f
from tracegrad.tracer import eager, lazy

from op_cases import ALL, Case


def _run_case(case: Case, policy: str, monkeypatch) -> tuple[list, list, bool]:
    """(forward values, gradients, whether the result had its value at once) of one case."""
    monkeypatch.setattr(eager, "POLICY", policy)
    xs = case.inputs(seed=5)
    args = [tnp.array(x, dtype="float64") for x in xs]
    if case.grad:
        for a in args:
            a.attach_grad()
    with autograd.record():
        out = case.tg(*args)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        at_once = all(o._data is not None for o in outs)
        head = None
        for i, o in enumerate(outs):
            if o.dtype.kind != "f":
                continue
            w = numpy.random.RandomState(i).normal(size=o.shape)
            term = (o * tnp.array(w, dtype=o.dtype)).sum()
            head = term if head is None else head + term
    values = [o.asnumpy() for o in outs]
    grads = []
    if case.grad and head is not None:
        head.backward()
        grads = [a.grad.asnumpy() for a in args]
    return values, grads, at_once


@pytest.mark.parametrize("case", ALL, ids=lambda c: c.name)
def test_eager_and_traced_paths_agree(case: Case, monkeypatch) -> None:
    traced_vals, traced_grads, _ = _run_case(case, "never", monkeypatch)
    vals, grads, _ = _run_case(case, "always", monkeypatch)
    for i, (a, b) in enumerate(zip(vals, traced_vals)):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{case.name} output {i}"
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=f"{case.name} eager out{i}")
    for i, (a, b) in enumerate(zip(grads, traced_grads)):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=f"{case.name} eager d/dinput{i}")


def test_small_cases_do_run_eagerly(monkeypatch) -> None:
    """The comparison above is not vacuous: most small cases have values at once."""
    eager_cases = [c.name for c in ALL[:50] if _run_case(c, "always", monkeypatch)[2]]
    assert len(eager_cases) > 35, eager_cases


def _tutorial(seed: int) -> tuple:
    rs = numpy.random.RandomState(seed)
    a = tnp.array(rs.uniform(-1, 1, size=2))
    a.attach_grad()
    with autograd.record():
        c = tutorial_f(a)
    c.backward()
    return c.asnumpy(), a.grad.asnumpy()


@pytest.mark.parametrize("policy", ["always", "auto"])
def test_tutorial_same_values_and_gradients(policy: str, monkeypatch) -> None:
    for seed in range(6):
        monkeypatch.setattr(eager, "POLICY", "never")
        want = _tutorial(seed)
        monkeypatch.setattr(eager, "POLICY", policy)
        got = _tutorial(seed)
        for g, w in zip(got, want):
            numpy.testing.assert_array_equal(g, w)


def test_auto_turns_on_after_a_sync_and_off_after_a_session_without(monkeypatch) -> None:
    monkeypatch.setattr(eager, "POLICY", "auto")
    monkeypatch.setattr(eager.MODE, "active", False)
    monkeypatch.setattr(eager.MODE, "syncs", 0)
    x = tnp.array([1.0, 2.0])
    x.attach_grad()
    with autograd.record():
        y = (x * 2).sum()
        assert y._data is None  # no sync yet: recorded lazily
        assert float(y) == 6.0
        z = x * 3
        assert z._data is not None  # after a sync: small values at once
        s = z.sum()
    s.backward()
    assert eager.MODE.active  # the session read a value
    with autograd.record():
        y = (x * 2).sum()
        assert y._data is not None
    y.backward()
    assert not eager.MODE.active  # that session read nothing: back to lazy
    with autograd.record():
        assert (x * 2)._data is None


def test_sync_on_eager_values_runs_no_trace(monkeypatch) -> None:
    monkeypatch.setattr(eager, "POLICY", "always")
    runs = []
    real = lazy.materialize
    monkeypatch.setattr(lazy, "materialize", lambda *a, **k: runs.append(1) or real(*a, **k))
    a = tnp.array([0.3, -0.2])
    a.attach_grad()
    with autograd.record():
        c = tutorial_f(a)
    assert not runs
    c.backward()
    g = a.grad.asnumpy()
    assert g[1] == 0 and g[0] == c.item() / a.asnumpy()[0]


def test_large_values_stay_lazy(monkeypatch) -> None:
    monkeypatch.setattr(eager, "POLICY", "always")
    x = tnp.ones(eager.MAX_ELEMENTS + 1)
    x.attach_grad()
    with autograd.record():
        assert (x * 2)._data is None
        assert (x.sum())._data is None  # a small result of a large operand: fused later
