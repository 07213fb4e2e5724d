"""In-place updates written straight into the array's buffer (ndarray._write_in_place)."""

from __future__ import annotations

import numpy
import pytest

from tracegrad import autograd
from tracegrad import np as tnp


@pytest.mark.parametrize("name", ["__iadd__", "__isub__", "__imul__", "__itruediv__"])
@pytest.mark.parametrize("other", ["scalar", "int", "array", "broadcast", "float64"])
def test_in_place_matches_the_general_op(name: str, other: str) -> None:
    rs = numpy.random.RandomState(0)
    p0 = rs.uniform(0.5, 2.0, (3, 4)).astype(numpy.float32)
    o = {
        "scalar": 0.1,
        "int": 3,
        "array": tnp.array(rs.uniform(0.5, 2.0, (3, 4))),
        "broadcast": tnp.array(rs.uniform(0.5, 2.0, (4,))),
        "float64": tnp.array(rs.uniform(0.5, 2.0, (3, 4)), dtype="float64"),
    }[other]
    p = tnp.array(p0)
    buf = p._data
    out = getattr(p, name)(o)
    want = {"__iadd__": tnp.add, "__isub__": tnp.subtract, "__imul__": tnp.multiply,
            "__itruediv__": tnp.divide}[name](tnp.array(p0), o).asnumpy().astype(numpy.float32)
    assert out is p and p._data is buf and p.dtype == numpy.float32
    numpy.testing.assert_array_equal(p.asnumpy(), want)


def test_update_after_backward_keeps_lazy_readers_and_views() -> None:
    w = tnp.array([[1.0, 2.0], [3.0, 4.0]])
    w.attach_grad()
    x = tnp.ones((2, 2))
    row = w[0]  # a view: sees the write
    with autograd.record():
        h = tnp.dot(x, w)  # lazy, still alive after backward
        loss = h.sum()
    loss.backward()
    w -= 0.5 * w.grad
    numpy.testing.assert_array_equal(w.asnumpy(), [[0.0, 1.0], [2.0, 3.0]])
    numpy.testing.assert_array_equal(row.asnumpy(), [0.0, 1.0])
    numpy.testing.assert_array_equal(h.asnumpy(), [[4.0, 6.0], [4.0, 6.0]])  # the old w


def test_in_place_inside_record_on_a_variable_still_refused() -> None:
    from tracegrad import InPlaceError

    w = tnp.ones(3)
    w.attach_grad()
    with autograd.record():
        with pytest.raises(InPlaceError):
            w -= 1.0
