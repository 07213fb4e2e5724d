"""One implementation on one workload, in a fresh process: time it, measure it, check it.

    python -m benchmarks.worker --impl torch.compile --workload W2 [--sizes quick]

Prints one tagged JSON line (benchmarks.common.RESULT_TAG). Order of events: import the
framework (import_s), read RSS (rss0), build the data and the step, first call (first_call_s,
includes compiling), warm-up, reset the peak-RSS mark, timed steps (median_s), read the peak
RSS, then check the results of timed steps (see `run`) against the float64 reference; a
wrong result makes the status FAIL and the harness ignores its times.

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
from typing import Any, Callable, Optional

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


def _time_steps(step: Any, budget_s: float, min_reps: int, max_reps: int,
                after: Optional[Callable[[int], None]] = None) -> list[float]:
    """Run `step` until the budget (at least min_reps, at most max_reps times); `after(i)` runs
    after timed step i, outside the timer (fetching results for the check)."""
    times: list[float] = []
    clock = time.perf_counter
    total = 0.0
    while len(times) < max_reps and (total < budget_s or len(times) < min_reps):
        t0 = clock()
        step()
        dt = clock() - t0
        times.append(dt)
        total += dt
        if after is not None:
            after(len(times) - 1)
    return times


def _fetch(st: Any) -> dict[str, Any]:
    """The step's results as owned numpy copies (a framework may hand out views of buffers the
    next step overwrites)."""
    import numpy as np

    return {k: np.array(v, copy=True) for k, v in st.fetch().items()}


def _check(wid: str, data: dict[str, Any], got: dict[str, Any], history: list) -> tuple[bool, float, str]:
    from .workloads import check, reference

    return check(wid, got, reference(wid, data, got, history))


def run(impl_name: str, wid: str, sizes: str, budget_s: float, max_reps: int,
        first_only: bool = False) -> dict[str, Any]:
    """Run one (implementation, workload) pair here; the result record as a dict.

    What is checked: a training step (Workload.params) on the first timed step, recomputed in
    float64 from the parameters fetched just before it (and on the first call, the capture);
    W5 on the last `check_calls` timed calls; the other workloads on the last timed step.
    Fetching happens outside the timer. `first_only` (W6) checks the first call.
    """
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
        from .workloads import SIZES, WORKLOADS, make_data, with_params

        spec = WORKLOADS[wid]
        size = SIZES[sizes][wid]
        res["size"] = size
        names = spec.params(size) if spec.params else []
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
        history: list[dict[str, Any]] = []
        problems: list[str] = []
        worst = 0.0
        if spec.stateful or first_only:
            history.append(_fetch(st))
            ok, err, msg = _check(wid, make_data(wid, size), history[0], [])
            res["err_first_call"] = err
            worst = err
            if not ok:
                problems.append("first call (capture): " + msg)
        timed: dict[str, Any] = {}
        if not first_only:
            for _ in range(spec.warmup):
                st.step()
                if spec.stateful:
                    history.append(_fetch(st))
            gc.collect()
            rss1 = common.rss_bytes()
            calls: list[dict[str, Any]] = []

            def after(i: int) -> None:
                if spec.stateful and i == 0:
                    timed["got"] = _fetch(st)
                elif spec.check_calls:
                    calls.append(_fetch(st))
                    del calls[:-spec.check_calls]

            common.reset_hwm()  # steady state: compile-time transients are not a step's memory
            reps = 5 if spec.unit == "ms" else 50
            times = _time_steps(st.step, budget_s, min(reps, max_reps), max_reps, after)
            res["median_s"] = statistics.median(times)
            res["min_s"] = min(times)
            res["reps"] = len(times)
            hwm = common.hwm_bytes()
            if hwm is not None and rss1 is not None:
                res["mem_step_extra_bytes"] = hwm - rss1
            data = make_data(wid, size)
            if spec.stateful:
                res["checked"] = "timed step 1 (from the parameters fetched before it)"
                got = timed["got"]
                ok, err, msg = _check(wid, with_params(data, history[-1], names), got, history)
            elif spec.check_calls:
                res["checked"] = f"last {len(calls)} timed calls"
                ok, err, msg = _check(wid, data, _stack(calls), [])
            else:
                res["checked"] = "last timed step"
                ok, err, msg = _check(wid, data, _fetch(st), [])
            worst = max(worst, err)
            if not ok:
                problems.append("timed step: " + msg)
        else:
            res["checked"] = "first call"
        hwm = common.hwm_bytes()
        if hwm is not None and rss0 is not None:
            res["mem_peak_bytes"] = hwm - rss0
        res["err"] = worst
        res["status"] = "FAIL" if problems else "OK"
        if problems:
            res["reason"] = "wrong result vs float64 reference: " + "; ".join(problems)
        notes = st.notes() if callable(st.notes) else st.notes
        if notes:
            res["notes"] = notes
        backend = st.backend() if callable(st.backend) else st.backend
        if backend:
            res["backend"] = backend
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
