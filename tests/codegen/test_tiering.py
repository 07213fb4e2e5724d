"""execute(): interpreter for small cold traces, compiled when hot or large, logged fallback."""

from __future__ import annotations

import logging

import numpy
import pytest

from tracegrad import autograd
from tracegrad import np as tnp
from tracegrad.codegen import STATS
from tracegrad.runtime import execute as ex

from cg_helpers import make


@pytest.fixture()
def auto_mode(monkeypatch):
    monkeypatch.setattr(ex, "MODE", "auto")
    monkeypatch.setattr(ex, "HOT", 2)
    ex.clear_programs()
    yield
    ex.clear_programs()


def test_small_cold_traces_are_interpreted_then_compiled_when_hot(auto_mode):
    t = make(lambda b, x: b.mul(b.add(x, 1.0), 2.0), ((8,), numpy.dtype("float32")))
    x = numpy.arange(8, dtype=numpy.float32)
    c0, i0 = STATS["compiles"] + STATS["disk_hits"], STATS["interpreted_runs"]
    ex.execute(t, [x])
    assert STATS["interpreted_runs"] == i0 + 1 and STATS["compiles"] + STATS["disk_hits"] == c0
    out = ex.execute(t, [x])  # second sight of the key: compiled
    assert STATS["compiles"] > c0 - STATS["disk_hits"] or STATS["compiled_runs"] > 0
    numpy.testing.assert_array_equal(out[0], (x + 1) * 2)


def test_large_traces_compile_at_once(auto_mode):
    t = make(lambda b, x: b.tanh(x), ((1 << 17,), numpy.dtype("float32")))
    r0 = STATS["compiled_runs"]
    ex.execute(t, [numpy.zeros(1 << 17, numpy.float32)])
    assert STATS["compiled_runs"] == r0 + 1


def test_fallback_is_logged_once_and_correct(auto_mode, caplog):
    t = make(lambda b, x: b.mul(x, 2.0), ((4,), numpy.dtype("float16")))
    x = numpy.arange(4, dtype=numpy.float16)
    f0 = STATS["fallbacks"]
    with caplog.at_level(logging.WARNING, logger="tracegrad.fallback"):
        for _ in range(4):
            out = ex.execute(t, [x], [None])
    numpy.testing.assert_array_equal(out[0], x * 2)
    assert STATS["fallbacks"] == f0 + 1
    msgs = [r for r in caplog.records if r.name == "tracegrad.fallback"]
    assert len(msgs) == 1 and "float16" in msgs[0].getMessage()


def test_record_scope_w1_compiled(auto_mode):
    """The tutorial's y = 2*x*x; y.backward() through the record scope, compiled path."""
    ex_mode = ex.MODE
    x = tnp.array(numpy.linspace(-1, 1, 1 << 17).astype(numpy.float32))
    x.attach_grad()
    r0 = STATS["compiled_runs"]
    for _ in range(2):
        with autograd.record():
            y = 2 * x * x
        y.backward()
    assert ex_mode == "auto" and STATS["compiled_runs"] >= r0 + 1
    numpy.testing.assert_allclose(x.grad.asnumpy(), 4 * x.asnumpy(), rtol=1e-6)


def test_numba_failure_falls_back_with_one_line(auto_mode, monkeypatch, caplog):
    """A generated module Numba rejects: interpreter result, one warning line, no traceback."""
    from tracegrad.codegen import cpu

    real = cpu.render

    def broken(p):
        src, calls = real(p)
        src = src.replace('@njit("void(', '@njit("void(notatype, ')  # Numba rejects it
        return src.replace('@njit("int64(', '@njit("int64(notatype, '), calls

    monkeypatch.setattr(cpu, "render", broken)
    monkeypatch.setattr(ex, "MODE", "always")
    t = make(lambda b, x: b.add(b.sin(x), 0.125), ((6,), numpy.dtype("float32")))
    x = numpy.linspace(0, 1, 6).astype(numpy.float32)
    with caplog.at_level(logging.WARNING, logger="tracegrad.fallback"):
        out = ex.execute(t, [x])
        ex.execute(t, [x])
    numpy.testing.assert_allclose(out[0], numpy.sin(x) + 0.125, rtol=1e-6)
    msgs = [r.getMessage() for r in caplog.records if r.name == "tracegrad.fallback"]
    assert len(msgs) == 1 and "\n" not in msgs[0]
