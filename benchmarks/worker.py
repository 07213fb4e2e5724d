"""One implementation on one workload, in a fresh process: time it, measure it, check it.

    python -m benchmarks.worker --impl torch.compile --workload W2 [--sizes quick]

Prints one tagged JSON line (benchmarks.common.RESULT_TAG). Order of events: import the
framework (import_s), read RSS (rss0), build the data and the step, first call (first_call_s,
includes compiling), warm-up, reset the peak-RSS mark, timed steps (median_s), read the peak
RSS, then fetch the results and check them against the float64 reference; a wrong result
makes the status FAIL and the harness ignores its times.

Memory: mem_peak_bytes = peak RSS during the timed steps - rss0, i.e. the data as the
framework holds it, gradients, temporaries, and whatever the runtime/compiler keeps resident
after the first call; mem_step_extra_bytes = that peak - RSS right before the timed steps
(the per-step transients: a full-size temporary shows here). RSS, not tracemalloc, so memory
allocated by numba, torch, XLA and MXNet counts.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import statistics
import sys
import time
import traceback
from typing import Any, Optional

from . import common


def _versions(impl_module: str) -> str:
    """The framework's version string, for the JSON record."""
    name = {"numpy_impl": "numpy", "autograd_impl": "autograd", "torch_impl": "torch",
            "jax_impl": "jax", "mxnet_impl": "mxnet", "numba_impl": "numba",
            "tracegrad_impl": "tracegrad"}.get(impl_module, "")
    mod = sys.modules.get(name)
    return str(getattr(mod, "__version__", "")) if mod else ""


def _stack(results: list[dict[str, Any]]) -> dict[str, Any]:
    """W5: per-call results stacked along a new first axis."""
    import numpy as np

    return {k: np.stack([np.asarray(r[k]) for r in results]) for k in results[0]}


def _time_steps(step: Any, budget_s: float, min_reps: int, max_reps: int) -> list[float]:
    times: list[float] = []
    clock = time.perf_counter
    total = 0.0
    while len(times) < max_reps and (total < budget_s or len(times) < min_reps):
        t0 = clock()
        step()
        dt = clock() - t0
        times.append(dt)
        total += dt
    return times


def run(impl_name: str, wid: str, sizes: str, budget_s: float, max_reps: int,
        first_only: bool = False) -> dict[str, Any]:
    """Run one (implementation, workload) pair here; the result record as a dict."""
    from .impls import BY_NAME

    impl = BY_NAME[impl_name]
    res: dict[str, Any] = {"impl": impl_name, "workload": wid, "sizes": sizes, "status": "ERROR"}
    rss0: Optional[int] = None
    try:
        t0 = time.perf_counter()
        module = importlib.import_module(f"benchmarks.impls.{impl.module}")
        module.setup(impl.mode)
        res["import_s"] = time.perf_counter() - t0
        res["version"] = _versions(impl.module)
        from .workloads import SIZES, WORKLOADS, check, make_data, reference

        spec = WORKLOADS[wid]
        size = SIZES[sizes][wid]
        res["size"] = size
        gc.collect()
        rss0 = common.rss_bytes()
        data = make_data(wid, size)
        st = module.make(impl.mode, wid, data, size)
        del data  # the implementation holds what it needs; the reference regenerates it
        gc.collect()
        common.reset_hwm()

        t0 = time.perf_counter()
        st.step()
        res["first_call_s"] = time.perf_counter() - t0
        got = st.fetch() if spec.check_after_first else None
        if not first_only:
            for _ in range(spec.warmup):
                st.step()
            gc.collect()
            rss1 = common.rss_bytes()
            common.reset_hwm()  # steady state: compile-time transients are not a step's memory
            reps = 5 if spec.unit == "ms" else 50
            times = _time_steps(st.step, budget_s, min(reps, max_reps), max_reps)
            res["median_s"] = statistics.median(times)
            res["min_s"] = min(times)
            res["reps"] = len(times)
            hwm = common.hwm_bytes()
            if hwm is not None and rss1 is not None:
                res["mem_step_extra_bytes"] = hwm - rss1
        hwm = common.hwm_bytes()
        if hwm is not None and rss0 is not None:
            res["mem_peak_bytes"] = hwm - rss0
        if spec.check_calls:
            calls = []
            for _ in range(spec.check_calls):
                st.step()
                calls.append(st.fetch())
            got = _stack(calls)
        elif got is None:
            got = st.fetch()
        ref = reference(wid, make_data(wid, size), got)
        ok, err, msg = check(wid, got, ref)
        res["err"] = err
        res["status"] = "OK" if ok else "FAIL"
        if not ok:
            res["reason"] = "wrong result vs float64 reference: " + msg
        notes = st.notes() if callable(st.notes) else st.notes
        if notes:
            res["notes"] = notes
    except common.Skipped as e:
        res.update(status="SKIP", reason=str(e))
    except common.NotApplicable as e:
        res.update(status="N/A", reason=str(e))
    except Exception as e:  # reported, never hidden: the table shows ERROR with the reason
        tb = traceback.format_exc(limit=-3)
        res.update(status="ERROR", reason=f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}",
                   traceback=tb[-2000:])
    return res


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--impl", required=True)
    p.add_argument("--workload", required=True)
    p.add_argument("--sizes", default="full", choices=("full", "quick", "tiny"))
    p.add_argument("--budget", type=float, default=2.0, help="seconds of timed steps")
    p.add_argument("--max-reps", type=int, default=1000)
    p.add_argument("--first-only", action="store_true", help="first call + check only (W6)")
    a = p.parse_args(argv)
    common.emit(run(a.impl, a.workload, a.sizes, a.budget, a.max_reps, a.first_only))
    return 0


if __name__ == "__main__":
    sys.exit(main())
