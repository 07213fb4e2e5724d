"""Shared plumbing: thread settings for every runtime, /proc memory probes, the result protocol.

This module imports nothing heavy (no numpy) so the parent can build child environments
before anything numeric is loaded.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

THREADS = 2
RESULT_TAG = "BENCH_RESULT "  # the worker's one result line on stdout starts with this


class NotApplicable(Exception):
    """The implementation cannot express this workload (reported as N/A with the reason)."""


class Skipped(Exception):
    """The implementation is not installed here (reported as SKIP with the reason)."""


def thread_env(threads: int = THREADS, base: Optional[dict[str, str]] = None) -> dict[str, str]:
    """An environment that pins numba, OpenMP, BLAS, MKL, torch and XLA to `threads` threads."""
    env = dict(os.environ if base is None else base)
    n = str(threads)
    for var in (
        "NUMBA_NUM_THREADS",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "BLIS_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "NUMEXPR_NUM_THREADS",
    ):
        env[var] = n
    # XLA's CPU client sizes its intra-op pool ("XLAEigen" threads) from PJRT_NPROC, else from
    # the CPU affinity; XLA_FLAGS' intra_op_parallelism_threads does not change it (measured:
    # tests/test_benchmarks.py::test_jax_reads_the_thread_setting counts the pool's threads).
    env["PJRT_NPROC"] = n
    flags = env.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        flags = (flags + " --xla_cpu_multi_thread_eigen=true").strip()
    env["XLA_FLAGS"] = flags
    env["BENCH_THREADS"] = n
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def thread_names() -> dict[str, int]:
    """How many threads of this process carry each name (/proc/self/task/*/comm)."""
    names: dict[str, int] = {}
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return names
    for t in tasks:
        try:
            with open(f"/proc/self/task/{t}/comm") as fh:
                name = fh.read().strip()
        except OSError:
            continue
        names[name] = names.get(name, 0) + 1
    return names


def _status_kb(field: str) -> Optional[int]:
    """A `VmXXX:` line of /proc/self/status in bytes (None where /proc is not there)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def rss_bytes() -> Optional[int]:
    """Current resident set size."""
    return _status_kb("VmRSS")


def hwm_bytes() -> Optional[int]:
    """Peak resident set size since start or since the last reset_hwm()."""
    return _status_kb("VmHWM")


def reset_hwm() -> bool:
    """Reset the peak-RSS mark to the current RSS (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def emit(result: dict[str, Any]) -> None:
    """Print the worker's result as one tagged JSON line (the parent parses it)."""
    print(RESULT_TAG + json.dumps(result, default=float), flush=True)


def parse_result(stdout: str) -> Optional[dict[str, Any]]:
    """The last tagged result line of a worker's stdout, or None."""
    found = None
    for line in stdout.splitlines():
        if line.startswith(RESULT_TAG):
            found = json.loads(line[len(RESULT_TAG):])
    return found
