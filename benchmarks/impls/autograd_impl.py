"""HIPS autograd: numpy code differentiated by tracing boxes at run time."""

from __future__ import annotations

from typing import Any

import numpy as onp

from ..common import Skipped
from ..workloads import GELU_A, GELU_C, LR
from ._base import Pool, Step

ag: Any = None
anp: Any = None


def setup(mode: str) -> None:
    """Import autograd (SKIP when absent)."""
    global ag, anp
    try:
        import autograd as _ag
        import autograd.numpy as _anp
    except ImportError as e:
        raise Skipped(f"autograd not installed ({e}); pip install autograd") from e
    ag, anp = _ag, _anp


def _w1(d: dict[str, onp.ndarray]) -> Step:
    x = d["x"]
    grad = ag.grad(lambda x: anp.sum(2.0 * x * x))
    out: dict[str, Any] = {}

    def step() -> None:
        out["x_grad"] = grad(x)

    return Step(step, lambda: {"x_grad": out["x_grad"]})


def _gelu_mse(w: Any, b: Any, x: Any, t: Any) -> Any:
    z = x * w + b
    h = 0.5 * z * (1.0 + anp.tanh(GELU_C * (z + GELU_A * z ** 3)))
    return anp.mean((h - t) ** 2)


def _w2(d: dict[str, onp.ndarray]) -> Step:
    x, t, w, b = d["x"], d["t"], d["w"], d["b"]
    vg = ag.value_and_grad(lambda p: _gelu_mse(p[0], p[1], x, t))
    out: dict[str, Any] = {}

    def step() -> None:
        loss, (gw, gb) = vg((w, b))
        out.update(loss=loss, w_grad=gw, b_grad=gb)

    return Step(step, lambda: {k: onp.asarray(out[k]) for k in ("loss", "w_grad", "b_grad")})


def _mlp_loss(p: dict[str, Any], X: Any, y: Any) -> Any:
    h = anp.tanh(anp.dot(X, p["W1"]) + p["b1"])
    logits = anp.dot(h, p["W2"]) + p["b2"]
    m = anp.max(logits, axis=1, keepdims=True)
    logp = logits - m - anp.log(anp.sum(anp.exp(logits - m), axis=1, keepdims=True))
    return -anp.mean(logp[onp.arange(X.shape[0]), y])


def _w3(d: dict[str, onp.ndarray]) -> Step:
    X, y = d["X"], d["y"]
    params = {k: d[k] for k in ("W1", "b1", "W2", "b2")}
    vg = ag.value_and_grad(_mlp_loss)
    out: dict[str, Any] = {}

    def step() -> None:
        loss, grads = vg(params, X, y)
        for k, p in params.items():
            p -= LR * grads[k]
        out.update(loss=loss, grads=grads)

    def fetch() -> dict[str, onp.ndarray]:
        res = {k + "_grad": onp.array(v) for k, v in out["grads"].items()}
        res.update({k: v.copy() for k, v in params.items()})
        res["loss"] = onp.asarray(out["loss"])
        return res

    return Step(step, fetch)


def _f(a: Any) -> Any:
    b = a * 2
    while anp.sum(anp.abs(b)) < 1000:
        b = b * 2
    if anp.sum(b) >= 0:
        return b[0]
    return b[1]


def _w5(d: dict[str, onp.ndarray]) -> Step:
    pool = Pool(d["pool"])
    vg = ag.value_and_grad(_f)
    out: dict[str, Any] = {}

    def step() -> None:
        a = pool.next()
        c, g = vg(a)
        out.update(a=a, c=c, a_grad=g)

    return Step(step, lambda: {k: onp.asarray(out[k]) for k in ("a", "c", "a_grad")})


def make(mode: str, wid: str, data: dict[str, onp.ndarray], size: Any) -> Step:
    """The HIPS autograd step for workload `wid`."""
    return {"W1": _w1, "W2": _w2, "W4": _w2, "W3": _w3, "W5": _w5}[wid](data)
