"""Ratios, the text table, the JSON file and the PNG plot from the workers' records."""

from __future__ import annotations

import json
import logging
import math
from typing import Any, Optional

from .impls import BY_NAME
from .workloads import WORKLOADS

log = logging.getLogger("benchmarks")

ORDER = ("W1", "W2", "W3", "W4", "W5", "W7", "W8", "W9", "W9c")


def _scale(wid: str) -> tuple[float, str]:
    unit = WORKLOADS[wid].unit
    return (1e6, "us") if unit == "us" else (1e3, "ms")


def floor_s(wid: str, size: Any, floors: dict[str, Any]) -> tuple[Optional[float], str]:
    """The measured floor of a step and what it is: minimal traffic / the best measured
    bandwidth (W1, W2), the step's GEMMs alone (W3, W9c); (None, '') where there is none."""
    spec = WORKLOADS[wid]
    if size is None:
        return None, ""
    bw = floors.get("bw_bytes_per_s") or floors.get("triad_bytes_per_s")
    if spec.min_bytes is not None and bw:
        kernel = floors.get("bw_kernel", "triad")
        return spec.min_bytes(size) / bw, f"minimal traffic / {bw / 1e9:.1f} GB/s (best of the bandwidth kernels: {kernel})"
    if wid == "W3" and floors.get("w3_matmul_s"):
        return floors["w3_matmul_s"], "its five matmuls alone (numpy BLAS, best time)"
    if wid == "W9c" and floors.get("w9c_gemm_s"):
        return floors["w9c_gemm_s"], "its three im2col GEMMs alone (numpy BLAS, best time)"
    return None, ""


def bound_for(wid: str, records: list[dict[str, Any]], floors: dict[str, Any]) -> dict[str, Any]:
    """The lower bound of a workload: the measured floor, unless a correct (OK) row ran a step
    faster than it; then the floor was under-measured and the bound is that row's best step
    time, named in `why`. {'bound_s': None} where the workload has no floor."""
    rows = [r for r in records if r["workload"] == wid]
    size = next((r["size"] for r in rows if r.get("size") is not None), None)
    floor, what = floor_s(wid, size, floors)
    if floor is None:
        return {"bound_s": None, "why": ""}
    fast = [r for r in rows if r.get("status") == "OK" and r.get("min_s")]
    best = min(fast, key=lambda r: r["min_s"]) if fast else None
    if best is not None and best["min_s"] < floor:
        return {"bound_s": best["min_s"], "floor_s": floor, "from": best["impl"],
                "why": (f"{best['impl']}'s best step {best['min_s'] * _scale(wid)[0]:.3g} {_scale(wid)[1]} "
                        f"beat the measured floor {floor * _scale(wid)[0]:.3g} {_scale(wid)[1]} ({what}): "
                        "the floor was under-measured, so the bound is that kernel's figure")}
    return {"bound_s": floor, "floor_s": floor, "from": "floor", "why": what}


def bound_s(wid: str, size: Any, floors: dict[str, Any]) -> Optional[float]:
    """The measured floor alone (no rows to correct it); see bound_for."""
    return floor_s(wid, size, floors)[0]


def add_ratios(records: list[dict[str, Any]], floors: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Adds x_numpy, x_best_peer, x_bound (and mem_x_min) to every OK record, in place;
    returns the bound of each workload (see bound_for), also stored in floors['bounds']."""
    bounds: dict[str, dict[str, Any]] = {}
    for wid in ORDER:
        rows = [r for r in records if r["workload"] == wid and r.get("status") == "OK"
                and r.get("median_s")]
        if not rows:
            continue
        bounds[wid] = bound_for(wid, records, floors)
        numpy_t = next((r["median_s"] for r in rows if r["impl"] == "numpy"), None)
        peers = [r["median_s"] for r in rows if BY_NAME[r["impl"]].peer]
        best = min(peers) if peers else None
        best_name = next((r["impl"] for r in rows if BY_NAME[r["impl"]].peer
                          and r["median_s"] == best), None)
        for r in rows:
            t = r["median_s"]
            r["x_numpy"] = t / numpy_t if numpy_t else None
            r["x_best_peer"] = t / best if best else None
            r["best_peer"] = best_name
            b = bounds[wid]["bound_s"]
            r["bound_s"] = b
            r["x_bound"] = t / b if b else None
            spec = WORKLOADS[wid]
            if spec.min_bytes is not None and r.get("mem_peak_bytes"):
                r["mem_x_min"] = r["mem_peak_bytes"] / spec.min_bytes(r["size"])
    floors["bounds"] = bounds
    return bounds


def _fmt(v: Optional[float], spec: str = ".2f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def table(records: list[dict[str, Any]], floors: dict[str, Any],
          meta: Optional[dict[str, Any]] = None) -> str:
    """The text table: one block per workload, then W6, then notes for skipped/failed rows."""
    lines = []
    bw = floors.get("bw_bytes_per_s") or floors.get("triad_bytes_per_s")
    meta = meta or {}
    commit = meta.get("commit") or {}
    if commit.get("sha"):
        lines.append(f"commit {commit['sha'][:12]}{' + uncommitted changes' if commit.get('dirty') else ''}"
                     f" ({commit.get('subject') or ''})")
    if meta.get("date_start"):
        lines.append(f"run {meta['date_start']} .. {meta.get('date_end', '?')}; "
                     f"{meta.get('rounds', 1)} round(s) per row in a random interleaved order, seed "
                     f"{meta.get('order_seed')}")
    for when in ("before", "after"):
        load = meta.get(f"loadavg_{when}")
        if load:
            lines.append(f"load average {when} the run: {load[0]:.2f} (1 min) {load[1]:.2f} (5 min) on "
                         f"{meta.get('cpus')} cpus"
                         + ("  (CONTENDED: times are noisy)" if load[0] > 0.5 * (meta.get("cpus") or 1) else ""))
    kernels = floors.get("bw_kernels") or {}
    lines.append(f"bandwidth ({floors.get('threads', '?')} threads, best of {floors.get('measurements', 1)} "
                 f"measurement(s)): {_fmt(bw / 1e9 if bw else None, '.1f')} GB/s"
                 + (" [" + ", ".join(f"{k} {v / 1e9:.1f}" for k, v in kernels.items()) + "]" if kernels else "")
                 + f";  W3 matmuls alone: {_fmt(floors['w3_matmul_s'] * 1e3 if floors.get('w3_matmul_s') else None)} ms"
                 + f";  W9c GEMMs alone: {_fmt(floors['w9c_gemm_s'] * 1e3 if floors.get('w9c_gemm_s') else None)} ms")
    bounds = floors.get("bounds") or {}
    head = (f"{'wl':3} {'implementation':15} {'status':6} {'median':>10} {'min':>9} {'first call':>10} "
            f"{'import':>7} {'peak MB':>12} {'tmp MB':>7} {'x numpy':>7} {'x best':>7} "
            f"{'x bound':>7} {'rel err':>8}")
    notes: list[str] = []
    for wid in ORDER:
        rows = [r for r in records if r["workload"] == wid]
        if not rows:
            continue
        mult, unit = _scale(wid)
        spec = WORKLOADS[wid]
        size = next((r["size"] for r in rows if r.get("size") is not None), None)
        bd = bounds.get(wid) or bound_for(wid, records, floors)
        b = bd.get("bound_s")
        lines.append("")
        lines.append(f"{wid} {spec.name} (size {size}; times in {unit}; bound "
                     f"{_fmt(b * mult if b else None)} {unit}{': ' + bd['why'] if bd.get('why') else ''})")
        lines.append(head)
        for r in rows:
            st = r.get("status", "?")
            ok = st == "OK"
            mem = r.get("mem_peak_bytes")
            mem_s = _fmt(mem / 2**20 if mem is not None else None, ".0f")
            if ok and r.get("mem_x_min"):
                mem_s += f" ({r['mem_x_min']:.2f}x)"
            tmp = r.get("mem_step_extra_bytes")
            tmp_s = _fmt(max(tmp, 0) / 2**20 if tmp is not None else None, ".0f")
            med = r.get("median_s") * mult if ok and r.get("median_s") else None
            best = r.get("min_s") * mult if ok and r.get("min_s") else None
            first = r.get("first_call_s")
            first_s = "-" if first is None else f"{first:.3f}s"
            lines.append(
                f"{wid:3} {r['impl']:15} {st:6} {_fmt(med):>10} {_fmt(best):>9} {first_s:>10} "
                f"{_fmt(r.get('import_s')):>7} {mem_s:>12} {tmp_s:>7} "
                f"{_fmt(r.get('x_numpy')):>7} {_fmt(r.get('x_best_peer')):>7} "
                f"{_fmt(r.get('x_bound')):>7} {_fmt(r.get('err'), '.1e'):>8}")
            if r.get("reason"):
                notes.append(f"{wid} {r['impl']}: {st}: {r['reason']}")
            if r.get("backend"):
                notes.append(f"{wid} {r['impl']}: backend: {r['backend']}")
            if r.get("notes"):
                notes.append(f"{wid} {r['impl']}: note: {r['notes']}")
    w6 = [r for r in records if r["workload"] == "W6"]
    if w6:
        lines.append("")
        lines.append("W6 compile (first call of W3 in a fresh process, seconds; +imp = import + first call)")
        lines.append(f"{'':3} {'implementation':15} {'status':6} {'cold cache':>10} "
                     f"{'warm cache':>10} {'import':>7} {'cold+imp':>8} {'warm+imp':>8}")
        for r in w6:
            lines.append(f"W6  {r['impl']:15} {r.get('status', '?'):6} "
                         f"{_fmt(r.get('cold_first_call_s'), '.3f'):>10} "
                         f"{_fmt(r.get('warm_first_call_s'), '.3f'):>10} "
                         f"{_fmt(r.get('import_s'), '.2f'):>7} "
                         f"{_fmt(r.get('cold_total_s'), '.3f'):>8} "
                         f"{_fmt(r.get('warm_total_s'), '.3f'):>8}")
            if r.get("reason"):
                notes.append(f"W6 {r['impl']}: {r.get('status')}: {r['reason']}")
    if notes:
        lines.append("")
        lines.append("notes:")
        lines.extend("  " + n for n in notes)
    lines.append("")
    lines.append("x best = / fastest OK peer (numpy, autograd, torch, torch.compile, jax, jax.jit, mxnet);"
                 " x bound = / the lower bound: minimal traffic at the best measured bandwidth (W1, W2),"
                 " the GEMMs alone (W3, W9c), or the fastest correct row where that beat the floor;"
                 " every OK row's timed results were checked against float64 (W3/W7/W8: a timed step"
                 " from the parameters before it; others: the last timed step or calls);"
                 " peak MB = peak RSS in the timed steps - RSS before the data (x = / inputs+params+grads);"
                 " tmp MB = per-step transients (peak - RSS before the timed steps);"
                 " rel err = max|got-ref|/max|ref| vs float64.")
    return "\n".join(lines)


def write_json(path: str, doc: dict[str, Any]) -> None:
    """All records, floors and metadata as one JSON document."""
    with open(path, "w") as fh:
        json.dump(doc, fh, indent=1, default=float)


def write_png(path: str, records: list[dict[str, Any]], floors: dict[str, Any]) -> Optional[str]:
    """A bar chart per workload (log time) with the bound marked; returns why not, if not."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        return f"matplotlib not installed ({e}); pip install -e '.[bench]'"
    panels = [w for w in ORDER if any(r["workload"] == w for r in records)]
    w6 = [r for r in records if r["workload"] == "W6" and r.get("status") == "OK"]
    n = len(panels) + (1 if w6 else 0)
    if n == 0:
        return "nothing to plot"
    fig, axes = plt.subplots(n, 1, figsize=(8, 2.2 * n + 0.5), squeeze=False)
    for ax, wid in zip(axes[:, 0], panels):
        mult, unit = _scale(wid)
        rows = [r for r in records if r["workload"] == wid]
        names = [r["impl"] for r in rows]
        vals = [r["median_s"] * mult if r.get("status") == "OK" and r.get("median_s") else 0.0
                for r in rows]
        colors = ["tab:orange" if r["impl"].startswith("tracegrad") else
                  ("tab:gray" if not BY_NAME[r["impl"]].peer else "tab:blue") for r in rows]
        ax.barh(names, vals, color=colors)
        for i, r in enumerate(rows):
            if r.get("status") != "OK":
                ax.text(0.01, i, r.get("status", "?"), va="center", transform=ax.get_yaxis_transform())
            elif vals[i] > 0:
                ax.text(vals[i], i, f" {vals[i]:.3g}", va="center", fontsize=7)
        b = bound_for(wid, records, floors).get("bound_s")
        if b:
            ax.axvline(b * mult, color="k", ls="--", lw=1, label="bound")
            ax.legend(loc="lower right", fontsize=7)
        if any(v > 0 for v in vals):
            ax.set_xscale("log")
        ax.set_title(f"{wid} {WORKLOADS[wid].name} — median step ({unit})", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.invert_yaxis()
    if w6:
        ax = axes[-1, 0]
        names = [r["impl"] for r in w6]
        ys = range(len(w6))
        ax.barh([y - 0.2 for y in ys], [r.get("cold_first_call_s") or 0 for r in w6], 0.4,
                label="cold cache")
        ax.barh([y + 0.2 for y in ys], [r.get("warm_first_call_s") or 0 for r in w6], 0.4,
                label="warm cache")
        ax.set_yticks(list(ys), names)
        ax.set_title("W6 first call of W3 (s)", fontsize=9)
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=7)
        ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
