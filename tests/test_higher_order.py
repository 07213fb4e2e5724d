"""Second and third order for every differentiable op case, table-driven, interpreted and
compiled.

For a case f with inputs x, weights w and random directions u, v, z:
    g(x) = d/dx sum(w * f(x))                       (create_graph=True)
    s(x) = <g(x), u>,  h(x) = ds/dx                  (second order: the Hessian times u)
    t(x) = <h(x), v>,  k(x) = dt/dx                  (third order)
Each order is checked against float64 central differences of the order below along a
random direction (`<h, v>` against `(s(x + e v) - s(x - e v)) / 2e`, and `<k, z>` against
the differences of t), which costs two evaluations instead of one per element. The
compiled check runs one case per differentiable row (the first case whose trace reaches
it), all in one program, and compares every order with the interpreter elementwise.
`test_every_differentiable_row_has_a_higher_order_check` fails when a row is missed.
"""

from __future__ import annotations

import functools

import numpy
import pytest

from tracegrad import autograd, ir
from tracegrad import np as tnp
from tracegrad.ir import Op
from tracegrad.runtime import execute
from tracegrad.tracer.lazy import materialize

import op_cases
from op_cases import GRAD, Case

# rows reached only through other paths (named) or without a gradient graph by design
ELSEWHERE = {
    Op.CUSTOM: "host code: its backward has no graph (test_gradients.py raises instead of a silent zero)",
    Op.CUSTOM_VJP: "host code (same)",
}


def _arrays(xs):
    args = [tnp.array(x, dtype="float64") for x in xs]
    for a in args:
        a.attach_grad()
    return args


def _dot(gs, ds):
    total = None
    for g, d in zip(gs, ds):
        term = (g * tnp.array(d, dtype="float64")).sum()
        total = term if total is None else total + term
    return total


def _grad(head, args, create_graph):
    """d head / d args; zeros when head does not depend on them (a constant derivative)."""
    if not head._in_graph:
        return [tnp.zeros(a.shape, dtype=a.dtype) for a in args]
    return autograd.grad(head, args, create_graph=create_graph)


def _orders(case: Case, xs, w, u, v, upto=3):
    """(g, h, k) as lazy arrays (k only when upto == 3), and the ops their traces reach."""
    args = _arrays(xs)
    with autograd.record():
        out = case.tg(*args)
        loss = (out * tnp.array(w, dtype="float64")).sum()
    g = _grad(loss, args, True)
    with autograd.record():
        s = _dot(g, u)
    h = _grad(s, args, True)
    res = [g, h]
    if upto == 3:
        with autograd.record():
            t = _dot(h, v)
        res.append(_grad(t, args, False))
    return res, s, args


def _scalar(case, xs, w, u, v, order):
    """s(x) (order 2) or t(x) (order 3) at xs, as a float."""
    args = _arrays(xs)
    with autograd.record():
        loss = (case.tg(*args) * tnp.array(w, dtype="float64")).sum()
    g = _grad(loss, args, order == 3)
    if order == 2:
        return float(sum((gg.asnumpy() * uu).sum() for gg, uu in zip(g, u)))
    with autograd.record():
        s = _dot(g, u)
    h = _grad(s, args, False)
    return float(sum((hh.asnumpy() * vv).sum() for hh, vv in zip(h, v)))


def _setup(case, seed):
    rs = numpy.random.RandomState(seed)
    xs = case.inputs(seed=seed)
    with autograd.record():
        shape = case.tg(*[tnp.array(x, dtype="float64") for x in xs]).shape
    w = rs.normal(size=shape)
    u, v, z = ([rs.normal(size=numpy.shape(x)) for x in xs] for _ in range(3))
    return xs, w, u, v, z


def _fd(case, xs, w, u, v, d, order, eps):
    plus = [x + eps * e for x, e in zip(xs, d)]
    minus = [x - eps * e for x, e in zip(xs, d)]
    return (_scalar(case, plus, w, u, v, order) - _scalar(case, minus, w, u, v, order)) / (2 * eps)


@pytest.mark.parametrize("case", GRAD, ids=lambda c: c.name)
def test_second_and_third_order_match_differences(case: Case) -> None:
    xs, w, u, v, z = _setup(case, seed=21)
    (g, h, k), _, _ = _orders(case, xs, w, u, v)
    # finite differences of an order whose values are O(1): step 1e-5 balances truncation
    # (eps^2 * next derivative ~ 1e-10) against rounding (1e-16 / eps ~ 1e-11); a case with
    # float32 inside (astype) uses its own step and tolerance
    eps = max(case.eps, 1e-5)
    rtol = max(case.rtol, 1e-6)
    for order, (grads, d) in ((2, (h, v)), (3, (k, z))):
        got = sum(float((gg.asnumpy() * dd).sum()) for gg, dd in zip(grads, d))
        mag = sum(float(numpy.abs(gg.asnumpy() * dd).sum()) for gg, dd in zip(grads, d))
        want = _fd(case, xs, w, u, v, d, order, eps)
        assert abs(got - want) <= rtol * max(mag, abs(want)) + 1e-7, (case.name, order, got, want)


@functools.lru_cache(maxsize=None)
def _cover():
    """One case per differentiable row: the first whose forward or derivative traces reach it."""
    chosen, seen = [], set()
    for case in GRAD:
        xs, w, u, v, _ = _setup(case, seed=21)
        (g, h, k), _, args = _orders(case, xs, w, u, v)
        with autograd.record():
            out = case.tg(*_arrays(xs))
        ops = {e.op for e in autograd.get_symbol(out).eqns} if out._prod is not None else set()
        for a in list(g) + list(h) + list(k):
            if a._prod is not None:
                ops |= {e.op for e in autograd.get_symbol(a).eqns}
        if ops - seen:
            chosen.append(case)
            seen |= ops
    return tuple(chosen), frozenset(seen)


def test_every_differentiable_row_has_a_higher_order_check() -> None:
    _, seen = _cover()
    differentiable = {op for op, row in ir.TABLE.items() if row.differentiable}
    missing = sorted(op.name for op in differentiable - seen - set(ELSEWHERE))
    assert not missing, f"differentiable rows without a second/third-order check: {missing}"


def _group(name: str) -> str:
    for group in ("NN", "LINALG"):
        if name in {c.name for c in getattr(op_cases, group, [])}:
            return group.lower()
    return "core"


# The core rows' second and third orders compile in CHUNKS programs in the default run (Numba's
# compile time grows faster than the program: one program of every core row took ~230 s,
# eight took 11 s in all with a cold cache, and they spread over the test workers); the nn and linalg rows'
# (third order of svd, conv, pooling: thousands of eqns) take minutes of Numba compile and
# GBs of memory, so they run in the slow suite.
CHUNKS = 8


@pytest.mark.parametrize("group,chunk", [("core", i) for i in range(CHUNKS)]
                         + [pytest.param("nn", None, marks=pytest.mark.slow),
                            pytest.param("linalg", None, marks=pytest.mark.slow)])
def test_higher_order_compiled_matches_interpreter(monkeypatch, group, chunk) -> None:
    cases, _ = _cover()
    cases = [c for c in cases if _group(c.name) == group]
    if chunk is not None:
        cases = cases[chunk::CHUNKS]
    setups = [_setup(c, seed=22) for c in cases]
    results = {}
    for mode in ("never", "strict"):
        monkeypatch.setattr(execute, "MODE", mode)
        execute.clear_programs()
        lazies = []
        for c, (xs, w, u, v, _) in zip(cases, setups):
            (g, h, k), _, _ = _orders(c, xs, w, u, v)
            lazies += [a for a in list(g) + list(h) + list(k)]
        todo = [a for a in lazies if a._data is None]
        materialize(todo)  # the chunk's cases, every order: one program
        results[mode] = [a.asnumpy() for a in lazies]
    for j, (a, b) in enumerate(zip(results["strict"], results["never"])):
        scale = max(1.0, float(numpy.abs(b).max()) if b.size else 1.0)
        # float64, same trace: transcendental functions differ by an ulp or two (libm vs
        # numpy), sums by order; third-order terms chain a few of those
        numpy.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * scale, err_msg=f"output {j}")
