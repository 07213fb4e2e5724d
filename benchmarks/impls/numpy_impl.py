"""numpy with hand-written gradients: the baseline every ratio is taken against."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..common import NotApplicable
from ..workloads import GELU_A, GELU_C, LR
from ._base import Pool, Step


def setup(mode: str) -> None:
    """numpy is already imported; its BLAS threads come from the environment."""


def _w1(d: dict[str, np.ndarray]) -> Step:
    x = d["x"]
    out: dict[str, Any] = {}

    def step() -> None:
        out["x_grad"] = 4.0 * x         # d(sum 2x^2)/dx; the forward y is never read, so not computed

    return Step(step, lambda: {"x_grad": out["x_grad"]})


def _w2(d: dict[str, np.ndarray]) -> Step:
    x, t, w, b = d["x"], d["t"], d["w"], d["b"]
    n = x.size
    out: dict[str, Any] = {}

    def step() -> None:
        z = x * w + b
        z2 = z * z
        th = np.tanh(GELU_C * (z + GELU_A * z * z2))
        h = 0.5 * z * (1.0 + th)
        r = h - t
        out["loss"] = np.mean(r * r)
        dh = 0.5 * (1.0 + th) + (0.5 * GELU_C) * z * (1.0 - th * th) * (1.0 + (3.0 * GELU_A) * z2)
        g = (2.0 / n) * r * dh
        out["w_grad"] = g * x
        out["b_grad"] = g

    return Step(step, lambda: {k: np.asarray(out[k]) for k in ("loss", "w_grad", "b_grad")})


def _w3(d: dict[str, np.ndarray]) -> Step:
    X, y = d["X"], d["y"]
    params = {k: d[k] for k in ("W1", "b1", "W2", "b2")}
    n = X.shape[0]
    rows = np.arange(n)
    out: dict[str, Any] = {}

    def step() -> None:
        W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
        h = np.tanh(X @ W1 + b1)
        logits = h @ W2 + b2
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        s = e.sum(axis=1, keepdims=True)
        out["loss"] = -(logits[rows, y] - np.log(s[:, 0])).mean()
        g = e / s
        g[rows, y] -= 1.0
        g /= n
        grads = {"W2": h.T @ g, "b2": g.sum(axis=0)}
        gz = (g @ W2.T) * (1.0 - h * h)
        grads["W1"] = X.T @ gz
        grads["b1"] = gz.sum(axis=0)
        for k, p in params.items():
            p -= LR * grads[k]
        out["grads"] = grads

    def fetch() -> dict[str, np.ndarray]:
        res = {k + "_grad": v.copy() for k, v in out["grads"].items()}
        res.update({k: v.copy() for k, v in params.items()})
        res["loss"] = np.asarray(out["loss"])
        return res

    return Step(step, fetch)


def _w5(d: dict[str, np.ndarray]) -> Step:
    pool = Pool(d["pool"])
    out: dict[str, Any] = {}

    def step() -> None:
        a = pool.next()
        b = a * 2
        scale = 2.0
        while np.abs(b).sum() < 1000:
            b = b * 2
            scale *= 2.0
        grad = np.zeros(2, np.float32)
        if b.sum() >= 0:
            c, grad[0] = b[0], scale
        else:
            c, grad[1] = b[1], scale
        out.update(a=a, c=c, a_grad=grad)

    return Step(step, lambda: {k: np.asarray(out[k]) for k in ("a", "c", "a_grad")})


def _w8(d: dict[str, np.ndarray]) -> Step:
    """The relu MLP's hand-written forward/backward (workloads_nn.mlp_grads, float32) and Adam."""
    from ..workloads_nn import BETA1, BETA2, EPS8, LR8, mlp_grads, w8_params

    names = w8_params()
    state = dict(d)
    m = {k: np.zeros_like(d[k]) for k in names}
    v = {k: np.zeros_like(d[k]) for k in names}
    out: dict[str, Any] = {"t": 0}
    b1, b2, one = np.float32(BETA1), np.float32(BETA2), np.float32(1.0)

    def step() -> None:
        g = mlp_grads(state)
        out["t"] += 1
        t = out["t"]
        c1, c2 = 1 - BETA1 ** t, 1 - BETA2 ** t
        lr, root = np.float32(LR8 / c1), np.float32(1 / np.sqrt(c2))
        for k in names:
            gk = g[k + "_grad"]
            m[k] *= b1
            m[k] += (one - b1) * gk
            v[k] *= b2
            v[k] += (one - b2) * gk * gk
            state[k] = state[k] - lr * m[k] / (np.sqrt(v[k]) * root + np.float32(EPS8))
        out["g"] = g

    def fetch() -> dict[str, np.ndarray]:
        res = {k: np.asarray(x) for k, x in out["g"].items()}
        res.update({k: state[k] for k in names})
        res["adam_mxnet_eps"] = np.asarray(0.0)
        return res

    return Step(step, fetch)


def make(mode: str, wid: str, data: dict[str, np.ndarray], size: Any) -> Step:
    """The hand-written numpy step for workload `wid` (W7, W9, W9c: N/A)."""
    if wid in ("W7", "W9", "W9c"):
        raise NotApplicable("numpy has no convolution or pooling; a hand-written im2col network "
                            "is not a numpy peer (W9c's floor is its GEMMs through numpy's BLAS)")
    return {"W1": _w1, "W2": _w2, "W4": _w2, "W3": _w3, "W5": _w5, "W8": _w8}[wid](data)
