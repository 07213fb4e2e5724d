"""Run the benchmark: every workload x every installed implementation, one fresh process each.

    python -m benchmarks.run                      # full sizes, every installed implementation
    python -m benchmarks.run --quick              # small sizes, numpy + tracegrad, < 60 s
    python -m benchmarks.run --only W1,W2 --impls numpy,torch,tracegrad
    python -m benchmarks.run --json out.json --png out.png

Prints the table; writes JSON and a PNG plot (defaults for full runs:
benchmarks/results/bench_results.{json,png}, git-ignored; --quick writes only what is asked). Peers that are
not installed are SKIP rows with the reason; MXNet runs under the venv made by
benchmarks/mxnet_venv.sh (MXNET_VENV moves it).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Optional

from . import common
from .impls import BY_NAME, IMPLS, Impl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MXNET_VENV = os.environ.get(
    "MXNET_VENV", os.path.join(os.path.expanduser("~"), ".cache", "tracegrad-bench", "mxnet-venv"))
ALL_WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6")
RESULTS = os.path.join(ROOT, "benchmarks", "results")  # git-ignored


def _python_for(impl: Impl) -> tuple[Optional[str], str]:
    """The interpreter that runs `impl`, or (None, why it is skipped)."""
    if impl.venv == "mxnet":
        py = os.path.join(MXNET_VENV, "bin", "python")
        if os.path.exists(py):
            return py, ""
        return None, (f"MXNet venv not found at {MXNET_VENV} (mxnet 2.0.0b1 needs numpy<1.24); "
                      "create it with: bash benchmarks/mxnet_venv.sh")
    if importlib.util.find_spec(impl.probe) is None:
        hint = {"torch": "pip install torch==2.13.0", "jax": "pip install jax jaxlib",
                "autograd": "pip install autograd"}.get(impl.probe, "pip install -e '.[bench]'")
        return None, f"{impl.probe} not installed ({hint})"
    return sys.executable, ""


def run_worker(impl: Impl, wid: str, sizes: str, budget: float, timeout: float,
               cache_dir: str, first_only: bool = False, threads: int = common.THREADS) -> dict[str, Any]:
    """One worker subprocess; its result record (status TIMEOUT/CRASH if it gave none)."""
    py, why = _python_for(impl)
    base = {"impl": impl.name, "workload": wid, "sizes": sizes}
    if py is None:
        return {**base, "status": "SKIP", "reason": why}
    env = common.thread_env(threads)
    env["BENCH_CACHE_DIR"] = cache_dir
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "") if impl.venv else \
        os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH", "")) if p)
    cmd = [py, "-m", "benchmarks.worker", "--impl", impl.name, "--workload", wid,
           "--sizes", sizes, "--budget", str(budget)]
    if first_only:
        cmd.append("--first-only")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**base, "status": "TIMEOUT", "reason": f"no result within {timeout:.0f} s"}
    res = common.parse_result(proc.stdout)
    if res is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {**base, "status": "CRASH",
                "reason": f"exit {proc.returncode}: " + " | ".join(tail)[-400:]}
    res["wall_s"] = time.perf_counter() - t0
    return res


def measure_floors(sizes: str, quick: bool, timeout: float, threads: int = common.THREADS) -> dict[str, Any]:
    """The bandwidth/matmul floors in their own subprocess (same thread count as the rows)."""
    cmd = [sys.executable, "-m", "benchmarks.bandwidth", "--sizes", sizes,
           "--reps", "5" if quick else "20", "--n", str(1 << 22 if sizes == "tiny" else 1 << 24)]
    env = common.thread_env(threads)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH", "")) if p)
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "TIMEOUT"}
    return common.parse_result(proc.stdout) or {"status": "CRASH", "reason": proc.stderr[-400:]}


def run_w6(impl: Impl, sizes: str, timeout: float, tmp: str, threads: int = common.THREADS,
           cold: Optional[dict[str, Any]] = None, cache: Optional[str] = None) -> dict[str, Any]:
    """W6: W3's first call in a fresh process with an empty cache, then with the warm cache.

    `cold`/`cache`: the W3 row of this run and the cache folder it filled (it started empty,
    so its first call is the cold figure); without them a cold first-call run is made here.
    """
    if cold is None or cache is None or cold.get("status") != "OK":
        cache = tempfile.mkdtemp(prefix=f"w6-{impl.mode}-", dir=tmp)
        cold = run_worker(impl, "W3", sizes, 0.0, timeout, cache, first_only=True, threads=threads)
    rec: dict[str, Any] = {"impl": impl.name, "workload": "W6", "sizes": sizes,
                           "status": cold.get("status"), "reason": cold.get("reason"),
                           "cold_first_call_s": cold.get("first_call_s"),
                           "import_s": cold.get("import_s"), "err": cold.get("err")}
    if cold.get("status") != "OK":
        return rec
    warm = run_worker(impl, "W3", sizes, 0.0, timeout, cache, first_only=True, threads=threads)
    rec["warm_first_call_s"] = warm.get("first_call_s")
    rec["warm_import_s"] = warm.get("import_s")
    if warm.get("status") != "OK":
        rec.update(status=warm.get("status"), reason="warm run: " + str(warm.get("reason")))
    return rec


def run_all(workloads: list[str], impls: list[Impl], sizes: str, budget: float,
            timeout: float, quick: bool, progress: bool = True,
            threads: int = common.THREADS) -> dict[str, Any]:
    """Every requested (workload, implementation) pair plus the floors; the JSON document."""
    t_start = time.perf_counter()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    load_before = _loadavg()
    tmp = tempfile.mkdtemp(prefix="tracegrad-bench-")
    records: list[dict[str, Any]] = []
    caches: dict[tuple[str, str], str] = {}  # (workload, impl) -> the cache folder it filled
    try:
        floors = measure_floors(sizes, quick, timeout, threads)
        for wid in workloads:
            for impl in impls:
                if wid == "W6":
                    if not impl.cache:
                        continue
                    w3 = next((r for r in records if r["workload"] == "W3"
                               and r["impl"] == impl.name), None)
                    rec = run_w6(impl, sizes, timeout, tmp, threads, w3,
                                 caches.get(("W3", impl.name)))
                else:
                    cache = tempfile.mkdtemp(prefix=f"{wid}-{impl.mode}-", dir=tmp)
                    caches[(wid, impl.name)] = cache
                    rec = run_worker(impl, wid, sizes, budget, timeout, cache, threads=threads)
                records.append(rec)
                if progress:
                    t = rec.get("median_s") or rec.get("cold_first_call_s")
                    print(f"  {wid} {impl.name:15} {rec.get('status'):6} "
                          f"{'' if t is None else f'{t:.3g} s'}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    from .report import add_ratios

    add_ratios(records, floors)
    return {
        "meta": {
            "date": started,
            "host": platform.node(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "threads": threads, "sizes": sizes,
            "loadavg_before": load_before,
            "workloads": workloads, "impls": [i.name for i in impls],
            "wall_s": time.perf_counter() - t_start,
        },
        "floors": floors,
        "results": records,
    }


def _loadavg() -> Optional[list[float]]:
    """1/5/15-minute load averages: a contended machine makes every time noisy."""
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, numpy + tracegrad only, < 60 s")
    p.add_argument("--sizes", choices=("full", "quick", "tiny"), help="size preset (overrides --quick's)")
    p.add_argument("--only", default=None, help="comma-separated workloads, e.g. W1,W2 (default all)")
    p.add_argument("--impls", default=None,
                   help="comma-separated implementations or 'all' (default: all; --quick: numpy,tracegrad,tracegrad.jit); "
                        f"known: {','.join(i.name for i in IMPLS)}")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--png", default=None, help="write the plot here")
    p.add_argument("--budget", type=float, default=None, help="seconds of timed steps per row")
    p.add_argument("--timeout", type=float, default=None, help="seconds per worker process")
    p.add_argument("--list", action="store_true", help="list the implementations and exit")
    p.add_argument("--threads", type=int, default=common.THREADS,
                   help="threads for every runtime (default 2, the workloads' rule)")
    a = p.parse_args(argv)
    a.sizes = a.sizes or ("quick" if a.quick else "full")
    wl = [w.strip().upper() for w in a.only.split(",")] if a.only else list(ALL_WORKLOADS)
    bad = [w for w in wl if w not in ALL_WORKLOADS]
    if bad:
        p.error(f"unknown workload(s) {bad}; choose from {','.join(ALL_WORKLOADS)}")
    a.workloads = wl
    if a.impls in (None, "") :
        names = [i.name for i in IMPLS if i.quick] if a.quick else [i.name for i in IMPLS]
    elif a.impls == "all":
        names = [i.name for i in IMPLS]
    else:
        names = [n.strip() for n in a.impls.split(",")]
    bad = [n for n in names if n not in BY_NAME]
    if bad:
        p.error(f"unknown implementation(s) {bad}; choose from {','.join(BY_NAME)}")
    a.impl_list = [BY_NAME[n] for n in names]
    if a.budget is None:
        a.budget = 0.2 if a.quick or a.sizes != "full" else 2.0
    if a.timeout is None:
        a.timeout = 60.0 if a.quick else 600.0
    if not a.quick and a.json is None:
        a.json = os.path.join(RESULTS, "bench_results.json")
    if not a.quick and a.png is None:
        a.png = os.path.join(RESULTS, "bench_results.png")
    return a


def list_impls() -> str:
    """One line per implementation: its name and whether this machine can run it."""
    lines = []
    for impl in IMPLS:
        py, why = _python_for(impl)
        lines.append(f"{impl.name:15} {'available' if py else 'SKIP: ' + why}")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    a = parse_args(argv)
    if a.list:
        print(list_impls())
        return 0
    print(f"tracegrad benchmark: sizes={a.sizes}, workloads={','.join(a.workloads)}, "
          f"{a.threads} threads each, one process per row", file=sys.stderr)
    doc = run_all(a.workloads, a.impl_list, a.sizes, a.budget, a.timeout, a.quick,
                  threads=a.threads)
    doc["meta"]["loadavg_after"] = _loadavg()
    from .report import table, write_json, write_png

    print(table(doc["results"], doc["floors"], doc["meta"]))
    for path in (a.json, a.png):
        if path and os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
    if a.json:
        write_json(a.json, doc)
        print(f"wrote {a.json}")
    if a.png:
        why = write_png(a.png, doc["results"], doc["floors"])
        print(f"wrote {a.png}" if why is None else f"no plot: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
