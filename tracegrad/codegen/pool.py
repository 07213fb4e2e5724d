"""The thread pool that runs a large kernel's work units in parallel.

Kernels are `nogil` Numba functions over a range of work units; `run(fn, args, units)` splits
[0, units) into one contiguous range per thread, runs the first on the calling thread and
the others on persistent daemon workers, and returns when all are done. Results do not
depend on the split (kernels keep per-unit partials). `set_num_threads(n)` (default: the
CPU count, or `TRACEGRAD_NUM_THREADS`) changes the number of threads, 1 runs serially.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Any, Callable, Sequence

_workers: list = []
_lock = threading.Lock()


def _default_threads() -> int:
    env = os.environ.get("TRACEGRAD_NUM_THREADS") or os.environ.get("NUMBA_NUM_THREADS")
    try:
        return max(1, int(env)) if env else max(1, os.cpu_count() or 1)
    except ValueError:
        return max(1, os.cpu_count() or 1)


_nthreads = _default_threads()


def set_num_threads(n: int) -> None:
    """Threads used for large kernels (1: serial)."""
    global _nthreads
    _nthreads = max(1, int(n))


def get_num_threads() -> int:
    return _nthreads


class _Worker:
    def __init__(self) -> None:
        self.tasks: queue.SimpleQueue = queue.SimpleQueue()
        t = threading.Thread(target=self.loop, name="tracegrad-worker", daemon=True)
        t.start()

    def loop(self) -> None:
        while True:
            fn, args, done = self.tasks.get()
            try:
                fn(*args)
                done.put(None)
            except BaseException as exc:  # handed to the caller
                done.put(exc)


def _get_workers(n: int) -> list:
    with _lock:
        while len(_workers) < n:
            _workers.append(_Worker())
        return _workers[:n]


def run(fn: Callable, args: Sequence[Any], units: int) -> None:
    """fn(*args, ulo, uhi) over [0, units), split over the pool's threads."""
    t = min(_nthreads, units)
    if t <= 1:
        fn(*args, 0, units)
        return
    bounds = [units * j // t for j in range(t + 1)]
    ws = _get_workers(t - 1)
    done: queue.SimpleQueue = queue.SimpleQueue()  # per call: callers on several threads stay apart
    for j, w in enumerate(ws):
        w.tasks.put((fn, (*args, bounds[j + 1], bounds[j + 2]), done))
    err = None
    try:
        fn(*args, 0, bounds[1])
    except BaseException as exc:
        err = exc
    for _ in ws:
        r = done.get()
        if r is not None and err is None:
            err = r
    if err is not None:
        raise err
