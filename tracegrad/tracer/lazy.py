"""Recorded values: producers, op application (eager or lazy), and materialization.

A lazy array knows its shape and dtype and the producer (op, params, inputs) that computes
it. Materializing a set of arrays walks their producers back to concrete arrays, lays the
walk out as a linear `Trace` in creation order (tracer/recording.py) and asks the runtime
to run it (`runtime.execute`: compiled or interpreted). Backward emits its gradient eqns through the same machinery, so forward and
backward of a step run as one program.
"""

from __future__ import annotations

import itertools
import math
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy

from ..errors import DTypeError, LinAlgError, ShapeError, TracegradError
from ..ir.core import Lit, freeze_params
from ..ir.ops import TABLE, Op
from .. import device as _dev_mod
from ..runtime.execute import execute
from . import registry
from .hooks import capturing
from .recording import build_trace, collect
from . import eager as _eager
from .state import STATE
from ..where import user_line_long

if TYPE_CHECKING:
    from .array import Array as ndarray

_serial = itertools.count()


def next_serial() -> int:
    """A serial later than every producer made so far."""
    return next(_serial)


class Producer:
    """One recorded eqn: `outs = op[params](*ins)`; outputs are held weakly."""

    __slots__ = ("op", "params", "fparams", "ins", "outs", "avals", "serial", "where", "__weakref__")

    def __init__(self, op: Op, params: dict, ins: tuple, avals: list, fparams: tuple = None) -> None:
        self.op = op
        self.params = params
        self.fparams = freeze_params(params) if fparams is None else fparams
        self.ins = ins
        self.avals = avals
        self.outs: list[Any] = [None] * len(avals)
        self.serial = next(_serial)
        self.where = None


_INFER_CACHE: dict = {}  # (op, fparams, operand avals) -> (output avals, small enough for eager)


def _infer(op: Op, ins: Sequence[Any], params: dict) -> list[tuple[tuple[int, ...], numpy.dtype]]:
    try:
        return TABLE[op].infer(*ins, **params)
    except TracegradError as exc:
        raise type(exc)(f"{exc}\n  (at {user_line_long()})") from None
    except (ValueError, TypeError, IndexError) as exc:
        shapes = ", ".join(f"{getattr(a, 'dtype', '')}{list(getattr(a, 'shape', ()))}" for a in ins)
        raise ShapeError(f"{op.value}: {exc} (operands {shapes})\n  (at {user_line_long()})") from None


def apply(op: Op, ins: Sequence[Any], params: dict) -> list["ndarray"]:
    """Run or record one op on ndarrays and Lits; returns its outputs."""
    cls = registry.CLS
    fparams = freeze_params(params) if params else ()
    # one pass over the operands: the shape-rule memo key, graph membership, values
    arrays = []
    sig = []
    any_graph = False
    all_data = True
    some_data = False
    lit = Lit
    try:
        for a in ins:
            if type(a) is lit:
                sig.append(a.dtype)
            else:
                arrays.append(a)
                sig.append((a._shape, a._dtype))
                if a._in_graph:
                    any_graph = True
                if a._data is None:
                    all_data = False
                else:
                    some_data = True
        key = (op, fparams, tuple(sig))
        hit = _INFER_CACHE.get(key)
    except (AttributeError, TypeError):  # operands without avals or unhashable params
        key, hit = None, None
        arrays = [a for a in ins if type(a) is not lit]
        any_graph = any(a._in_graph for a in arrays)
        all_data = all(a._data is not None for a in arrays)
        some_data = any(a._data is not None for a in arrays)
    if hit is None:
        avals = _infer(op, ins, params)
        hit = (avals, _eager.small(arrays, avals))
        if key is not None:
            if len(_INFER_CACHE) > 20000:
                _INFER_CACHE.clear()
            _INFER_CACHE[key] = hit
    avals, small = hit
    state = STATE
    # device hook (issue 5): operands on one device; ops on GPU arrays always go lazy
    on_gpu = _dev_mod.DEVICE_TYPES and _dev_mod.check_operands(op.value, arrays, user_line_long)
    capture = state.capture
    deferred = on_gpu or not all_data or state.force_lazy or capture is not None
    if not any_graph or not state.recording:
        if not deferred:
            return _run_now(cls, op, ins, params, avals, arrays)
        in_graph = False
    else:
        in_graph = True
    prod = Producer(op, params, tuple(ins), avals, fparams)
    if len(avals) == 1:
        shape, dt = avals[0]
        # small values of the graph are computed at once (tracer/eager.py): no trace per sync
        if small and not deferred and (_eager.MODE.active or _eager.POLICY == "always") and _eager.POLICY != "never":
            value = _eager.compute_one(op, ins, params, shape, dt)
            if value is not None:
                o = cls._computed(value, prod)
                prod.outs[0] = weakref.ref(o)
                return [o]
        o = cls._lazy(shape, dt, prod, 0, in_graph)
        prod.outs[0] = weakref.ref(o)
        outs = [o]
    else:
        values = _eager.compute(op, ins, params, avals) if small and in_graph and not deferred and _eager.on() else None
        outs = []
        for i, (shape, dt) in enumerate(avals):
            o = cls._lazy(shape, dt, prod, i, in_graph)
            prod.outs[i] = weakref.ref(o)
            outs.append(o)
        if values is not None:
            for o, v in zip(outs, values):
                o._data = v
            return outs
    if some_data:
        first = outs[0]
        for a in arrays:
            if a._data is not None:
                a._add_user(first)
    if capture is not None:
        capture.on_apply(prod, outs)
    return outs


def _run_now(cls: type, op: Op, ins: Sequence[Any], params: dict, avals: list, arrays: list) -> list["ndarray"]:
    """An op outside any graph on concrete operands: its values now, by the numpy reference."""
    vals = [a.dtype.type(a.value) if type(a) is Lit else a._data for a in ins]
    try:
        out = TABLE[op].impl(*vals, **params)
    except LinAlgError as exc:  # issue 9: a singular matrix, at the user's line
        raise LinAlgError(f"{exc}\n  (at {user_line_long()})") from None
    if len(avals) == 1:
        out = (out,)
    res = [_wrap_eager(cls, numpy.asarray(o, dtype=dt), arrays) for o, (_, dt) in zip(out, avals)]
    if _dev_mod.DEVICE_TYPES and arrays and all(a._dev is _dev_mod.UNPLACED for a in arrays):
        for r in res:  # device hook (issue 5): values of host constants stay unplaced
            r._dev = _dev_mod.UNPLACED
    return res


def _wrap_eager(cls: type, value: numpy.ndarray, inputs: Sequence[Any]) -> Any:
    """Wrap an eager result; a view of an input stays tied to it (writes are tracked)."""
    if value.base is None:
        return cls._wrap(value)
    for a in inputs:
        if numpy.may_share_memory(value, a._data):
            if not value.flags.writeable:
                return cls._wrap(numpy.array(value, copy=True))
            return cls._wrap(value, root=a._root if a._root is not None else a)
    return cls._wrap(value)


class Emitter:
    """The tracer's emitter for `ir.Builder`: ops become (lazy) ndarrays."""

    def emit(self, op: Op, ins: Sequence[Any], params: dict) -> list[Any]:
        return apply(op, ins, params)

    def lit(self, value: Any, dtype: numpy.dtype) -> Lit:
        return make_lit(value, dtype)


EMITTER = Emitter()


_LITS: dict = {}


def make_lit(value: Any, dtype: numpy.dtype) -> Lit:
    """The literal `value` of `dtype` (interned: traced code makes the same ones every step)."""
    if not isinstance(dtype, numpy.dtype):
        dtype = numpy.dtype(dtype)
    if STATE.capture is not None and getattr(value, "_tg", None) is not None:
        return STATE.capture.on_scalar_lit(value, dtype)  # jit (issue 4): a float argument
    t = type(value)
    if t is float:
        key = (value, t, dtype, math.copysign(1.0, value)) if value == 0.0 else (value, t, dtype)
    elif t is int or t is bool:
        key = (value, t, dtype)
    else:
        return Lit(dtype.type(value).item(), dtype)
    lit = _LITS.get(key)
    if lit is None:
        lit = Lit(dtype.type(value).item(), dtype)
        if len(_LITS) > 4096:
            _LITS.clear()
        _LITS[key] = lit
    return lit


def _out_aval(p: Producer, i: int) -> tuple[tuple[int, ...], numpy.dtype]:
    return p.avals[i]


def materialize(targets: Sequence["ndarray"], dests: Optional[Sequence[Optional[numpy.ndarray]]] = None) -> None:
    """Compute `targets` in one program: into `dests` where one is given, else as their values.
    Pending writes (`write_later`) are computed in the same program, into their buffers."""
    if dests is None:
        dests = [None] * len(targets)
    todo: dict[int, Any] = {}
    pending = take_pending()
    for t, d in zip(targets, dests):
        if d is None and id(t) in pending:
            d = pending[id(t)][1]
        if d is not None or t._data is None:
            todo.setdefault(id(t), (t, d))
    for i, (a, buf) in pending.items():
        todo.setdefault(i, (a, buf))
    if not todo:
        return
    pairs = list(todo.values())
    trace, inputs = build_trace([t for t, _ in pairs])
    args, dsts = [a._data for a in inputs], [d for _, d in pairs]
    try:  # jit (issue 4): a capture's segments are one-off
        results = execute(trace, args, dsts, once=capturing())
    except LinAlgError as exc:  # issue 9: name where the failing op was recorded
        restore_pending(pending)
        raise linalg_error(exc, collect([t for t, _ in pairs])[0]) from None
    except BaseException:
        restore_pending(pending)
        raise
    for (t, d), r in zip(pairs, results):
        if d is None:
            t._set_value(r)
        elif id(t) in pending:  # a written array holds its own buffer again
            t._data, t._prod, t._idx = d, None, 0


# ---- in-place writes of lazy values (batch_norm's running statistics in the record scope) ----
_PENDING: dict[int, tuple[Any, numpy.ndarray]] = {}  # id(array) -> (weak reference, its buffer)
_PENDING_LOCK = threading.Lock()


def has_pending_writes() -> bool:
    """Whether a `write_later` waits for the next sync point."""
    return bool(_PENDING)


def take_pending() -> dict[int, tuple[Any, numpy.ndarray]]:
    """The live pending writes as {id(array): (array, buffer)}; the registry is emptied."""
    if not _PENDING:
        return {}
    with _PENDING_LOCK:
        items = list(_PENDING.items())
        _PENDING.clear()
    out = {}
    for i, (ref, buf) in items:
        a = ref()
        if a is not None and a._data is None:
            out[i] = (a, buf)
    return out


def restore_pending(pending: dict[int, tuple[Any, numpy.ndarray]]) -> None:
    """Put writes `take_pending` took back (their program failed)."""
    with _PENDING_LOCK:
        for i, (a, buf) in pending.items():
            _PENDING.setdefault(i, (weakref.ref(a), buf))


def write_later(dst: "ndarray", value: "ndarray") -> bool:
    """`dst[...] = value` for a lazy `value` without a sync point: `dst` reads as `value` from
    now on (lazily), and the next sync point computes it, in the same program as what that
    sync computes, into `dst`'s own buffer. False (nothing done) where the write cannot wait:
    a jit capture, a concrete value, a view, a buffer something else holds (a view of it
    would read the old values meanwhile), a GPU array, another shape or dtype."""
    buf = dst._data
    if (
        STATE.capture is not None or value._data is not None or value._prod is None
        or type(buf) is not numpy.ndarray or buf.base is not None or dst._root is not None
        or dst._dev is not None or dst._in_graph or dst._grad is not None
        or value._shape != dst._shape or value._dtype != dst._dtype
    ):
        return False
    dst._prepare_write()  # lazy readers of the old value get it first
    if sys.getrefcount(buf) > 3:  # the slot, `buf` and the call's argument: no view or alias
        return False
    h = apply(Op.STOP_GRADIENT, [value], {})[0]  # a private handle on value: dst takes its place
    p = h._prod
    p.outs[h._idx] = weakref.ref(dst)
    dst._data, dst._prod, dst._idx = None, p, h._idx
    with _PENDING_LOCK:
        _PENDING[id(dst)] = (weakref.ref(dst), buf)
    return True


def linalg_error(exc: LinAlgError, prods: Sequence[Producer]) -> LinAlgError:
    """`exc` with where the user recorded ops of the kind it names (kept in `where`) and
    where the value was needed."""
    name = str(exc).split(":", 1)[0]
    lines = [p.where for p in prods if p.op.value == name and p.where]
    at = f"\n  (recorded at {', '.join(dict.fromkeys(lines))})" if lines else ""
    return LinAlgError(f"{exc}{at}\n  (computed at {user_line_long()})")


def note_recorded_at(out: Any) -> None:
    """Keep the user's line on a lazily recorded op whose values can be rejected (singular
    matrices), so a later LinAlgError names it."""
    if out._data is None and out._prod is not None:
        out._prod.where = user_line_long()


SMALL = 4096


def sync_targets(t: Any) -> list:
    """What a sync point on `t` computes: `t`, and its lazy ancestors when all are small.

    Python code that branches on a value (`while np.abs(b).sum() < 1000: b = b * 2`) reads
    it again after more ops; keeping the small ancestors' values makes the next sync's trace
    start from them instead of re-running the whole chain (quadratic in the loop count).
    """
    out = [t]
    seen = {id(t)}
    stack = [t]
    while stack:
        p = stack.pop()._prod
        if p is None:
            continue
        for x in p.ins:
            if type(x) is Lit or id(x) in seen:
                continue
            seen.add(id(x))
            if x._data is None:
                if x.size > SMALL:
                    return [t]
                out.append(x)
                stack.append(x)
    return out


def check_dtype_for_grad(a: "ndarray", what: str) -> None:
    if a.dtype.kind != "f":
        raise DTypeError(
            f"{what}: an array of dtype {a.dtype} cannot carry a gradient "
            "(cast it with .astype('float32') first)"
        )
