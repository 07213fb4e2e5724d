"""explain_compile, stats() counters and the TRACEGRAD_LOG channels."""

from __future__ import annotations

import logging

import numpy

import tracegrad
from tracegrad import autograd
from tracegrad import np as tnp
from tracegrad.codegen import compile_trace, stats

from cg_helpers import make


def test_explain_compile_shows_trace_plan_and_source():
    x = tnp.array(numpy.ones(8, numpy.float32))
    x.attach_grad()
    with autograd.record():
        y = (tnp.tanh(x) * 2).sum()
    text = tracegrad.explain_compile(y)
    assert "tanh" in text and "plan: 1 kernel(s)" in text and "@njit" in text and "def " in text


def test_compile_is_counted_and_logged(caplog):
    before = stats()
    with caplog.at_level(logging.INFO, logger="tracegrad"):
        compile_trace(make(lambda b, x: b.sub(b.mul(x, 3.0), 1.0), ((5,), numpy.dtype("float32"))))
    after = stats()
    assert after["compiles"] == before["compiles"] + 1 and after["compile_seconds"] > before["compile_seconds"]
    assert after["disk_hits"] + after["disk_misses"] == before["disk_hits"] + before["disk_misses"] + 1
    names = {r.name for r in caplog.records}
    assert "tracegrad.compile" in names and "tracegrad.cache" in names
