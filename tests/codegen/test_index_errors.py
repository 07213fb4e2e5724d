"""An integer index out of range that is only known when the trace runs (a jit replay, a
lazily computed index) fails as tracegrad's IndexOutOfRangeError (an IndexError) naming the
op, the shapes and the user's line, interpreted and compiled."""

from __future__ import annotations

import os

import numpy
import pytest

from tracegrad import IndexOutOfRangeError
from tracegrad.runtime import execute

from cg_helpers import make

HERE = os.path.basename(__file__)


@pytest.mark.parametrize("mode", ["never", "always"])
@pytest.mark.parametrize("op", ["gather", "scatter_add"])
def test_index_out_of_range_when_the_trace_runs(mode, op, monkeypatch) -> None:
    monkeypatch.setattr(execute, "MODE", mode)
    f32, i64 = numpy.dtype("float32"), numpy.dtype("int64")
    if op == "gather":
        t = make(lambda b, x, i: b.mul(b.gather(x, i, key=("@",)), 2.0), ((3,), f32), ((2,), i64))
    else:
        t = make(lambda b, g, i: b.mul(b.scatter_add(g, i, key=("@",), shape=(3,)), 2.0), ((2,), f32), ((2,), i64))
    x = numpy.arange(3 if op == "gather" else 2, dtype=numpy.float32)
    ok = execute.execute(t, [x, numpy.array([0, 2])])  # in range: runs
    assert ok[0].shape == ((2,) if op == "gather" else (3,))
    with pytest.raises(IndexError) as info:
        execute.execute(t, [x, numpy.array([0, 7])])  # MARK-run
    assert isinstance(info.value, IndexOutOfRangeError)
    msg = str(info.value)
    assert op in msg and "7" in msg and "(3,)" in msg and "(2,)" in msg, msg
    assert f"{HERE}:" in msg, msg
