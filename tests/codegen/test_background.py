"""Background compiles: a cold trace runs interpreted while a child process builds its cache
entry, then switches to the compiled program; strict/always compile at once; a failed child
is logged and the trace compiles in-process; an exiting process leaves a valid entry."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import time

import numpy
import pytest

import tracegrad
from tracegrad import autograd
from tracegrad import np as tnp
from tracegrad.codegen import STATS, background, prepare
from tracegrad.runtime import execute as ex

from cg_helpers import make

_N = 1 << 17  # above WORK_MIN: compiled at its first run


def _trace(depth: int):
    """A trace whose module no other test builds (literals are arguments: the depth differs)."""
    def fn(b, x):
        for _ in range(depth):
            x = b.mul(b.tanh(b.add(x, 0.25)), 3.0)
        return x

    return make(fn, ((_N,), numpy.dtype("float32")))


@pytest.fixture()
def bg(monkeypatch, tmp_path):
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path / "cache"))  # cold: an empty cache
    monkeypatch.setattr(ex, "MODE", "auto")
    monkeypatch.setattr(ex, "BACKGROUND", True)
    ex.clear_programs()
    yield tmp_path
    ex.wait_background(120)
    ex.clear_programs()


def test_a_cold_trace_runs_interpreted_then_compiled(bg, caplog):
    t = _trace(1)
    x = numpy.linspace(-3, 3, _N).astype(numpy.float32)
    want = ex.interpret(t, [x])
    b0, i0, c0 = STATS["background_compiles"], STATS["interpreted_runs"], STATS["compiled_runs"]
    with caplog.at_level(logging.INFO, logger="tracegrad.compile"):
        first = ex.execute(t, [x])
    assert STATS["background_compiles"] == b0 + 1 and STATS["interpreted_runs"] == i0 + 1
    assert STATS["compiled_runs"] == c0
    assert any("background process compiles it" in r.getMessage() for r in caplog.records)
    numpy.testing.assert_array_equal(first[0], want[0])
    assert ex.wait_background(120)
    with caplog.at_level(logging.INFO, logger="tracegrad.compile"):
        out = ex.execute(t, [x])
    assert STATS["compiled_runs"] == c0 + 1 and STATS["background_compiles"] == b0 + 1
    assert any("switches to its compiled program" in r.getMessage() for r in caplog.records)
    numpy.testing.assert_allclose(out[0], want[0], rtol=2e-7, atol=0)
    assert prepare(t).cached  # the child left an entry in the disk cache


@pytest.mark.parametrize("mode", ["always", "strict"])
def test_always_and_strict_compile_at_once(bg, monkeypatch, mode):
    monkeypatch.setattr(ex, "MODE", mode)
    t = _trace(2 if mode == 'always' else 3)
    b0, c0 = STATS["background_compiles"], STATS["compiled_runs"]
    ex.execute(t, [numpy.ones(_N, numpy.float32)])
    assert STATS["background_compiles"] == b0 and STATS["compiled_runs"] == c0 + 1


def test_a_warm_entry_loads_at_once(bg):
    t = _trace(4)
    ex.execute(t, [numpy.ones(_N, numpy.float32)])
    assert ex.wait_background(120)
    ex.clear_programs()
    from tracegrad.codegen import programs

    monkeypatch_held = programs._modules.copy()
    programs._modules.clear()  # not held: the disk entry is what makes it cheap
    try:
        b0, c0 = STATS["background_compiles"], STATS["compiled_runs"]
        ex.execute(t, [numpy.ones(_N, numpy.float32)])
        assert STATS["background_compiles"] == b0 and STATS["compiled_runs"] == c0 + 1
    finally:
        programs._modules.update(monkeypatch_held)


def test_a_failed_child_is_logged_and_the_trace_compiles_here(bg, monkeypatch, caplog):
    real = background.Job._launch

    def broken(self):
        self.source = "raise SystemExit('no')\n"  # the child fails to build this "module"
        real(self)

    monkeypatch.setattr(background.Job, "_launch", broken)
    t = make(lambda b, x: b.sub(b.mul(x, 2.0), x), ((_N,), numpy.dtype("float32")))  # exact: bitwise
    x = numpy.linspace(-2, 2, _N).astype(numpy.float32)
    ex.execute(t, [x])
    assert ex.wait_background(120)
    c0 = STATS["compiled_runs"]
    with caplog.at_level(logging.WARNING, logger="tracegrad.compile"):
        out = ex.execute(t, [x])
    msgs = [r.getMessage() for r in caplog.records]
    assert any("background compile" in m and "failed (exit status 1: no)" in m for m in msgs), msgs
    assert STATS["compiled_runs"] == c0 + 1
    numpy.testing.assert_array_equal(out[0], ex.interpret(t, [x])[0])


def test_a_jit_step_switches_to_the_compiled_program(bg):
    w = tnp.array(numpy.linspace(-1, 1, _N).astype(numpy.float32))
    w.attach_grad()

    @tracegrad.jit
    def step(x):
        with autograd.record():
            loss = (tnp.tanh(w * x) ** 2).sum()
        loss.backward()
        return loss

    x = tnp.array(numpy.full(_N, 0.5, numpy.float32))
    i0 = STATS["interpreted_runs"]
    first = float(step(x))
    assert STATS["interpreted_runs"] > i0
    assert ex.wait_background(120)
    c0 = STATS["compiled_runs"]
    again = float(step(x))
    assert STATS["compiled_runs"] == c0  # the step's program is called directly, not through execute
    g = w.grad.asnumpy()
    want = 2 * numpy.tanh(w.asnumpy() * 0.5) * (1 - numpy.tanh(w.asnumpy() * 0.5) ** 2) * 0.5
    numpy.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-7)
    numpy.testing.assert_allclose(again, first, rtol=1e-5)


def test_an_exiting_process_does_not_wait_and_leaves_a_valid_entry(tmp_path):
    """The parent exits while its child compiles; the entry the child stores loads later."""
    script = textwrap.dedent("""
        import sys, numpy
        sys.path.insert(0, sys.argv[1])
        from cg_helpers import make
        from tracegrad.runtime import execute as ex
        from tracegrad.codegen import STATS
        t = make(lambda b, x: b.tanh(b.tanh(b.tanh(b.add(x, 0.125)))), ((1 << 17,), numpy.dtype("float32")))
        ex.execute(t, [numpy.ones(1 << 17, numpy.float32)])
        if sys.argv[2] == "first":
            assert STATS["background_compiles"] == 1, STATS
            from tracegrad.codegen import background
            print("busy" if background.busy() else "idle")
        else:
            print(STATS["background_compiles"], STATS["disk_hits"])
    """)
    env = dict(os.environ, TRACEGRAD_CACHE_DIR=str(tmp_path / "cache"), TRACEGRAD_BACKGROUND="1",
               TRACEGRAD_COMPILE="auto")
    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run([sys.executable, "-c", script, here, "first"], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    manifests = lambda: list((tmp_path / "cache" / "tracegrad-cache").glob("tg_*.manifest"))  # noqa: E731
    deadline = time.monotonic() + 300
    while not manifests() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert manifests(), "the child stored no entry"
    time.sleep(0.5)  # let the child finish its native library (if any) and exit
    r = subprocess.run([sys.executable, "-c", script, here, "second"], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["0", "1"], r.stdout  # no background compile: a verified disk hit
