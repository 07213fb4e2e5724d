"""Hand-written numba.njit(parallel=True) fused kernels (matmuls through numpy's BLAS)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..common import Skipped
from ..workloads import LR
from ._base import Pool, Step

K: Any = None


def setup(mode: str) -> None:
    """Import numba and the kernels; their disk cache goes to BENCH_CACHE_DIR when set."""
    global K
    cache = os.environ.get("BENCH_CACHE_DIR")
    if cache:
        os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(cache, "numba"))
    try:
        from . import _numba_kernels
    except ImportError as e:
        raise Skipped(f"numba not importable ({e})") from e
    K = _numba_kernels


def _w3(d: dict[str, np.ndarray]) -> Step:
    X, y = d["X"], d["y"]
    ps = {k: d[k] for k in ("W1", "b1", "W2", "b2")}
    n, hidden, classes = X.shape[0], ps["W1"].shape[1], ps["W2"].shape[1]
    h = np.empty((n, hidden), np.float32)
    logits = np.empty((n, classes), np.float32)
    g = np.empty_like(logits)
    gh = np.empty_like(h)
    grads = {k: np.empty_like(v) for k, v in ps.items()}
    out: dict[str, Any] = {}
    lr = np.float32(LR)

    def step() -> None:
        np.matmul(X, ps["W1"], out=h)
        K.bias_tanh(h, ps["b1"])
        np.matmul(h, ps["W2"], out=logits)
        out["loss"] = K.softmax_xent(logits, ps["b2"], y, g, grads["b2"])
        np.matmul(h.T, g, out=grads["W2"])
        np.matmul(g, ps["W2"].T, out=gh)
        K.tanh_back(gh, h, grads["b1"])
        np.matmul(X.T, gh, out=grads["W1"])
        for k, p in ps.items():
            K.sgd(p.reshape(-1), grads[k].reshape(-1), lr)

    def fetch() -> dict[str, np.ndarray]:
        res = {k + "_grad": v.copy() for k, v in grads.items()}
        res.update({k: v.copy() for k, v in ps.items()})
        res["loss"] = np.asarray(out["loss"])
        return res

    return Step(step, fetch)


def make(mode: str, wid: str, d: dict[str, np.ndarray], size: Any) -> Step:
    """The fused-kernel step for workload `wid`."""
    out: dict[str, Any] = {}
    if wid == "W1":
        x = d["x"]
        gx = np.empty_like(x)
        return Step(lambda: K.square_grad(x, gx), lambda: {"x_grad": gx})
    if wid in ("W2", "W4"):
        x, t, w, b = d["x"], d["t"], d["w"], d["b"]
        gw, gb = np.empty_like(w), np.empty_like(b)
        kernel = K.gelu_mse_par if wid == "W2" else K.gelu_mse_ser

        def step() -> None:
            out["loss"] = kernel(x, t, w, b, gw, gb)

        return Step(step, lambda: {"loss": np.asarray(out["loss"]), "w_grad": gw, "b_grad": gb})
    if wid == "W3":
        return _w3(d)
    pool = Pool(d["pool"])

    def step5() -> None:
        a = pool.next()
        c, g0, g1 = K.cflow(a)
        out.update(a=a, c=c, g=(g0, g1))

    return Step(step5, lambda: {"a": out["a"], "c": np.asarray(out["c"]),
                                "a_grad": np.asarray(out["g"], np.float32)})
