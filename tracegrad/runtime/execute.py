"""Runs a trace: the one door between the tracer, the jit and the back ends.

Which program runs a trace is decided here and nowhere else: the reference interpreter,
a compiled CPU program (codegen), or the CUDA renderer when an argument lives on a GPU.

`execute` serves the record scope. Tiering: a trace runs in the reference interpreter until it is worth compiling, that is
when its work (elements produced, summed over eqns) reaches `WORK_MIN`, or its key
(`Trace.key()`, structural, literal values included) has been seen `HOT` times. Compiled
programs are cached in memory by key (and their modules on disk, see codegen.cache). A
trace the compiler cannot handle runs in the interpreter; the reason is logged once per key
(a warning on the `tracegrad.fallback` channel).

`TRACEGRAD_COMPILE=auto|always|never|strict` overrides the tiering (`always` compiles every
trace: the tests use it to exercise the compiled path; `strict` is `always` and raises
instead of falling back, to find what the compiler does not handle). `TRACEGRAD_HOT` and `TRACEGRAD_WORK_MIN`
tune the thresholds. A one-off trace (`once=True`: a segment a jit capture computes while
it records) runs interpreted.

Background compiles (`TRACEGRAD_BACKGROUND`, default on; auto mode only): a trace whose
module is neither held nor in the disk cache is not compiled on the critical path. A child
process builds its cache entry (codegen.background) while the trace runs in the
interpreter; the first run after the child is done loads the entry (without Numba when its
native library is there) and switches to the compiled program. Each decision is logged on
the `compile` channel. `always` and `strict` compile synchronously, as does
`TRACEGRAD_BACKGROUND=0`; `wait_background()` waits for the children (tests, benchmarks).

`step_program` serves the jit: a captured step is compiled at once (no tiering); when the
compiler cannot handle it, or a call's arguments fail the program's checks, it runs in the
interpreter with the reason logged (`strict` raises instead).
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any, Callable, Optional, Sequence

import numpy

from .. import device as _device
from ..errors import CompileError, GuardFailure, IndexOutOfRangeError
from ..ir.core import Trace
from ..log import channel
from ..where import user_line_long
from .interpret import eval_trace

MODE = os.environ.get("TRACEGRAD_COMPILE", "auto").strip().lower() or "auto"
HOT = int(os.environ.get("TRACEGRAD_HOT", "3"))
WORK_MIN = int(os.environ.get("TRACEGRAD_WORK_MIN", "100000"))

BACKGROUND = os.environ.get("TRACEGRAD_BACKGROUND", "1").strip().lower() not in ("0", "off", "no", "")

_FALLBACK = object()
_LOG = channel("fallback")
_TIER_LOG = channel("compile")
_background: dict = {}  # key -> (codegen.Prepared, background.Job): compiling in a child process
_programs = None  # codegen.cache.LRU of key -> Program or _FALLBACK (created on first use)
_seen = None  # key -> times seen while still interpreted


def _with_user_line(run: Callable[..., list]) -> Callable[..., list]:
    """`run`, whose index errors (raised by the op table while the trace runs) also name
    the user's line that asked for the values."""

    @functools.wraps(run)
    def wrapped(*args: Any, **kw: Any) -> list:
        try:
            return run(*args, **kw)
        except IndexOutOfRangeError as exc:
            if "\n  (at " in str(exc):
                raise
            raise IndexOutOfRangeError(f"{exc}\n  (at {user_line_long()})") from None

    return wrapped


@_with_user_line
def execute(
    trace: Trace,
    args: Sequence[numpy.ndarray],
    dests: Optional[Sequence[Optional[numpy.ndarray]]] = None,
    key: Optional["_Key"] = None,
    once: bool = False,
) -> list[numpy.ndarray]:
    """Run `trace` on `args`; outputs with a destination buffer are written into it.

    `key` is the trace's `_Key` when the caller keeps it (saves rehashing the trace);
    `once` says the trace will not come again (it runs interpreted unless on a GPU).
    """
    # ---- device dispatch hook (issue 5, CUDA engineer): device arrays run on the GPU ----
    if _device.DEVICE_TYPES and _on_gpu(args, dests):
        from ..codegen.cuda import execute_cuda

        return execute_cuda(trace, args, dests)
    # ---- end of device dispatch hook ----
    if MODE != "never" and not once:
        prog = _program(trace, key)
        if prog is not None:
            try:
                out = prog(args, dests)
            except GuardFailure:
                raise
            except CompileError as exc:  # raised before any write (argument checks)
                _fallback(_Key(trace.key()), exc)
            else:
                _stats()["compiled_runs"] += 1
                return out
    return interpret(trace, args, dests)


@_with_user_line
def interpret(
    trace: Trace,
    args: Sequence[numpy.ndarray],
    dests: Optional[Sequence[Optional[numpy.ndarray]]] = None,
) -> list[numpy.ndarray]:
    """Run `trace` in the reference interpreter (writing outputs into `dests`)."""
    results = eval_trace(trace, args)
    if dests is not None:
        for d, r in zip(dests, results):
            if d is not None:
                d[...] = r
    if _programs is not None:
        _stats()["interpreted_runs"] += 1
    return results


_STATS: Optional[dict] = None


def _stats() -> dict:
    global _STATS
    if _STATS is None:
        from ..codegen import STATS

        _STATS = STATS
    return _STATS


def _program(trace: Trace, key: Optional["_Key"] = None):
    """The compiled program for `trace`, compiling it when the tiering says so; else None."""
    if _programs is None:
        _init_maps()
    if key is None:
        key = _Key(trace.key())
    prog = _programs.get(key)
    if prog is not None:
        if prog is _FALLBACK:
            return None
        _stats()["mem_hits"] += 1
        return prog
    if _background and key in _background:
        return _from_background(key)
    n = (_seen.get(key) or 0) + 1
    _seen.put(key, n)
    if MODE not in ("always", "strict") and n < HOT and _work(trace) < WORK_MIN:
        return None
    _stats()["mem_misses"] += 1
    from ..codegen import prepare

    try:
        pend = prepare(trace)
        if MODE == "auto" and BACKGROUND and not pend.cached:
            return _to_background(key, pend)
        prog = pend.build()
    except Exception as exc:  # anything the compiler cannot handle runs interpreted
        if MODE == "strict":
            raise
        _fallback(key, exc)
        return None
    _programs.put(key, prog)
    return prog


def _init_maps() -> None:
    global _programs, _seen
    from ..codegen.cache import LRU

    _programs, _seen = LRU(1024), LRU(8192)


def _to_background(key: "_Key", pend) -> None:
    """Start compiling `pend` in a child process; the trace runs interpreted meanwhile."""
    from ..codegen import background

    what = f"a trace of {len(pend.trace.eqns)} eqns"
    _background[key] = (pend, background.start(pend.source, what))
    _stats()["background_compiles"] += 1
    _TIER_LOG.info("%s runs in the interpreter while a background process compiles it (cold cache)", what)
    return None


def _from_background(key: "_Key"):
    """The program of a background compile once its child is done, else None (interpret)."""
    pend, job = _background[key]
    if not job.done():
        _stats()["background_waits"] += 1
        return None
    del _background[key]
    why = job.failure()
    if why is not None:  # say so, then compile here (a failure here is the logged fallback)
        _TIER_LOG.warning("background compile of a trace of %d eqns failed (%s); compiling it now",
                          len(pend.trace.eqns), why)
    t0 = time.perf_counter()
    try:
        prog = pend.build(t0)
    except Exception as exc:  # noqa: BLE001  (what the compiler cannot handle runs interpreted)
        _fallback(key, exc)
        return None
    _TIER_LOG.info("a trace of %d eqns switches to its compiled program (background compile: %.2f s; "
                   "loaded in %.3f s)", len(pend.trace.eqns), t0 - job.started, time.perf_counter() - t0)
    _programs.put(key, prog)
    _stats()["mem_hits"] += 1
    return prog


def wait_background(timeout: Optional[float] = None) -> bool:
    """Wait for the background compiles started so far (False if `timeout` passed first);
    their traces switch to the compiled programs at their next run."""
    end = None if timeout is None else time.perf_counter() + timeout
    for _, job in list(_background.values()):
        if not job.wait(None if end is None else max(0.0, end - time.perf_counter())):
            return False
    return True


class _Key:
    """A trace key that hashes once (a nested tuple rehashes on every dict operation)."""

    __slots__ = ("k", "h")

    def __init__(self, k: tuple) -> None:
        self.k, self.h = k, hash(k)

    def __hash__(self) -> int:
        return self.h

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and self.h == other.h and self.k == other.k


def _fallback(key, exc: BaseException) -> None:
    _stats()["fallbacks"] += 1
    _programs.put(key, _FALLBACK)
    msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    _LOG.warning("trace runs in the interpreter (not compiled): %s", msg)


def _work(trace: Trace) -> int:
    return sum(o.size for e in trace.eqns for o in e.outs)


def clear_programs() -> None:
    """Forget compiled programs and tiering counts (the disk cache stays)."""
    if _programs is not None:
        _programs.clear()
        _seen.clear()
    _background.clear()


def _on_gpu(args: Sequence, dests: Optional[Sequence]) -> bool:
    """Device hook (issue 5): whether any argument or destination is a GPU device array."""
    return any(_device.is_device_array(a) for a in args) or (
        dests is not None and any(_device.is_device_array(d) for d in dests)
    )


_STEP_LOG = channel("compile")


def step_program(trace: Trace, label: str, backend: str = "auto", on_device: bool = False) -> tuple[Callable, str]:
    """The program that runs a jit step's `trace` as `run(ins, dests)`, and what it is.

    `backend="interpret"` asks for the interpreter; `on_device` (a step captured on GPU
    arrays) dispatches each call by where its buffers live. A compiled program is exposed
    as `run.program`; `label` names the step in the logged fallback reasons.
    """
    if _device.DEVICE_TYPES and backend != "interpret":  # device hook (issue 5)
        return _device_program(trace, label, backend), "cuda-or-cpu"
    return _cpu_program(trace, label, backend, on_device)


def _device_program(trace: Trace, label: str, backend: str) -> Callable:
    """Device hook (issue 5, CUDA engineer): a call whose buffers are GPU device arrays
    replays through the CUDA renderer; others through the CPU program (built on first use)."""
    from ..codegen.cuda import execute_cuda

    cpu: list = []

    def run(ins: list, dests: list) -> list:
        if any(_device.is_device_array(a) for a in ins) or any(_device.is_device_array(d) for d in dests):
            return execute_cuda(trace, ins, dests)
        if not cpu:
            cpu.append(_cpu_program(trace, label, backend, False)[0])
        return cpu[0](ins, dests)

    return run


def _cpu_program(trace: Trace, label: str, backend: str, on_device: bool) -> tuple[Callable, str]:
    if on_device:  # GPU arrays: execute() dispatches them (issue 5)
        return (lambda ins, dests: execute(trace, ins, dests)), "execute (device)"
    if backend == "interpret" or MODE == "never" or not trace.eqns:
        return (lambda ins, dests: interpret(trace, ins, dests)), "interpret"
    try:
        from ..codegen import prepare

        pend = prepare(trace)
        if MODE == "auto" and BACKGROUND and not pend.cached:
            return _background_step(trace, label, pend), "interpret, then compiled (background compile)"
        prog = pend.build()
    except Exception as exc:  # noqa: BLE001  (any codegen failure: run interpreted, say why)
        if MODE == "strict":  # strict: no fallback, the failure is the answer
            raise
        _STEP_LOG.warning("%s runs in the interpreter (not compiled): %s: %s",
                          label, type(exc).__name__, str(exc).splitlines()[0][:300] if str(exc) else "")
        return (lambda ins, dests: interpret(trace, ins, dests)), "interpret"

    return _cpu_run(trace, label, prog), "compiled"


def _background_step(trace: Trace, label: str, pend) -> Callable:
    """A jit step that runs interpreted while a child process compiles it, then compiled."""
    key = _Key(("step", label, id(trace)))
    if _programs is None:
        _init_maps()
    _to_background(key, pend)
    box: list = []

    def run(ins: list, dests: list) -> list:
        if box:
            return box[0](ins, dests)
        if key in _background:
            prog = _from_background(key)
            if prog is not None:
                box.append(_cpu_run(trace, label, prog))
                return box[0](ins, dests)
        return interpret(trace, ins, dests)

    return run


def _cpu_run(trace: Trace, label: str, prog: Callable) -> Callable:
    def run(ins: list, dests: list) -> list:
        try:
            return prog(ins, dests)
        except CompileError as exc:  # argument checks fail before any write
            if MODE == "strict":
                raise
            _STEP_LOG.warning("%s: %s; this call runs in the interpreter", label, exc)
            return interpret(trace, ins, dests)

    run.program = prog
    return run
