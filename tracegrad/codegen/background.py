"""Compiles off the critical path: a separate process fills the disk cache with a module.

`start(source)` launches `python -m tracegrad.codegen.background`, which builds the
module's disk cache entry (Numba, as `cache.load_module` always does) and its native
library, then exits; the launching process keeps running the trace another way meanwhile and
loads the entry once `Job.done()` (a cache hit, without Numba when the native library is
there). Jobs run one at a time, in the order started. A process, not a thread: a Numba
compile holds the GIL for most of its time, and a process that exits while one runs
neither waits for it nor tears the compiler down under it; the child finishes the entry
(atomic writes, see cache) and exits on its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from typing import Optional

from ..log import channel

LOG = channel("compile")
_queue: list["Job"] = []  # started in order; the first one not done runs


class Job:
    """One module built by a child process."""

    def __init__(self, source: str, what: str) -> None:
        self.source, self.what = source, what
        self.proc: Optional[subprocess.Popen] = None
        self.err = None
        self.started = time.perf_counter()
        self.returncode: Optional[int] = None

    def _launch(self) -> None:
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tracegrad.codegen.background"], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=self.err, start_new_session=True, env=_child_env())
        try:
            self.proc.stdin.write(self.source.encode())
            self.proc.stdin.close()
        except OSError:  # the child died at once: its stderr says why
            pass

    def done(self) -> bool:
        """Whether the child has finished (successfully or not); starts queued children."""
        if self.returncode is None:
            poll()
        return self.returncode is not None

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until done (False if `timeout` seconds passed first)."""
        end = None if timeout is None else time.perf_counter() + timeout
        while not self.done():
            if end is not None and time.perf_counter() > end:
                return False
            time.sleep(0.01)
        return True

    def failure(self) -> Optional[str]:
        """None when the child built the entry, else the last line of what it reported."""
        if self.returncode == 0:
            return None
        text = b""
        if self.err is not None:
            self.err.seek(0)
            text = self.err.read()[-2000:]
        lines = [ln for ln in text.decode(errors="replace").splitlines() if ln.strip()]
        return f"exit status {self.returncode}" + (f": {lines[-1]}" if lines else "")


def _child_env() -> dict:
    env = dict(os.environ)
    # the child runs this same tracegrad (a source checkout on sys.path included)
    pkg_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def start(source: str, what: str) -> Job:
    """Queue a child process that builds the disk cache entry of module `source`."""
    job = Job(source, what)
    _queue.append(job)
    poll()
    return job


def poll() -> None:
    """Reap the running child; launch the next queued one."""
    while _queue:
        job = _queue[0]
        if job.proc is None:
            try:
                job._launch()
            except OSError as exc:
                job.returncode = -1
                job.err = None
                LOG.warning("background compile of %s could not start: %s", job.what, exc)
                _queue.pop(0)
                continue
            return
        rc = job.proc.poll()
        if rc is None:
            return
        job.returncode = rc
        _queue.pop(0)


def busy() -> bool:
    """Whether a child is building or queued."""
    poll()
    return bool(_queue)


def _main() -> int:
    """The child: build the entry of the module source read from stdin, and its native
    library (a later `load_module` in the parent is then a disk hit)."""
    from . import STATS
    from .cache import build_pending, load_module

    source = sys.stdin.buffer.read().decode()
    load_module(source, STATS)
    build_pending()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
