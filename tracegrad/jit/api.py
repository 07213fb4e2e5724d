"""`tracegrad.jit`: the compiled training step, with guards, automatic retrace and caps.

    @tracegrad.jit
    def step(x, y, lr):
        with autograd.record():
            loss = ((x @ w - y) ** 2).mean()
        loss.backward()
        w -= lr * w.grad
        return loss

The first call runs the body as plain Python under a capture and records the whole step as
one trace (forward, backward, the update, guards at every sync point). Later calls whose
signature matches replay the compiled program without running the body. A failed guard is
a side exit before any visible write; the body runs again and its path becomes a sibling
variant. See `explain()` for why a function retraced.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import random
import threading
import time
from typing import Any, Callable, Iterator, Optional

import numpy

from ..errors import TracegradError
from ..log import channel
from ..tracer.array import Array
from ..tracer.state import STATE
from ..tracer.where import user_line, warn_user
from .capture import Capture
from .guards import GuardKind
from .scalars import TaggedFloat, plain_value, tag_scalar
from .signature import (Dependencies, KeyParts, arg_names, arg_path_expr, describe, describe_key_change, key_distance,
                        make_key, shallow, walk_args)
from .variants import Entry, SideExit, Variant

RETRACE = channel("retrace")
GUARDS = channel("guards")
FALLBACK = channel("fallback")

DEFAULT_MAX_VARIANTS = 8
EVENTS_KEPT = 64  # the most recent events explain() shows; older ones are only counted
_PLAIN = object()  # "run this call as plain Python" (outside the compile lock)


class RetraceError(TracegradError):
    """A strict compiled step would have to retrace (the message says why)."""


class JitWarning(UserWarning):
    """A compiled step falls back to plain Python (the message says why and where)."""


class Counters:
    """What a compiled step did: calls, replays, side exits, compiles, compile seconds, fallbacks,
    and switches (replays that ran more than one variant's program before one passed)."""

    __slots__ = ("calls", "replays", "side_exits", "compiles", "compile_seconds", "fallbacks", "switches")

    def __init__(self) -> None:
        self.calls = self.replays = self.side_exits = self.compiles = self.fallbacks = 0
        self.switches = 0  # a guard failed and another compiled variant took over (no Python)
        self.compile_seconds = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self) -> str:
        return "Counters(" + ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items()) + ")"


class Event:
    """Why a compile (or a fallback) happened: the event kind ("first call", "signature",
    "guard", "fallback (cap)", "un-jittable"), the failing guard's kind and provenance."""

    __slots__ = ("kind", "guard", "item", "expected", "seen", "where", "call")

    def __init__(self, kind: str, guard: Optional[GuardKind], item: str, expected: Any, seen: Any, where: str,
                 call: int) -> None:
        self.kind, self.guard, self.item = kind, guard, item
        self.expected, self.seen, self.where, self.call = expected, seen, where, call

    def __str__(self) -> str:
        s = f"call {self.call}: {self.kind}: " + (f"{self.guard.name} " if self.guard is not None else "") + self.item
        if self.expected is not None or self.seen is not None:
            s += f" (expected {self.expected!s}, seen {self.seen!s})"
        if self.where:
            s += f" at {self.where}"
        return s


class JitFunction:
    """A step function compiled on first call; see the module docstring."""

    def __init__(self, fn: Callable, strict: bool = False, max_variants: int = DEFAULT_MAX_VARIANTS,
                 backend: str = "auto") -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.backend = backend
        self.strict = strict
        self.max_variants = int(max_variants)
        self.counters = Counters()
        self.events: collections.deque[Event] = collections.deque(maxlen=EVENTS_KEPT)
        self.event_counts: dict[str, int] = {}  # every event ever, by kind (and guard kind)
        self._lock = threading.RLock()  # captures and tree/entry inserts; replays take no lock
        self._entries: dict[tuple, Entry] = {}
        self._last: Optional[Entry] = None
        self._changes: dict[str, int] = {}  # signature item -> retraces it caused
        self._value_args: frozenset = frozenset()
        self._names = arg_names(fn)
        self._unjittable: Optional[str] = None
        self._cap_warned = False
        self.disabled = os.environ.get("TRACEGRAD_DISABLE_JIT", "") not in ("", "0")

    # ---- calling ----------------------------------------------------------------------
    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        return functools.partial(self.__call__, obj)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        c = self.counters
        c.calls += 1
        e = self._last  # fast path: the entry that ran last (None when disabled/un-jittable)
        if e is not None and e.fast(args, kwargs) and STATE.capture is None and not STATE.recording:
            try:
                out = e.replay(args, kwargs)
            except SideExit as exc:
                return self._side_exit(e, e.key, exc, args, kwargs)
            c.replays += 1
            return out
        return self._slow(args, kwargs)

    def _replay(self, entry: Entry, key: tuple, args: tuple, kwargs: dict) -> Any:
        try:
            out = entry.replay(args, kwargs)
        except SideExit as exc:
            return self._side_exit(entry, key, exc, args, kwargs)
        self.counters.replays += 1
        self._last = entry
        return out

    def _side_exit(self, entry: Entry, key: tuple, exc: SideExit, args: tuple, kwargs: dict) -> Any:
        with self._lock:
            if self._entries.get(key) is entry and entry.count != exc.count:
                try:  # another thread hung a variant on this tree meanwhile: it may cover this call
                    out = entry.replay(args, kwargs)
                except SideExit as again:
                    exc = again
                else:
                    self.counters.replays += 1
                    return out
            c = self.counters
            c.side_exits += 1
            where, expect = exc.variant.describe_guard(exc.index)
            ev = Event("guard", GuardKind.TRACE_GUARD, f"guard {exc.index} of variant {exc.variant.number} "
                       "(a data-dependent branch)", expect, exc.seen, where, c.calls)
            out = self._retrace(args, kwargs, key, ev, entry, exc)
        return self.fn(*args, **kwargs) if out is _PLAIN else out

    def _slow(self, args: tuple, kwargs: dict) -> Any:
        c = self.counters
        if self.disabled or STATE.capture is not None:
            return self.fn(*args, **kwargs)  # disabled, or inlined into an outer capture
        if self._unjittable is not None or STATE.recording:
            c.fallbacks += 1
            if STATE.recording and self._unjittable is None:
                FALLBACK.info("%s called inside autograd.record(): runs as plain Python", self.__qualname__)
            return self.fn(*args, **kwargs)
        _concrete(args, kwargs)
        key = make_key(args, kwargs, self._value_args)
        entry = self._entries.get(key)
        if entry is not None and entry.check(args, kwargs) < 0:
            return self._replay(entry, key, args, kwargs)
        with self._lock:  # a miss: look again (another thread may have compiled it), then capture
            out = self._miss(args, kwargs)
        return self.fn(*args, **kwargs) if out is _PLAIN else out

    def _miss(self, args: tuple, kwargs: dict) -> Any:
        """No entry replays this call (under the lock): compile it, or say to run it plain."""
        c = self.counters
        if self._unjittable is not None:
            c.fallbacks += 1
            return _PLAIN
        key = make_key(args, kwargs, self._value_args)
        entry = self._entries.get(key)
        if entry is not None:
            bad = entry.check(args, kwargs)
            if bad < 0:
                return self._replay(entry, key, args, kwargs)
            chk = entry.deps.checks[bad]
            ev = Event("signature", chk.kind, chk.what, describe(chk.value),
                       describe(entry.deps.seen(bad, args, kwargs)), chk.where or self._def_line(), c.calls)
            n = self._changes[chk.what] = self._changes.get(chk.what, 0) + 1
            if n > self.max_variants:  # a value that keeps changing: stop recompiling for it
                return self._over_cap(ev)
            self._drop(key)
            return self._retrace(args, kwargs, key, ev, None, None)
        if not self._entries and not self.event_counts:
            ev = Event("first call", None, "no compiled variant yet", None, None, user_line(), c.calls)
        else:
            ev = self._key_event(key)
        return self._retrace(args, kwargs, key, ev, None, None)

    def _def_line(self) -> str:
        code = getattr(self.fn, "__code__", None)
        return f"{os.path.basename(code.co_filename)}:{code.co_firstlineno}" if code is not None else "<unknown>"

    def _note(self, ev: Event) -> None:
        """Keep `ev` (the last EVENTS_KEPT are kept) and count it."""
        self.events.append(ev)
        k = ev.kind if ev.guard is None else f"{ev.kind} {ev.guard.name}"
        self.event_counts[k] = self.event_counts.get(k, 0) + 1

    def _drop(self, key: tuple) -> None:
        e = self._entries.pop(key, None)
        if e is not None and e is self._last:
            self._last = None

    def _key_event(self, key: tuple) -> Event:
        best = None
        olds = sorted(self._entries, key=lambda old: key_distance(old, key))
        for old in olds[:1]:
            best = describe_key_change(old, key, self._names)
        if best is None:
            return Event("signature", None, "no compiled variant for this signature", None, None, user_line(),
                         self.counters.calls)
        return Event("signature", best[0], best[1], best[2], best[3], user_line(), self.counters.calls)

    # ---- compiling --------------------------------------------------------------------
    def _n_variants(self) -> int:
        return sum(e.count for e in self._entries.values())

    def _retrace(self, args: tuple, kwargs: dict, key: tuple, ev: Event, entry: Optional[Entry],
                 exit_: Optional[SideExit]) -> Any:
        c = self.counters
        if self.strict and c.compiles > 0:
            raise RetraceError(f"{self.__qualname__} would retrace (strict=True): {ev}")
        if self._n_variants() >= self.max_variants:
            return self._over_cap(ev)
        self._note(ev)
        (GUARDS if ev.kind == "guard" else RETRACE).info("%s: compile: %s", self.__qualname__, ev)
        parts = KeyParts(args, kwargs)
        out, variant, deps = self._capture(args, kwargs)
        if variant is None:
            return out
        c.compiles += 1
        c.compile_seconds += variant.compile_seconds
        new_key = parts.key(self._value_args)
        if entry is not None and exit_ is not None and new_key == key and self._entries.get(key) is entry:
            entry.add(exit_.variant, exit_.index, exit_.seen, variant)
        else:
            fast = deps.compile_fast(args, kwargs, self._value_args, parts)
            self._entries[new_key] = self._last = Entry(new_key, deps.compile(), deps, variant, fast, self.counters)
        return out

    def _over_cap(self, ev: Event) -> Any:
        """Past the cap: plain Python for this call, one warning naming what keeps changing."""
        self.counters.fallbacks += 1
        ev.kind = "fallback (cap)"
        self._note(ev)
        if not self._cap_warned:
            self._cap_warned = True
            kind = f"{ev.guard.name}: " if ev.guard is not None else ""
            warn_user(
                f"{self.__qualname__}: cap of {self.max_variants} compiled variants reached; new paths run "
                f"as plain Python. What keeps changing: {kind}{ev.item} at {ev.where or self._def_line()} "
                f"(expected {ev.expected}, seen {ev.seen})",
                JitWarning,
            )
        FALLBACK.info("%s: over the cap: %s", self.__qualname__, ev)
        return _PLAIN

    def _capture(self, args: tuple, kwargs: dict) -> tuple[Any, Optional[Variant], Any]:
        t0 = time.perf_counter()
        leaves = walk_args(args, kwargs)
        arg_arrays = {id(x): p for p, x in leaves if isinstance(x, Array)}
        arg_np = {id(x): p for p, x in leaves if type(x).__module__ == "numpy" and hasattr(x, "shape")}
        objects = [x for _, x in leaves if isinstance(x, Array)]
        cap = Capture(arg_arrays, arg_np, objects)
        targs = tuple(a if i in self._value_args else tag_scalar(a, (i,), cap) for i, a in enumerate(args))
        tkw = {k: a if k in self._value_args else tag_scalar(a, (k,), cap) for k, a in kwargs.items()}
        deps = Dependencies()
        deps.visit(self.fn, "F")
        deps.env["F"] = self.fn
        deps.env["STATE"] = STATE
        here = self._def_line()
        deps.add(GuardKind.TRAINING_MODE, "autograd training mode", here, "STATE.training", STATE.training)
        deps.add(GuardKind.DEFAULT_DTYPE, "default float dtype (npx.set_np)", here, "STATE.default_float",
                 STATE.default_float)
        for p, x in leaves:
            if not isinstance(x, (Array, float, int, bool, str, type(None))) and type(x).__module__ != "numpy":
                src = arg_path_expr(p)
                deps.add(GuardKind.ARG_IDENTITY, f"argument {p[0]!r} (object identity)", here, src, x)
                deps.visit_value(x, src, self._names[p[0]] if isinstance(p[0], int) and p[0] < len(self._names)
                                 else str(p[0]), here)
        reached = [c for c in deps.checks if type(c.value) is numpy.ndarray]
        cap.np_objects = {id(c.value): c.value for c in reached}  # read live, by identity
        before = _snapshot(deps)
        gens = [c.value for c in deps.checks if isinstance(c.value, _GENERATORS)]
        rng_before = _rng_states(gens)
        contents = [shallow(o) for _, o in deps.containers]
        saved = STATE.capture
        STATE.capture = cap
        try:
            result = self.fn(*targs, **tkw)
        finally:
            STATE.capture = saved
            cap.active = False
        changed = [ch for ch, v in zip(deps.checks, before) if not _same(ch, v, deps, args, kwargs)]
        if changed:
            cap.fail(f"the step itself changes {changed[0].what} (a side effect a replay would skip)")
        for (what, o), snap in zip(deps.containers, contents):
            if shallow(o) != snap:
                cap.fail(f"the step mutates {what} (a {type(o).__name__}; a replay would skip that)")
                break
        if _rng_states(gens) != rng_before:
            cap.fail("the step draws from numpy.random, Python's random module or a generator object (a replay "
                     "would reuse this call's samples); draw with tracegrad.np.random, which a replay draws again")
        if cap.unjittable is None:
            _guard_copied_numpy(cap, deps, reached, leaves, self._names)
        captured = cap.finish(result) if cap.unjittable is None else None
        outside = [b[1] for b in cap.bound.values() if b[0] == "obj"]
        for arr in outside:  # attach_grad/drop_grad on an outside array changes the step
            deps.add(GuardKind.GRAD_REQ, f"grad_req of an outside array {arr.shape} {arr._dtype}", here,
                     f"{deps._name('O', arr)}._grad_req", arr._grad_req)
        if captured is not None:
            _alias_checks(deps, leaves, outside, captured, here)
        for v in list(targs) + list(tkw.values()):
            if type(v) is TaggedFloat:
                v._tg.capture = None  # an escaped tagged float must not keep the capture alive
        result = _untag(result)
        if cap.unjittable is not None:
            self._give_up(cap.unjittable)
            return _materialize(result), None, None
        used = {p[0] for p in cap.scalar_used}
        if used - self._value_args:
            self._value_args = self._value_args | used
            self._entries.clear()  # keys now carry those values
            self._last = None
            for p, (how, where) in cap.scalar_used.items():
                RETRACE.info("%s: float argument %r is used by Python (%s at %s): keyed by value",
                         self.__qualname__, p[0], how, where)
        variant = Variant(captured, self.backend)
        variant.compile_seconds = time.perf_counter() - t0
        return _materialize(result), variant, deps

    def _give_up(self, reason: str) -> None:
        self._unjittable = reason
        self._last = None
        self.counters.fallbacks += 1
        self._note(Event("un-jittable", None, reason, None, None, self._def_line(), self.counters.calls))
        FALLBACK.info("%s runs as plain Python: %s", self.__qualname__, reason)
        warn_user(f"{self.__qualname__} runs as plain Python from now on: {reason}", JitWarning)

    # ---- observability ----------------------------------------------------------------
    @property
    def variants(self) -> list[Variant]:
        """Every compiled variant, entry by entry (roots first, then their children)."""
        return [v for e in self._entries.values() for v in e.variants()]

    def explain(self) -> str:
        """Why each compile happened, the variants held, and the counters."""
        lines = [f"{self.__qualname__}: {self.counters}"]
        if self.disabled:
            lines.append("  disabled by TRACEGRAD_DISABLE_JIT")
        if self._unjittable:
            lines.append(f"  runs as plain Python: {self._unjittable}")
        n = sum(self.event_counts.values())
        counts = ", ".join(f"{k} x{v}" for k, v in self.event_counts.items())
        shown = f"; the last {len(self.events)}" if n > len(self.events) else ""
        lines.append(f"  {n} compile/fallback events ({counts}){shown}:" if n else "  0 compile/fallback events")
        lines.extend(f"    {e}" for e in self.events)
        lines.append(f"  {self._n_variants()} variants (cap {self.max_variants}) in {len(self._entries)} signature(s):")
        for e in list(self._entries.values()):
            kinds: dict[str, int] = {}
            for chk in e.deps.checks:
                kinds[chk.kind.name] = kinds.get(chk.kind.name, 0) + 1
            lines.append(f"   signature {_show_key(e.key, self._names)}; {len(e.deps.checks)} checks ("
                         + ", ".join(f"{k} x{v}" for k, v in kinds.items()) + ")")
            for v in e.variants():
                g = _compact_guards(v.guards)
                lines.append(f"    variant {v.number} ({v.backend}): {len(v.trace.eqns)} eqns, {len(v.guards)} guards "
                             f"[{g}], {v.replays} replays, compiled in {v.compile_seconds * 1e3:.1f} ms")
        return "\n".join(lines)

    def show_variants(self) -> str:
        """Each variant's trace and generated replay source."""
        parts = []
        for v in self.variants:
            parts.append(f"# variant {v.number} ({v.backend})\n{v.trace}\n\n# replay\n{v.source}"
                         + (f"\n\n# generated program\n{v.generated_source}" if v.generated_source else ""))
        return "\n\n".join(parts)

    def reset(self) -> None:
        """Forget every compiled variant, event and counter."""
        self.__init__(self.fn, self.strict, self.max_variants, self.backend)


def _alias_checks(deps: Dependencies, leaves: list, outside: list, captured: Any, here: str) -> None:
    """An argument that is (or is not) an array the step also reaches another way stays so.

    The trace reads each buffer through one binding; if the caller passes a global array
    as an argument (or stops doing so), the two routes would silently diverge.
    """
    guarded = {id(c.value): c for c in deps.checks if isinstance(c.value, Array)}
    for p, x in leaves:
        if not isinstance(x, Array):
            continue
        src = arg_path_expr(p)
        if id(x) in guarded:  # same object as a global/closure/attribute array: keep it so
            deps.add(GuardKind.OUTSIDE_ALIAS, f"argument {p[0]!r} is {guarded[id(x)].what}", here, src, x)
    if not captured.dests:
        return  # nothing written: reading one buffer by two routes gives the same values
    for o in outside:
        name = deps._name("O", o)
        for p, x in leaves:
            if isinstance(x, Array) and x is not o:
                deps.add(GuardKind.OUTSIDE_ALIAS, f"argument {p[0]!r} is not an outside array {o.shape}", here,
                         f"({arg_path_expr(p)} is not {name})", True)


def _concrete(args: tuple, kwargs: dict) -> None:
    """Compute lazy array arguments (made in a record scope) before binding their buffers."""
    lazy = [x for _, x in walk_args(args, kwargs) if isinstance(x, Array) and x._data is None]
    if lazy:
        from ..tracer.lazy import materialize

        materialize(lazy)


def _show_key(key: tuple, names: list[str]) -> str:
    parts = []
    for i, k in enumerate(key[:-1]):
        n = names[i] if i < len(names) else f"arg{i}"
        if isinstance(k, tuple) and len(k) == 4 and isinstance(k[0], tuple):
            parts.append(f"{n}: {k[1]}{list(k[0])}" + (f" grad_req={k[2]}" if k[2] != "null" else ""))
        elif k is float:
            parts.append(f"{n}: float (runtime)")
        else:
            parts.append(f"{n}: {k!r}")
    if key[-1] is not None:
        parts.append(f"aliased arrays {key[-1]}")
    return "(" + ", ".join(parts) + ")"


def _compact_guards(guards: list) -> str:
    """`f.py:6=True x9, f.py:6=False, f.py:8=True`: runs of equal guards folded."""
    out: list[str] = []
    prev, n = None, 0
    for g in guards + [None]:
        if g == prev:
            n += 1
            continue
        if prev is not None:
            out.append(f"{prev[0]}={prev[1]!r}" + (f" x{n}" if n > 1 else ""))
        prev, n = g, 1
    return ", ".join(out)


_GENERATORS = (numpy.random.Generator, numpy.random.RandomState, random.Random)


def _rng_states(gens: list) -> tuple:
    """Python's and numpy's global generator states, and those of the generators the step
    reaches (a global `rng`): a capture must leave them alone."""
    st = numpy.random.get_state()
    out = [random.getstate(), st[0], st[1].tobytes(), st[2:]]
    for g in gens:
        if isinstance(g, numpy.random.Generator):
            out.append(repr(g.bit_generator.state))
        elif isinstance(g, numpy.random.RandomState):
            out.append(g.get_state()[1].tobytes() + repr(g.get_state()[2:]).encode())
        else:
            out.append(g.getstate())
    return tuple(out)


CONTENT_GUARD_BYTES = 16384  # a numpy array this small copied inside the step is guarded by content


def _guard_copied_numpy(cap: Capture, deps: Dependencies, reached: list, leaves: list, names: list) -> None:
    """A constant the step made that copies a numpy array it reaches (np.array(G)) would be
    baked: guard a small one's contents, refuse a large one or a numpy argument (a replay
    would reuse this call's values)."""
    consts = [b[1] for b in cap.bound.values() if b[0] == "const" and isinstance(b[1], numpy.ndarray)]
    if not consts:
        return
    sources = [(c.value, c) for c in reached] + [(x, p) for p, x in leaves if type(x) is numpy.ndarray]
    done: set[int] = set()
    for k in consts:
        for src, how in sources:
            if id(src) in done or src.shape != k.shape or src.dtype.kind not in "biuf" or not _equal(k, src):
                continue
            done.add(id(src))
            if isinstance(how, tuple):  # an argument
                name = names[how[0]] if isinstance(how[0], int) and how[0] < len(names) else str(how[0])
                cap.fail(f"the step copies the numpy argument '{name}' into an array (np.array/asarray); a "
                         "replay would reuse this call's values: convert it before the call, or use it directly")
                return
            if src.nbytes > CONTENT_GUARD_BYTES:
                cap.fail(f"the step copies the numpy array {how.what} ({src.nbytes} bytes, reached at {how.where}) "
                         "into an array; a replay would reuse its values: use it directly in an op (read live)")
                return
            deps.add(GuardKind.NUMPY_VALUE, f"contents of {how.what} (copied into the step)", how.where,
                     f"{how.src}.tobytes()", src.tobytes())


def _equal(k: numpy.ndarray, src: numpy.ndarray) -> bool:
    try:
        return bool(numpy.array_equal(k, src.astype(k.dtype), equal_nan=k.dtype.kind == "f"))
    except (TypeError, ValueError):
        return False


def _snapshot(deps: Dependencies) -> list:
    return [ch.value for ch in deps.checks]


def _same(ch: Any, before: Any, deps: Dependencies, args: tuple, kwargs: dict) -> bool:
    i = deps.checks.index(ch)
    now = deps.seen(i, args, kwargs)
    return now is before or (ch.by_eq and type(now) is type(before) and now == before)


def _untag(x: Any) -> Any:
    t = type(x)
    if t is TaggedFloat:
        return plain_value(x)
    if t is tuple or t is list:
        return t(_untag(y) for y in x)
    if t is dict:
        return {k: _untag(v) for k, v in x.items()}
    return x


def _materialize(x: Any) -> Any:
    from ..tracer.lazy import materialize

    arrays: list[Array] = []

    def walk(y: Any) -> None:
        if isinstance(y, Array):
            if y._data is None:
                arrays.append(y)
        elif type(y) in (tuple, list):
            for z in y:
                walk(z)
        elif type(y) is dict:
            for z in y.values():
                walk(z)

    walk(x)
    if arrays:
        materialize(arrays)
    return x


def persistent(*arrays: Any) -> None:
    """Declare arrays made inside a compiled step as state that outlives the step (optimizer
    states created on first use): replays read and update them instead of treating them as
    constants of the trace. A no-op outside a capture."""
    cap = STATE.capture
    if cap is not None:
        for a in arrays:
            if isinstance(a, Array):
                cap.on_persistent(a)


# ---- gluon-core (issue 10): work that belongs before the step, done during its capture ----
@contextlib.contextmanager
def uncaptured() -> Iterator[None]:
    """Run the block outside any capture and recording, as if before the step: arrays made
    inside are ordinary outside arrays the trace then reads by identity (Gluon's deferred
    parameter initialization on a compiled step's first call). A no-op outside a capture."""
    saved = STATE.capture
    saved_rec = STATE.recording
    STATE.capture = None
    STATE.recording = False
    try:
        yield
    finally:
        STATE.capture = saved
        STATE.recording = saved_rec


def jit(fn: Optional[Callable] = None, *, strict: bool = False, max_variants: int = DEFAULT_MAX_VARIANTS,
        backend: str = "auto") -> Any:
    """Compile a step function (usable bare, `@jit`, or with options, `@jit(strict=True)`).

    strict: raise RetraceError instead of compiling again after the first compile.
    max_variants: compiled variants per function; past it new paths run as plain Python.
    backend: "auto" (codegen, falling back to the interpreter with a logged reason) or
    "interpret" (the reference interpreter: no Numba compile, for tests and debugging).
    Set TRACEGRAD_DISABLE_JIT=1 before decorating to get the plain function behaviour.
    """
    if backend not in ("auto", "interpret"):
        raise ValueError(f"jit: backend must be 'auto' or 'interpret', got {backend!r}")
    if fn is None:
        return lambda f: JitFunction(f, strict=strict, max_variants=max_variants, backend=backend)
    return JitFunction(fn, strict=strict, max_variants=max_variants, backend=backend)
