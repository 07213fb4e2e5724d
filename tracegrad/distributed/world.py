"""The process world: MPI when launched by mpiexec, else one rank without MPI at all.

Every blocking wait goes through `wait()`: it polls the requests, watches a control channel
for a failure notice from another rank and gives up after a timeout, so a job never hangs.
An uncaught exception on one rank is announced to the others (they raise `RankFailedError`
naming it), then the job is aborted.
"""

from __future__ import annotations

import atexit
import os
import sys
import time
import traceback
from typing import Any, Callable, Optional

from .errors import CollectiveTimeoutError, DistributedError, RankFailedError

_TAG_FAIL = 7301  # on the control communicator: "rank r failed: ..."
_TAG_ACK = 7302  # the reply of a rank that has reported the failure
_LAUNCHER_VARS = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MV2_COMM_WORLD_SIZE")
_PREFIX = "[tracegrad.distributed]"


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        raise DistributedError(f"{name}={os.environ[name]!r} is not a number of seconds") from None


class World:
    """Who this process is among the ranks, and the communicators it talks on."""

    def __init__(self) -> None:
        self.initialized = False
        self.MPI: Any = None  # the mpi4py.MPI module, when running on MPI
        self.comm: Any = None  # the collectives' communicator (a duplicate of the user's)
        self.ctrl: Any = None  # failure notices and acknowledgements
        self.rank, self.size = 0, 1
        self.local_rank, self.local_size = 0, 1
        self.cross_rank, self.cross_size = 0, 1
        self.timeout = 300.0
        self.grace = 3.0
        self.spin = 1e-4
        self.failed: Optional[RankFailedError] = None
        self._prev_hook: Any = None


WORLD = World()
_ON_SHUTDOWN: list[Callable[[], None]] = []  # state that belongs to one world (fusion, signature)


def on_shutdown(reset: Callable[[], None]) -> None:
    """Call `reset` when the world shuts down (modules built on this one register here)."""
    _ON_SHUTDOWN.append(reset)


def launched_by_mpi() -> bool:
    """True when an MPI launcher (mpiexec/mpirun/srun with PMI) started this process."""
    return any(v in os.environ for v in _LAUNCHER_VARS)


def _import_mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise DistributedError(
            "this process was started by an MPI launcher but mpi4py is not installed "
            f"({exc}); install the dist extra: pip install 'tracegrad[dist]'"
        ) from None
    return MPI


def init(comm: Any = None, timeout: Optional[float] = None) -> None:
    """Join the world: MPI's COMM_WORLD (or `comm`) under mpiexec, else a one-rank world.

    `timeout` (seconds; default `TRACEGRAD_DIST_TIMEOUT` or 300) bounds every blocking
    collective; past it the rank raises `CollectiveTimeoutError` and the job is aborted.
    """
    w = WORLD
    if w.initialized:
        return
    w.timeout = float(timeout) if timeout is not None else _env_float("TRACEGRAD_DIST_TIMEOUT", 300.0)
    w.grace = _env_float("TRACEGRAD_DIST_GRACE", 3.0)
    # MPI progresses a transfer only inside MPI calls, so a wait polls without yielding the
    # CPU for `spin` seconds first. On a busy shared machine a short spin pays (W3 on 2 ranks
    # under load 9 on 2 cores: 43-48 ms/step with 0.1 ms, 48-56 ms with 5 ms: a spinning rank
    # holds the core its peer needs); where the ranks arrive together a longer one does (a 4 MB
    # allreduce right after a barrier, same load: 0.9 ms with a 2 ms spin, 5.8 ms with 0.1 ms).
    w.spin = _env_float("TRACEGRAD_DIST_SPIN", 1e-4)
    w.failed = None
    if comm is None and not launched_by_mpi():
        w.MPI = w.comm = w.ctrl = None
        w.rank, w.size, w.local_rank, w.local_size, w.cross_rank, w.cross_size = 0, 1, 0, 1, 0, 1
        w.initialized = True
        return
    MPI = _import_mpi()
    base = MPI.COMM_WORLD if comm is None else comm
    w.MPI = MPI
    w.comm = base.Dup()
    w.ctrl = base.Dup()
    w.rank, w.size = w.comm.Get_rank(), w.comm.Get_size()
    local = w.comm.Split_type(MPI.COMM_TYPE_SHARED, key=w.rank)
    w.local_rank, w.local_size = local.Get_rank(), local.Get_size()
    local.Free()
    cross = w.comm.Split(color=w.local_rank, key=w.rank)
    w.cross_rank, w.cross_size = cross.Get_rank(), cross.Get_size()
    cross.Free()
    w.initialized = True
    if w.size > 1:
        w._prev_hook = sys.excepthook
        sys.excepthook = _excepthook


def shutdown() -> None:
    """Leave the world: wait for every rank (with the timeout), then release communicators."""
    w = WORLD
    if not w.initialized:
        return
    if w.comm is not None and w.size > 1 and w.failed is None:
        wait([w.comm.Ibarrier()], "shutdown barrier")  # on failure the world stays for the abort
    if sys.excepthook is _excepthook:
        sys.excepthook = w._prev_hook or sys.__excepthook__
    for reset in _ON_SHUTDOWN:  # the agreed layouts, the fusion buffers
        reset()
    for c in (w.comm, w.ctrl):
        if c is not None:
            c.Free()
    w.comm = w.ctrl = None
    w.initialized = False


def require() -> World:
    """The world, initialized (else a clear error, as Horovod gives)."""
    if not WORLD.initialized:
        raise DistributedError(
            "tracegrad.distributed has not been initialized; call tracegrad.distributed.init() first"
        )
    return WORLD


# ---- waiting with a deadline and failure notices ---------------------------------------
def wait(reqs: list, what: str) -> None:
    """Complete `reqs`; raise if another rank failed or the timeout passes first."""
    w = WORLD
    MPI = w.MPI
    if MPI.Request.Testall(reqs):
        return
    t0 = time.monotonic()
    deadline, next_probe, n = t0 + w.timeout, t0, 0
    warn_at = t0 + min(60.0, w.timeout / 2)
    while not MPI.Request.Testall(reqs):
        n += 1
        now = time.monotonic()
        if now >= next_probe:
            check_failures()
            next_probe = now + 0.002
            if now > warn_at:
                print(f"{_PREFIX} rank {w.rank}: {what} has waited {now - t0:.0f} s for the other "
                      "ranks", file=sys.stderr, flush=True)
                warn_at = deadline + 1
            if now > deadline:
                raise CollectiveTimeoutError(
                    f"{what} did not complete within {w.timeout:g} s on rank {w.rank} of {w.size}: "
                    "another rank is stuck, has exited, or called a different collective "
                    "(TRACEGRAD_DIST_TIMEOUT sets the limit)"
                )
        if now - t0 > w.spin:  # past a spin, let the other ranks (and processes) run
            if now - t0 < 0.05:
                os.sched_yield()
            else:  # a long wait (another rank compiles or computes): stop burning a core
                time.sleep(1e-3)


def check_failures() -> None:
    """Raise `RankFailedError` when another rank has announced that it failed."""
    w = WORLD
    if w.failed is not None:
        raise w.failed
    if w.ctrl is None:
        return
    st = w.MPI.Status()
    if w.ctrl.Iprobe(source=w.MPI.ANY_SOURCE, tag=_TAG_FAIL, status=st):
        text = w.ctrl.recv(source=st.Get_source(), tag=_TAG_FAIL)
        w.failed = RankFailedError(st.Get_source(), f"stopping: {text}")
        raise w.failed


def _where(tb: Any) -> str:
    """The innermost frame of the user's code (outside tracegrad and mpi4py)."""
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frames = [f for f in traceback.extract_tb(tb)
              if not f.filename.startswith(pkg) and "mpi4py" not in f.filename]
    frames = frames or traceback.extract_tb(tb)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "<unknown>"


def _excepthook(etype: type, value: BaseException, tb: Any) -> None:
    """Report an uncaught exception to every rank, then abort the job (never a hang)."""
    w = WORLD
    prev = w._prev_hook or sys.__excepthook__
    if not isinstance(value, RankFailedError):  # another rank's failure: one line, no traceback
        prev(etype, value, tb)
    if not w.initialized or w.comm is None or w.size == 1:
        if isinstance(value, RankFailedError):
            prev(etype, value, tb)
        return
    try:
        if isinstance(value, RankFailedError):
            _acknowledge(value, f" (this rank was waiting at {_where(tb)})")
        else:
            _announce(f"rank {w.rank} failed: {etype.__name__}: {value} (at {_where(tb)})")
    finally:
        w.MPI.COMM_WORLD.Abort(1)


def _announce(text: str) -> None:
    """Tell every other rank `text`; wait (up to the grace period) for them to report it."""
    w = WORLD
    print(f"{_PREFIX} {text}; stopping all {w.size} ranks", file=sys.stderr, flush=True)
    others = [r for r in range(w.size) if r != w.rank]
    reqs = [w.ctrl.issend(text, dest=r, tag=_TAG_FAIL) for r in others]
    deadline = time.monotonic() + w.grace
    acked = 0
    while acked < len(others) and time.monotonic() < deadline:
        if w.ctrl.Iprobe(source=w.MPI.ANY_SOURCE, tag=_TAG_ACK):
            w.ctrl.recv(source=w.MPI.ANY_SOURCE, tag=_TAG_ACK)
            acked += 1
        else:
            time.sleep(0.01)
    del reqs


def _acknowledge(exc: RankFailedError, where: str = "") -> None:
    """Report another rank's failure here, tell it so, and let it end the job.

    The failed rank aborts once every rank has reported (so no report is cut off); this
    rank aborts by itself only if that has not happened within the grace period.
    """
    w = WORLD
    print(f"{_PREFIX} rank {w.rank}: {exc}{where}", file=sys.stderr, flush=True)
    w.ctrl.send("ack", dest=exc.failed_rank, tag=_TAG_ACK)
    time.sleep(w.grace + 1.0)


@atexit.register
def _at_exit() -> None:
    w = WORLD
    if not w.initialized or w.comm is None or w.size == 1:
        return
    try:
        shutdown()
    except RankFailedError as exc:
        try:
            _acknowledge(exc)
        finally:
            w.MPI.COMM_WORLD.Abort(1)
    except CollectiveTimeoutError as exc:
        print(f"{_PREFIX} rank {w.rank}: {exc}", file=sys.stderr, flush=True)
        w.MPI.COMM_WORLD.Abort(1)
