"""Floating-point warnings policy: ops that produce inf/NaN (log(-1), 1/0, overflow, sin(inf),
inf - inf in a sum, ...) give IEEE results and no numpy RuntimeWarning, interpreted or compiled
(as MXNet; a compiled kernel has no floating-point flags to report). Warnings about the call
itself, as numpy gives them (mean of an empty slice), come from the API in both paths.

Every op case (tests/op_cases.py) runs on special values (+-inf, NaN, +-0, huge, negatives),
forward and backward, all cases in one recorded program, interpreted; one case of every
row that can make inf/NaN also compiled (TRACEGRAD_COMPILE=always vs never; the compiled run
checks that it did compile), with a sum large enough for the multi-threaded chunked path."""

from __future__ import annotations

import warnings

import numpy
import pytest

from tracegrad import autograd, codegen
from tracegrad import np as tnp
from tracegrad.runtime import execute

from op_cases import ALL

SPECIAL = numpy.array([-numpy.inf, -3e38, -2.5, -1.0, -0.0, 0.0, 0.5, 1.0, 3e38, numpy.inf, numpy.nan, 700.0])


def _special(shape: tuple) -> numpy.ndarray:
    n = int(numpy.prod(shape, dtype=numpy.int64))
    return numpy.resize(SPECIAL, n).reshape(shape).astype(numpy.float32)


# one case per row that can produce inf/NaN (compiling all of ALL costs minutes)
INF_NAN = [c for c in ALL if c.name in {
    "exp", "log", "log1p", "expm1", "sqrt", "reciprocal", "sin", "cos", "tan", "sinh", "cosh",
    "arcsin", "arccos", "power", "pow_scalar", "ipow3", "astype", "sum[axis=None,keepdims=False]",
    "prod[axis=0,keepdims=False]", "var[axis=-1,keepdims=False]", "matmul", "sigmoid",
    "log_softmax", "activation[softrelu]"}]


def _program(cases: list, big: bool) -> tuple[list, list]:
    """Every case's output on special values, summed into one head, then backward."""
    variables, head = [], None
    with autograd.record():
        if big:  # +inf in the first half, -inf in the second: the partial sums meet as inf - inf
            v = numpy.full(1 << 20, numpy.inf, numpy.float32)
            v[1 << 19:] = -numpy.inf
            x = tnp.array(v)
            x.attach_grad()
            variables.append(x)
            head = x.sum()
        for c in cases:
            xs = [tnp.array(_special(s), dtype="float32") for s in c.shapes]
            if c.grad:
                for x in xs:
                    x.attach_grad()
                variables += xs
            y = c.tg(*xs)
            if y.dtype.kind != "f":
                continue
            t = (y * 1.0).sum()
            head = t if head is None else head + t
    head.backward()
    return [head.asnumpy()], [v.grad.asnumpy() for v in variables]


def _quiet_run(cases: list, big: bool) -> tuple[list, list]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return _program(cases, big)


def test_no_floating_point_warnings_interpreted_any_case(monkeypatch) -> None:
    monkeypatch.setattr(execute, "MODE", "never")
    outs, grads = _quiet_run(ALL, big=False)
    assert numpy.isnan(outs[0])


@pytest.mark.parametrize("mode", ["never", "always"])
def test_no_floating_point_warnings_in_either_path(mode, monkeypatch) -> None:
    monkeypatch.setattr(execute, "MODE", mode)
    execute.clear_programs()
    before = codegen.stats()["compiled_runs"]
    outs, grads = _quiet_run(INF_NAN, big=True)
    assert numpy.isnan(outs[0])  # the special values did reach the ops
    assert any(numpy.isinf(g).any() or numpy.isnan(g).any() for g in grads)
    ran_compiled = codegen.stats()["compiled_runs"] > before
    assert ran_compiled == (mode == "always"), codegen.stats()


EMPTY_CASES = [
    ("mean", lambda m, x: m.mean(x), numpy.zeros(0), "Mean of empty slice"),
    ("mean_axis", lambda m, x: m.mean(x, axis=0), numpy.zeros((0, 3)), "Mean of empty slice"),
    ("var", lambda m, x: m.var(x), numpy.zeros(0), "Degrees of freedom <= 0"),
    ("std_axis", lambda m, x: m.std(x, axis=1), numpy.zeros((2, 0)), "Degrees of freedom <= 0"),
    ("var_ddof", lambda m, x: m.var(x, ddof=2), numpy.array([1.0, 2.0]), "Degrees of freedom <= 0"),
    ("var_ddof_nan", lambda m, x: m.var(x, ddof=3), numpy.array([1.0, 1.0]), "Degrees of freedom <= 0"),
]


@pytest.mark.parametrize("mode", ["never", "always"])
@pytest.mark.parametrize("name, f, v, words", EMPTY_CASES, ids=[c[0] for c in EMPTY_CASES])
def test_mean_var_std_of_empty_slices_are_nan_with_numpys_warning(mode, name, f, v, words, monkeypatch) -> None:
    monkeypatch.setattr(execute, "MODE", mode)
    with warnings.catch_warnings(record=True) as ref_w:
        warnings.simplefilter("always")
        want = f(numpy, v.astype(numpy.float32))
    assert any(words in str(w.message) for w in ref_w)  # numpy's own behaviour, checked
    for record in (False, True):
        x = tnp.array(v, dtype="float32")
        with warnings.catch_warnings(record=True) as got_w:
            warnings.simplefilter("always")
            if record:
                x.attach_grad()
                with autograd.record():
                    y = f(tnp, x)
            else:
                y = f(tnp, x)
            got = y.asnumpy()
        ours = [w for w in got_w if issubclass(w.category, RuntimeWarning)]
        assert [str(w.message) for w in ours] and all(words in str(w.message) for w in ours), [str(w.message) for w in got_w]
        assert ours[0].filename == __file__  # the user's line, not tracegrad's
        assert got.shape == numpy.shape(want) and got.dtype == numpy.float32
        numpy.testing.assert_array_equal(got, want)  # NaN == NaN, inf == inf here


def test_quiet_ops_leave_the_users_error_state() -> None:
    """The table's quiet wrapper sets numpy's error state for the op alone: the user's state
    (here: raise) holds before and after, also when the op raises."""
    from tracegrad.ir.ops import fp_quiet

    def boom(x: numpy.ndarray) -> None:
        raise KeyError("from the op")

    quiet_div = fp_quiet(numpy.divide)
    with numpy.errstate(all="raise"):
        before = numpy.geterr()
        assert numpy.isinf(quiet_div(numpy.float32(1.0), numpy.float32(0.0)))
        with pytest.raises(KeyError):
            fp_quiet(boom)(numpy.ones(2))
        assert numpy.geterr() == before
        with pytest.raises(FloatingPointError):
            numpy.divide(numpy.float32(1.0), numpy.float32(0.0))
