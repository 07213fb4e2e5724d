"""The disk cache: reused by a second process, corrupt entries rebuilt, private folder, API."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy

import tracegrad.cache
from tracegrad.codegen import STATS, compile_trace
from tracegrad.codegen.cache import cache_dir

from cg_helpers import make

_CHILD = r"""
import json, sys, numpy
from tracegrad.codegen import compile_trace, stats
from tracegrad.ir import Builder, Trace, Var
from tracegrad.ir.trace_builder import TraceEmitter
em = TraceEmitter(); b = Builder(em)
x = Var((5,), numpy.dtype("float32"))
y = b.reduce_sum(b.mul(b.tanh(x), 3.0), axes=(0,), keepdims=False)
out = compile_trace(Trace((x,), tuple(em.eqns), (y,)))([numpy.arange(5, dtype=numpy.float32)])
print(json.dumps({"value": float(out[0]), **stats()}))
"""


def _child(env_dir: Path) -> dict:
    env = dict(os.environ, TRACEGRAD_CACHE_DIR=str(env_dir))
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_second_process_reuses_the_disk_cache_and_corrupt_entries_are_rebuilt(tmp_path):
    d = tmp_path / "cache"
    first = _child(d)
    assert first["disk_misses"] == 1 and first["disk_hits"] == 0
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    second = _child(d)
    assert second["disk_hits"] == 1 and second["disk_misses"] == 0
    assert second["value"] == first["value"]
    # corrupt the generated module and Numba's index: rebuilt, same answer, no crash
    mods = [p for p in d.iterdir() if p.name.startswith("tg_") and p.suffix == ".py"]
    assert len(mods) == 1
    mods[0].write_text("this is not python(\n")
    for f in (d / "__pycache__").iterdir():
        if f.suffix in (".nbi", ".nbc"):
            f.write_bytes(b"garbage")
    third = _child(d)
    assert third["value"] == first["value"] and third["disk_misses"] == 1
    # only Numba's files corrupted: rebuilt as well
    for f in (d / "__pycache__").iterdir():
        if f.suffix in (".nbi", ".nbc"):
            f.write_bytes(b"garbage")
    fourth = _child(d)
    assert fourth["value"] == first["value"]


def test_cache_api_reports_and_clears():
    t = make(lambda b, x: b.add(b.exp(x), 1.0), ((7,), numpy.dtype("float32")))
    compile_trace(t)([numpy.ones(7, numpy.float32)])
    info = tracegrad.cache.info()
    assert info["dir"] == str(cache_dir()) and info["modules"] >= 1 and info["bytes"] > 0
    assert tracegrad.cache.size() == info["bytes"]
    removed = tracegrad.cache.clear()
    assert removed >= 1 and tracegrad.cache.info()["modules"] == 0
    before = STATS["disk_misses"]
    compile_trace(make(lambda b, x: b.add(b.exp(x), 2.0), ((7,), numpy.dtype("float32"))))
    assert STATS["disk_misses"] == before + 1
