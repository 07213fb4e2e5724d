"""Run the benchmark: every workload x every installed implementation, one fresh process each.

    python -m benchmarks.run                      # full sizes, every installed implementation
    python -m benchmarks.run --quick              # small sizes, W1-W6, numpy + tracegrad rows
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
import random
import shutil
import statistics
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
ALL_WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9", "W9c")
QUICK_WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6")  # --quick: short; W7-W9c by --only
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
    """One worker subprocess; its result record (status TIMEOUT/CRASH if it gave none).
    Workers write and read Python bytecode as a normal installation does
    (PYTHONDONTWRITEBYTECODE is dropped): import and first-call times are not those of a
    tree compiled from source on every start."""
    py, why = _python_for(impl)
    base = {"impl": impl.name, "workload": wid, "sizes": sizes}
    if py is None:
        return {**base, "status": "SKIP", "reason": why}
    env = common.thread_env(threads)
    env["BENCH_CACHE_DIR"] = cache_dir
    env.pop("PYTHONDONTWRITEBYTECODE", None)
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
    `*_total_s` = import + first call: the first call "including imports".
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
    rec["cold_total_s"] = cold["import_s"] + cold["first_call_s"]
    warm = run_worker(impl, "W3", sizes, 0.0, timeout, cache, first_only=True, threads=threads)
    rec["warm_first_call_s"] = warm.get("first_call_s")
    rec["warm_import_s"] = warm.get("import_s")
    if warm.get("status") != "OK":
        rec.update(status=warm.get("status"), reason="warm run: " + str(warm.get("reason")))
    else:
        rec["warm_total_s"] = warm["import_s"] + warm["first_call_s"]
    return rec


def schedule(workloads: list[str], impls: list[Impl], rounds: int, seed: int) -> list[tuple[str, str, int]]:
    """The run order: `rounds` blocks, each every (workload, implementation) row once in its own
    seeded random order, so that a slow spell of the machine hits rows of every kind instead
    of one workload's; W6 rows (cold/warm first calls) run at the end of the last block, after
    the W3 rows whose caches they reuse."""
    rng = random.Random(seed)
    rows = [(wid, impl.name) for wid in workloads if wid != "W6" for impl in impls if wid in impl.workloads]
    w6 = [("W6", impl.name) for impl in impls if "W6" in workloads and impl.cache and "W6" in impl.workloads]
    order: list[tuple[str, str, int]] = []
    for r in range(rounds):
        block = rows[:]
        rng.shuffle(block)
        if r == rounds - 1:  # W6 at the end of the last block, after every W3 row
            tail = w6[:]
            rng.shuffle(tail)
            block += tail
        order.extend((wid, name, r) for wid, name in block)
    return order


_STATUS_RANK = ("FAIL", "ERROR", "CRASH", "TIMEOUT", "SKIP", "N/A")


def merge_rounds(recs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from its rounds: OK only when every round was OK (every round's timed results
    were checked); then median = the best round median, min = the best step, first call = the
    median of the rounds' (each started on an empty cache), err and memory = the worst."""
    if len(recs) == 1:
        return dict(recs[0])
    bad = [r for r in recs if r.get("status") != "OK"]
    if bad:
        bad.sort(key=lambda r: _STATUS_RANK.index(r["status"]) if r.get("status") in _STATUS_RANK else 0)
        out = dict(bad[0])
    else:
        out = dict(recs[0])
        out["median_s"] = min(r["median_s"] for r in recs)
        out["min_s"] = min(r["min_s"] for r in recs)
        firsts = [r["first_call_s"] for r in recs if r.get("first_call_s") is not None]
        out["first_call_s"] = statistics.median(firsts) if firsts else None
        out["err"] = max(r.get("err") or 0.0 for r in recs)
        for key in ("mem_peak_bytes", "mem_step_extra_bytes"):
            vals = [r[key] for r in recs if r.get(key) is not None]
            if vals:
                out[key] = max(vals)
        out["reps"] = sum(r.get("reps") or 0 for r in recs)
    if len(recs) > 1:
        out["rounds"] = [{k: r.get(k) for k in ("status", "median_s", "min_s", "first_call_s", "err", "position")}
                         for r in recs]
    return out


def run_all(workloads: list[str], impls: list[Impl], sizes: str, budget: float,
            timeout: float, quick: bool, progress: bool = True,
            threads: int = common.THREADS, rounds: int = 1, seed: Optional[int] = None) -> dict[str, Any]:
    """Every requested (workload, implementation) row in `rounds` interleaved rounds (see
    `schedule`), the floors before and after; the JSON document."""
    t_start = time.perf_counter()
    started = _now()
    load_before = _loadavg()
    seed = random.SystemRandom().randrange(1 << 31) if seed is None else seed
    order = schedule(workloads, impls, rounds, seed)
    tmp = tempfile.mkdtemp(prefix="tracegrad-bench-")
    by_row: dict[tuple[str, str], list[dict[str, Any]]] = {}
    caches: dict[tuple[str, str], str] = {}  # (workload, impl) -> the cache its round-0 row filled
    try:
        floors_before = measure_floors(sizes, quick, timeout, threads)
        for pos, (wid, name, rnd) in enumerate(order):
            impl = BY_NAME[name]
            if wid == "W6":
                w3 = (by_row.get(("W3", name)) or [None])[0]
                rec = run_w6(impl, sizes, timeout, tmp, threads, w3, caches.get(("W3", name)))
            else:
                cache = tempfile.mkdtemp(prefix=f"{wid}-{impl.mode}-r{rnd}-", dir=tmp)
                if rnd == 0:
                    caches[(wid, name)] = cache
                rec = run_worker(impl, wid, sizes, budget / rounds, timeout, cache, threads=threads)
            rec["position"] = pos
            rec["round"] = rnd
            by_row.setdefault((wid, name), []).append(rec)
            if progress:
                t = rec.get("median_s") or rec.get("cold_first_call_s")
                print(f"  [{pos + 1}/{len(order)}] {wid:3} {name:15} r{rnd} {rec.get('status'):6} "
                      f"{'' if t is None else f'{t:.3g} s'}", file=sys.stderr, flush=True)
        # full runs measure the floors again at the end and keep the best of both
        floors_after = {} if quick else measure_floors(sizes, quick, timeout, threads)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    from .bandwidth import merge
    from .report import add_ratios

    floors = merge(floors_before, floors_after)
    rank = {name: i for i, name in enumerate(BY_NAME)}
    records = [merge_rounds(recs) for _, recs in sorted(
        by_row.items(), key=lambda kv: (ALL_WORKLOADS.index(kv[0][0]), rank[kv[0][1]]))]
    add_ratios(records, floors)
    return {
        "meta": {
            "date": started, "date_start": started, "date_end": _now(),
            "commit": _commit(),
            "host": platform.node(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "threads": threads, "sizes": sizes,
            "loadavg_before": load_before, "loadavg_after": _loadavg(),
            "workloads": workloads, "impls": [i.name for i in impls],
            "rounds": rounds, "order_seed": seed,
            "order": [f"{wid}/{name}/r{rnd}" for wid, name, rnd in order],
            "budget_s_per_row": budget,
            "wall_s": time.perf_counter() - t_start,
        },
        "floors": floors,
        "floors_runs": [f for f in (floors_before, floors_after) if f],
        "results": records,
    }


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _commit() -> dict[str, Any]:
    """The source the run measured: HEAD's commit and whether tracked files differ from it."""
    def git(*args: str) -> Optional[str]:
        try:
            out = subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"sha": head, "dirty": bool(status) if status is not None else None,
            "subject": git("log", "-1", "--format=%s")}


def _loadavg() -> Optional[list[float]]:
    """1/5/15-minute load averages: a contended machine makes every time noisy."""
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, W1-W6, numpy + tracegrad rows, 1 round")
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
    p.add_argument("--rounds", type=int, default=None,
                   help="rounds per row, interleaved in random order (default 2; --quick 1)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the run order (default: drawn; recorded in the JSON either way)")
    a = p.parse_args(argv)
    a.sizes = a.sizes or ("quick" if a.quick else "full")
    canon = {w.upper(): w for w in ALL_WORKLOADS}
    default = QUICK_WORKLOADS if a.quick else ALL_WORKLOADS
    wl = [canon.get(w.strip().upper(), w.strip()) for w in a.only.split(",")] if a.only else list(default)
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
    if a.rounds is None:
        a.rounds = 1 if a.quick else 2
    if a.rounds < 1:
        p.error("--rounds must be at least 1")
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
                  threads=a.threads, rounds=a.rounds, seed=a.seed)
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
