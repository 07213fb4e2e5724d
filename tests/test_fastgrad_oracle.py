"""The cached fast backward (tracer/fastgrad.py) against float64 central differences, for
every differentiable op case, interpreted and compiled.

The fast path refuses explicit head gradients, so each case's head is
`sum(out * w)` with fixed random weights `w` (a constant, not a variable): its implicit head
gradient is one, and the gradient it propagates into `out` is `w`.
`test_every_differentiable_row_has_a_fast_backward_check` fails when a differentiable
row of the op table is reached by none of these checks.
"""

from __future__ import annotations

import numpy
import pytest

from tracegrad import autograd, ir
from tracegrad import np as tnp
from tracegrad.ir import Op
from tracegrad.test_utils import assert_almost_equal, numeric_grad
from tracegrad.runtime import execute
from tracegrad.tracer import fastgrad

from op_cases import GRAD, Case

# rows the fast path never sees in a recorded forward graph, and where they are checked
NOT_ON_THE_FAST_PATH = {
    Op.CUSTOM: "autograd.Function takes the general path by design (test_semantics.py)",
    Op.CUSTOM_VJP: "only inside a Function's backward (test_semantics.py)",
    Op.PROD_OTHERS: "emitted by prod's gradient rule: its forward runs in every prod case here; "
                    "its own gradient is second order (test_higher_order.py)",
    Op.SLICE_VJP: "emitted by slice's gradient rule (second order: test_higher_order.py)",
    Op.SCATTER_ADD: "emitted by gather's gradient rule (second order: test_higher_order.py)",
    Op.ADJUGATE: "emitted by det's gradient rule (second order: test_higher_order.py)",
    Op.PAD_VJP: "emitted by pad's gradient rule (second order: test_higher_order.py)",
}


def _weights(shape, seed):
    return numpy.random.RandomState(seed).normal(size=shape)


class _Taken:
    """Counts backward() calls that the fast path served."""

    def __init__(self, monkeypatch):
        self.n = 0
        real = fastgrad.try_backward

        def spy(*a, **k):
            ok = real(*a, **k)
            self.n += bool(ok)
            return ok

        monkeypatch.setattr(fastgrad, "try_backward", spy)


def _fast_grads(cases, xss, weights, dtype="float64"):
    """One record scope over `cases`, head `sum_i sum(out_i * w_i)`, one backward()."""
    leaves, ops = [], set()
    with autograd.record():
        total = None
        for case, xs, w in zip(cases, xss, weights):
            args = [tnp.array(x, dtype=dtype) for x in xs]
            for a in args:
                a.attach_grad()
            leaves.append(args)
            out = case.tg(*args)
            ops |= {e.op for e in autograd.get_symbol(out).eqns}
            term = (out * tnp.array(w, dtype=out.dtype)).sum()
            total = term if total is None else total + term
    total.backward()
    return [[a.grad.asnumpy().astype(numpy.float64) for a in args] for args in leaves], ops


@pytest.mark.parametrize("case", GRAD, ids=lambda c: c.name)
def test_fast_backward_matches_central_differences(case: Case, monkeypatch) -> None:
    taken = _Taken(monkeypatch)
    xs = case.inputs(seed=3)
    with autograd.record():
        probe = case.tg(*[tnp.array(x, dtype="float64") for x in xs])
    w = _weights(probe.shape, 3)
    (got,), _ = _fast_grads([case], [xs], [w])
    want = numeric_grad(case.tg, xs, head=w, eps=case.eps)
    for i, (g, n) in enumerate(zip(got, want)):
        assert_almost_equal(g, n, rtol=case.rtol, atol=1e-8, names=(f"{case.name} fast d/dinput{i}", "numeric"))
    (again,), _ = _fast_grads([case], [xs], [w])  # the cached plan of this structure
    for g, a in zip(got, again):
        # the same plan, but the runtime's tiering may run it interpreted once and compiled the
        # next time (a structure seen often enough, e.g. by an earlier test in this process):
        # libm's exp/division vs numpy's differ by an ulp, nothing more
        numpy.testing.assert_allclose(a, g, rtol=1e-14, atol=1e-14 * max(1.0, float(numpy.abs(g).max(initial=0.0))))
    assert taken.n == 2, f"{case.name}: the fast path did not serve backward()"


def _one_case_per_row() -> list:
    chosen, seen = [], set()
    for c in GRAD:
        args = [tnp.array(x, dtype="float64") for x in c.inputs(seed=3)]
        with autograd.record():
            for a in args:
                a.attach_grad()
            out = c.tg(*args)
        ops = {e.op for e in autograd.get_symbol(out).eqns}
        if ops - seen:
            chosen.append(c)
            seen |= ops
    return chosen


def test_fast_backward_compiled_batch(monkeypatch) -> None:
    """One case per differentiable row, all in one graph: one cached plan, compiled (strict:
    no fallback), against central differences."""
    cases = _one_case_per_row()
    monkeypatch.setattr(execute, "MODE", "strict")
    execute.clear_programs()
    taken = _Taken(monkeypatch)
    xss = [c.inputs(seed=8) for c in cases]
    weights = []
    for c, xs in zip(cases, xss):
        with autograd.record():
            weights.append(_weights(c.tg(*[tnp.array(x, dtype="float64") for x in xs]).shape, 9))
    from tracegrad.codegen import stats

    before = stats()["compiled_runs"]
    got, _ = _fast_grads(cases, xss, weights)
    assert taken.n == 1 and stats()["compiled_runs"] > before
    for case, xs, w, g in zip(cases, xss, weights, got):
        want = numeric_grad(case.tg, xs, head=w, eps=case.eps)
        for i, (a, n) in enumerate(zip(g, want)):
            assert_almost_equal(a, n, rtol=case.rtol, atol=1e-8, names=(f"{case.name} compiled fast d/dinput{i}", "numeric"))


def test_every_differentiable_row_has_a_fast_backward_check() -> None:
    xss = [c.inputs(seed=3) for c in GRAD]
    seen: set = set()
    for c, xs in zip(GRAD, xss):
        args = [tnp.array(x, dtype="float64") for x in xs]
        for a in args:
            a.attach_grad()
        with autograd.record():
            seen |= {e.op for e in autograd.get_symbol(c.tg(*args)).eqns}
    differentiable = {op for op, row in ir.TABLE.items() if row.differentiable}
    missing = sorted(op.name for op in differentiable - seen - set(NOT_ON_THE_FAST_PATH))
    assert not missing, f"differentiable rows without a fast-backward check (add a case to tests/op_cases.py): {missing}"
