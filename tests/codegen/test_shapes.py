"""Programs that do not depend on the exact shape: sizes are runtime arguments (one module
per trace structure and size pattern), modules are held in a bounded LRU and released, and
a line that keeps generating modules is warned about once."""

from __future__ import annotations

import gc
import sys
import warnings
import weakref

import numpy
import pytest

from tracegrad import autograd, npx
from tracegrad import np as tnp
from tracegrad.codegen import STATS, compile_trace, explain, get_num_threads, programs, set_num_threads
from tracegrad.codegen.cache import module_name
from tracegrad.runtime.interpret import eval_trace
from tracegrad.runtime import execute as ex

from cg_helpers import assert_same, make

F32 = numpy.dtype("float32")


def _layer(rows: int, cols: int = 33):
    """tanh(x + bias) over rows, its row sums, a column slice and the mean of everything
    (a literal 1/size in the trace)."""

    def fn(b, x, v):
        h = b.tanh(b.add(x, b.broadcast_to(v, shape=(rows, cols))))
        rs = b.reduce_sum(h, axes=(1,), keepdims=False)
        tail = b.slice(h, index=((None, None, None), (3, None, 2)))
        m = b.div(b.reduce_sum(h, axes=(0, 1), keepdims=False), float(rows * cols))
        return h, rs, tail, m

    return make(fn, ((rows, cols), F32), ((cols,), F32))


def _args(rows: int, cols: int = 33) -> list:
    rs = numpy.random.RandomState(rows)
    return [rs.randn(rows, cols).astype(numpy.float32), rs.randn(cols).astype(numpy.float32)]


def test_one_module_serves_every_size():
    progs = []
    before = dict(STATS)
    for rows in (40, 41, 47, 64, 100, 7):
        t = _layer(rows)
        prog = compile_trace(t, generic=True)
        args = _args(rows)
        assert_same(prog(args), eval_trace(t, [a.copy() for a in args]), what=f"rows={rows}")
        progs.append(prog)
    assert len({p.source for p in progs}) == 1
    assert STATS["programs"] - before["programs"] == 6
    assert STATS["compiles"] - before["compiles"] <= 1 and STATS["module_reuses"] - before["module_reuses"] >= 5
    text = explain(_layer(41))  # the generic source, then the values its calls get
    assert "N0 = sz[0]" in text and "sz=[41, " in text and "fz=[" in text


def test_size_pattern_is_part_of_the_module():
    """A size-1 dim (broadcast pattern) is a different module; the same pattern is not."""
    a = compile_trace(_layer(1), generic=True)
    b = compile_trace(_layer(2), generic=True)
    c = compile_trace(_layer(3), generic=True)
    assert a.source != b.source and b.source == c.source
    for rows, prog in ((1, a), (2, b), (3, c)):
        args = _args(rows)
        assert_same(prog(args), eval_trace(_layer(rows), [x.copy() for x in args]))


@pytest.mark.parametrize("rows", [300, 301])
def test_generic_parallel_kernels_are_bitwise_deterministic_across_threads(rows):
    t = _layer(rows, 129)
    args = _args(rows, 129)
    prog = compile_trace(t, par_min=1 << 10, generic=True)
    assert any(k.parallel for k in prog.plan.kernels())
    old = get_num_threads()
    try:
        outs = []
        for n in (1, 2, 1):
            set_num_threads(n)
            outs.append(prog(args))
    finally:
        set_num_threads(old)
    for o in outs[1:]:
        for x, y in zip(outs[0], o):
            numpy.testing.assert_array_equal(x, y)
    assert_same(outs[0], eval_trace(t, [a.copy() for a in args]))


def _mlp_step(X, y, ps, lr=0.1):
    W1, b1, W2, b2 = ps
    with autograd.record():
        h = tnp.tanh(tnp.dot(X, W1) + b1)
        logits = tnp.dot(h, W2) + b2
        loss = -npx.pick(npx.log_softmax(logits), y).mean()
    loss.backward()
    for p in ps:
        p -= lr * p.grad
    return float(loss.asnumpy())


def _params(seed=0):
    rs = numpy.random.RandomState(seed)
    ps = [tnp.array(rs.randn(*s).astype(numpy.float32) * 0.1) for s in ((24, 32), (32,), (32, 5), (5,))]
    for p in ps:
        p.attach_grad()
    return ps


def test_record_scope_batch_that_changes_every_step_compiles_once(monkeypatch):
    """An MLP step through the record scope over 6 batch sizes: after the first size, no
    module is built (the per-size programs bind the held ones); same values as interpreted."""
    rs = numpy.random.RandomState(1)
    Xall, yall = rs.randn(60, 24).astype(numpy.float32), rs.randint(0, 5, 60)
    sizes = (40, 43, 41, 50, 47, 44)
    monkeypatch.setattr(ex, "MODE", "never")
    ps = _params()
    want = [_mlp_step(tnp.array(Xall[:n]), tnp.array(yall[:n]), ps) for n in sizes]
    want_ps = [p.asnumpy() for p in ps]
    monkeypatch.setattr(ex, "MODE", "always")
    ex.clear_programs()
    ps = _params()
    got = [_mlp_step(tnp.array(Xall[:sizes[0]]), tnp.array(yall[:sizes[0]]), ps)]
    c0, p0 = STATS["compiles"], STATS["programs"]
    for n in sizes[1:]:
        got.append(_mlp_step(tnp.array(Xall[:n]), tnp.array(yall[:n]), ps))
    assert STATS["programs"] > p0  # new sizes did bind new programs...
    assert STATS["compiles"] == c0  # ...to modules already held
    numpy.testing.assert_allclose(got, want, rtol=1e-5)
    for p, w in zip(ps, want_ps):
        numpy.testing.assert_allclose(p.asnumpy(), w, rtol=1e-4, atol=1e-6)
    ex.clear_programs()


def _distinct(k: int):
    """Traces of distinct structure (k exps): one module each."""

    def fn(b, x):
        for _ in range(k):
            x = b.exp(b.mul(x, 0.5))
        return x

    return make(fn, ((300,), F32))


def test_modules_fall_out_of_a_bounded_lru_and_are_released(monkeypatch):
    monkeypatch.setattr(programs, "MAX_MODULES", 1)
    programs.clear()
    x = numpy.linspace(-1, 1, 300).astype(numpy.float32)
    first = compile_trace(_distinct(1), generic=True)
    name = module_name(first.source)[0]
    ref = weakref.ref(first.steps[0][1])  # the Numba dispatcher of its kernel
    want = first([x])[0]
    released = programs.released()
    for k in (2, 3):
        compile_trace(_distinct(k), generic=True)([x])
    assert programs.held() == 1 and programs.released() == released + 2
    assert name not in sys.modules
    numpy.testing.assert_array_equal(first([x])[0], want)  # a program of a released module still runs
    del first
    gc.collect()
    assert ref() is None  # the dispatcher went with the last program using it
    hits = STATS["disk_hits"]
    again = compile_trace(_distinct(1), generic=True)  # loaded again from the disk cache
    assert STATS["disk_hits"] == hits + 1
    numpy.testing.assert_array_equal(again([x])[0], want)
    programs.clear()


def test_a_line_that_keeps_generating_modules_is_warned_about_once(monkeypatch):
    monkeypatch.setattr(programs, "WARN_AFTER", 1)
    programs.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in (1, 2, 3):  # (modules on disk already: loading one counts as generating it)
            compile_trace(_distinct(k), generic=True)  # the line named
    mine = [w for w in caught if "compiled modules" in str(w.message)]
    assert len(mine) == 1
    assert mine[0].filename == __file__ and "kept" not in str(mine[0].message)
    assert mine[0].lineno == test_a_line_that_keeps_generating_modules_is_warned_about_once.__code__.co_firstlineno + 6
    programs.clear()


@pytest.mark.slow
def test_varying_batch_benchmark_compiles_once_and_memory_stays_flat(tmp_path):
    """benchmarks/varying_batch.py in a fresh process: a batch drawn from 1000..1100 rows
    every step, no module built after the warm-up steps, RSS within 30 MB (before sizes
    became arguments: +137 MB in 24 steps of 2000..2100 rows)."""
    import json
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, TRACEGRAD_CACHE_DIR=str(tmp_path), PYTHONPATH=str(root))
    r = subprocess.run([sys.executable, "-m", "benchmarks.varying_batch", "--steps", "32", "--lo", "1000",
                        "--hi", "1100", "--fixed", "1024", "--dims", "784,256,10"],
                       cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["compiles_after_warmup"] == 0, res
    assert res["rss_mb_end"] - res["rss_mb_start"] < 30, res
