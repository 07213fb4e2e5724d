"""tracegrad: the tutorial's code through the record scope, and through `tracegrad.jit`.

The compile cache goes to BENCH_CACHE_DIR/tracegrad (TRACEGRAD_CACHE_DIR), so every worker
starts cold unless the harness deliberately reuses a folder (W6 warm run).
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy

from ..common import NotApplicable, Skipped
from ..workloads import GELU_A, GELU_C, LR
from ._base import Pool, Step

tg: Any = None


def setup(mode: str) -> None:
    """Import tracegrad (cache under BENCH_CACHE_DIR); the jit mode SKIPs until it exists."""
    global tg
    cache = os.environ.get("BENCH_CACHE_DIR")
    if cache:
        os.environ["TRACEGRAD_CACHE_DIR"] = os.path.join(cache, "tracegrad")
    try:
        import tracegrad
    except ImportError as e:
        raise Skipped(f"tracegrad not importable ({e})") from e
    tg = tracegrad
    tg.npx.set_np()
    if mode == "jit" and not hasattr(tg, "jit"):
        raise Skipped("tracegrad.jit does not exist yet (issue 4)")


def _gelu_mse(np: Any, x: Any, t: Any, w: Any, b: Any) -> Any:
    z = x * w + b
    h = 0.5 * z * (1 + np.tanh(GELU_C * (z + GELU_A * z ** 3)))
    return np.mean((h - t) ** 2)


def _bodies(wid: str, d: dict[str, numpy.ndarray], out: dict[str, Any]) -> tuple[Callable, tuple, Callable]:
    """(step body, its array arguments, fetch) written as a user would write the tutorial.

    The step stores the body's return value in out["ret"]; fetch reads it from there.
    """
    np, npx, autograd = tg.np, tg.npx, tg.autograd
    if wid == "W1":
        x = np.array(d["x"])
        x.attach_grad()

        def w1(x: Any) -> None:
            with autograd.record():
                y = 2 * x * x
            y.backward()

        return w1, (x,), lambda: {"x_grad": x.grad.asnumpy()}
    if wid in ("W2", "W4"):
        x, t, w, b = (np.array(d[k]) for k in ("x", "t", "w", "b"))
        w.attach_grad()
        b.attach_grad()

        def w2(x: Any, t: Any, w: Any, b: Any) -> Any:
            with autograd.record():
                loss = _gelu_mse(np, x, t, w, b)
            loss.backward()
            return loss

        def fetch2() -> dict[str, numpy.ndarray]:
            return {"loss": out["ret"].asnumpy(), "w_grad": w.grad.asnumpy(),
                    "b_grad": b.grad.asnumpy()}

        return w2, (x, t, w, b), fetch2
    if wid == "W3":
        X, y = np.array(d["X"]), np.array(d["y"], dtype=numpy.int64)
        names = ("W1", "b1", "W2", "b2")
        ps = [np.array(d[k]) for k in names]
        for p in ps:
            p.attach_grad()

        def w3(X: Any, y: Any, W1: Any, b1: Any, W2: Any, b2: Any) -> Any:
            with autograd.record():
                h = np.tanh(np.dot(X, W1) + b1)
                logits = np.dot(h, W2) + b2
                loss = -npx.pick(npx.log_softmax(logits), y).mean()
            loss.backward()
            for p in (W1, b1, W2, b2):
                p -= LR * p.grad
            return loss

        def fetch3() -> dict[str, numpy.ndarray]:
            res = {k + "_grad": p.grad.asnumpy() for k, p in zip(names, ps)}
            res.update({k: p.asnumpy() for k, p in zip(names, ps)})
            res["loss"] = out["ret"].asnumpy()
            return res

        return w3, (X, y, *ps), fetch3

    from tracegrad.examples import tutorial_f  # the tutorial's f(a)

    def w5(a: Any) -> Any:
        with autograd.record():
            c = tutorial_f(a)
        c.backward()
        return c

    return w5, (), lambda: {}


def make(mode: str, wid: str, data: dict[str, numpy.ndarray], size: Any) -> Step:
    """The tracegrad step for workload `wid` (mode 'record', 'jit' or 'gluon')."""
    if wid in ("W7", "W8", "W9", "W9c"):
        from . import tracegrad_nn

        return tracegrad_nn.make(tg, mode, wid, data, size, lambda fn: _backend(fn, mode))
    if mode == "gluon":
        raise NotApplicable("the Gluon rows are W7 and W8")
    out: dict[str, Any] = {}
    body, args, fetch = _bodies(wid, data, out)
    fn = tg.jit(body) if mode == "jit" else body
    backend = _backend(fn, mode)
    if wid != "W5":

        def step() -> None:
            out["ret"] = fn(*args)
            backend.started()

        return Step(step, fetch, notes=_notes(fn), backend=backend)
    pool = Pool(data["pool"])
    np = tg.np

    def step5() -> None:
        a = np.array(pool.next())
        a.attach_grad()
        out["a"], out["c"] = a, fn(a)
        backend.started()

    def fetch5() -> dict[str, numpy.ndarray]:
        return {"a": out["a"].asnumpy(), "c": out["c"].asnumpy(), "a_grad": out["a"].grad.asnumpy()}

    return Step(step5, fetch5, notes=_notes(fn), backend=backend)


class _backend:
    """Which back end ran the steps after the first call: for `tracegrad.jit`, each variant's
    (compiled or interpreter, from `JitFunction.variants`) and the fallback counter; for the
    record scope, the codegen counters of compiled and interpreted trace runs."""

    def __init__(self, fn: Any, mode: str) -> None:
        self.fn, self.mode, self.base, self.waited = fn, mode, None, False

    def _stats(self) -> dict[str, Any]:
        try:
            from tracegrad.codegen import stats
        except ImportError:
            return {}
        return stats()

    def started(self) -> None:
        """Called after each step: the counters' base after the first call; after the
        second, wait for background compiles (the first call's cold traces run interpreted
        while a child process compiles them), so that the timed steps run compiled."""
        if self.base is None:
            self.base = self._stats()
        elif not self.waited:
            self.waited = True
            try:
                from tracegrad.runtime.execute import wait_background
            except ImportError:
                return
            wait_background()

    def __call__(self) -> str:
        if self.mode in ("jit", "gluon") or hasattr(self.fn, "variants"):
            return jit_backend(self.fn)
        now, base = self._stats(), self.base or {}
        if not now:
            return "unknown (tracegrad.codegen.stats() not found)"
        comp = now.get("compiled_runs", 0) - base.get("compiled_runs", 0)
        interp = now.get("interpreted_runs", 0) - base.get("interpreted_runs", 0)
        falls = now.get("fallbacks", 0) - base.get("fallbacks", 0)
        return (f"after the first call: {comp} compiled and {interp} interpreted trace runs"
                + (f", {falls} fallbacks" if falls else ""))


def jit_backend(fn: Any) -> str:
    """'compiled' / 'interpret' per variant of a `tracegrad.jit` function, with its replays."""
    try:
        variants = list(fn.variants)
    except Exception as e:  # a diagnostic must not fail the benchmark
        return f"unknown ({type(e).__name__} reading variants)"
    kinds: dict[str, list[str]] = {}
    for v in variants:
        kinds.setdefault(str(getattr(v, "backend", "?")), []).append(
            f"#{getattr(v, 'number', '?')}:{getattr(v, 'replays', '?')} replays")
    counters = getattr(fn, "counters", None)
    falls = getattr(counters, "fallbacks", None)
    text = "; ".join(f"{k}: {len(v)} variant(s) ({', '.join(v[:4])}{', ...' if len(v) > 4 else ''})"
                     for k, v in sorted(kinds.items())) or "no variants"
    return text + (f"; fallbacks {falls}" if falls else "")


def _notes(fn: Any) -> Callable[[], str]:
    """Counters the jit exposes (if any), read after the run."""
    def notes() -> str:
        for attr in ("stats", "counters", "explain"):
            value = getattr(fn, attr, None)
            if value is None:
                continue
            try:
                value = value() if callable(value) else value
            except Exception as e:  # a diagnostic must not fail the benchmark
                return f"{attr}() raised {type(e).__name__}"
            return f"{attr}: {str(value)[:200]}"
        return ""

    return notes
