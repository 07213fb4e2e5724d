"""Small recorded values computed at once: a sync point on them costs no trace round-trip.

Inside a record scope an op on arrays in the graph is recorded lazily (its producer is kept
for backward). When every operand already has a value and the op's operands and results
are small (at most `MAX_ELEMENTS` elements each), the op's numpy reference also runs right
away, so Python code that branches on such values (`while np.abs(b).sum() < 1000`) reads
them without building, keying and running a trace per sync. The producer is recorded as
before, so backward (cached or general) sees the same graph and derives the same gradients;
the values are the reference interpreter's (the same `impl` the interpreter calls).

Computing values at once costs a numpy call per op, which a program that never reads them
(a loss and its backward) does not need: the path turns on in a thread once a record
session reads a recorded value, and stays on while each backward's session read one
(`TRACEGRAD_EAGER=auto`); `always` and `never` force it (the tests run both ways), and
`TRACEGRAD_EAGER_MAX` sets the size limit.
"""

from __future__ import annotations

import os
import threading
from math import prod
from typing import Any, Optional, Sequence

import numpy

from ..ir.core import Lit
from ..ir.ops import TABLE, Op

MAX_ELEMENTS = int(os.environ.get("TRACEGRAD_EAGER_MAX", "4096"))
POLICY = os.environ.get("TRACEGRAD_EAGER", "auto").strip().lower() or "auto"
if POLICY not in ("auto", "always", "never"):
    raise ValueError(f"TRACEGRAD_EAGER={POLICY!r}: use auto, always or never")


class _Mode(threading.local):
    active = False  # auto: this thread's record sessions read recorded values
    syncs = 0  # recorded values read since the last backward


MODE = _Mode()


def note_sync() -> None:
    """A sync point read a recorded value: compute small recorded values at once from now."""
    MODE.syncs += 1
    MODE.active = True


def note_backward() -> None:
    """A backward ends a session: stay eager only if that session read recorded values."""
    MODE.active = MODE.syncs > 0
    MODE.syncs = 0


def on() -> bool:
    """Whether small recorded values are computed at once now (policy and this thread)."""
    return (MODE.active or POLICY == "always") and POLICY != "never"


def small(arrays: Sequence[Any], avals: Sequence[tuple]) -> bool:
    """Whether an op's operands `arrays` and results `avals` are all small enough to run at once."""
    limit = MAX_ELEMENTS
    if limit <= 0:
        return False
    for a in arrays:
        if prod(a._shape) > limit:
            return False
    for shape, _ in avals:
        if prod(shape) > limit:
            return False
    return True


def eligible(arrays: Sequence[Any], avals: Sequence[tuple]) -> bool:
    """Whether an op on concrete CPU `arrays` with results `avals` runs eagerly."""
    return on() and small(arrays, avals)


def compute(op: Op, ins: Sequence[Any], params: dict, avals: Sequence[tuple]) -> Optional[list[numpy.ndarray]]:
    """The op's values by its numpy reference, each owning its memory; None when the
    reference raises (the op is then recorded lazily and reports where it always has)."""
    vals = [a._data if type(a) is not Lit else a.dtype.type(a.value) for a in ins]
    try:
        out = TABLE[op].impl(*vals, **params)
    except Exception:  # noqa: BLE001  (lazily recorded, the same error surfaces at the sync point)
        return None
    if len(avals) == 1:
        return [_owned(out, *avals[0])]
    return [_owned(o, shape, dt) for o, (shape, dt) in zip(out, avals)]


_NDARRAY = numpy.ndarray


def compute_one(op: Op, ins: Sequence[Any], params: dict, shape: tuple, dt: numpy.dtype) -> Optional[numpy.ndarray]:
    """`compute` for an op with one result of `shape` and `dt`."""
    vals = []
    for a in ins:
        vals.append(a._data if type(a) is not Lit else a.dtype.type(a.value))
    try:
        out = TABLE[op].impl(*vals, **params)
    except Exception:  # noqa: BLE001  (lazily recorded, the same error surfaces at the sync point)
        return None
    if type(out) is _NDARRAY and out.base is None and out.dtype is dt and out.shape == shape:
        return out  # the common case: a fresh array of the right aval
    return _owned(out, shape, dt)


def _owned(o: Any, shape: tuple, dt: numpy.dtype) -> numpy.ndarray:
    v = numpy.asarray(o, dtype=dt)
    if v.base is not None:  # a view of an operand: recorded values never alias
        v = v.copy()
    if v.shape != shape:
        v = v.reshape(shape)
    return v
