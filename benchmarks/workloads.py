"""The workloads W1-W6 (../shared/bench/WORKLOADS.md): sizes, data, float64 references, checks.

Every implementation receives the same float32 data (fixed seeds) and returns its results as
a dict of numpy arrays under the key names below; `check` compares them with the float64
reference computed here before any time is trusted. Also imported inside the MXNet venv, so
it needs only numpy (any version >= 1.17).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

GELU_C = 0.7978845608
GELU_A = 0.044715
LR = 0.1
SEED = 0

# Sizes per preset. W3 is (batch, d_in, hidden, classes); W5 is the pool of fresh inputs.
SIZES: dict[str, dict[str, Any]] = {
    "full": {"W1": 1 << 24, "W2": 1 << 22, "W3": (256, 784, 512, 10), "W4": 64, "W5": 256},
    "quick": {"W1": 1 << 20, "W2": 1 << 18, "W3": (64, 784, 128, 10), "W4": 64, "W5": 64},
    "tiny": {"W1": 1 << 10, "W2": 1 << 10, "W3": (8, 16, 8, 10), "W4": 64, "W5": 16},
}


@dataclass(frozen=True)
class Workload:
    """One benchmark workload: what a step does, its data, reference and tolerances."""

    id: str
    name: str
    doc: str
    tol: dict[str, float]                 # normwise relative tolerance per result key
    check_after_first: bool = False       # the step mutates state (SGD): check step 1's results
    check_calls: int = 0                  # >0: collect this many (step, fetch) results (W5)
    warmup: int = 2
    min_bytes: Callable[[Any], int] | None = None  # minimal traffic == minimal memory (W1, W2)
    unit: str = "ms"
    keys: tuple[str, ...] = field(default=())


def _normal(rng: np.random.Generator, shape: Any, scale: float = 1.0) -> np.ndarray:
    out = rng.standard_normal(shape, dtype=np.float32)
    if scale != 1.0:
        out *= np.float32(scale)
    return out


def make_data(wid: str, size: Any, seed: int = SEED) -> dict[str, np.ndarray]:
    """The float32 inputs of one workload (labels int64), generated without float64 temporaries."""
    rng = np.random.default_rng(seed + int(wid[1:]))
    if wid == "W1":
        return {"x": _normal(rng, size)}
    if wid in ("W2", "W4"):
        return {"x": _normal(rng, size), "t": _normal(rng, size), "w": _normal(rng, size),
                "b": _normal(rng, size, 0.1)}
    if wid in ("W3", "W6"):
        batch, d_in, hidden, classes = size
        return {
            "X": _normal(rng, (batch, d_in)),
            "y": rng.integers(0, classes, size=batch).astype(np.int64),
            "W1": _normal(rng, (d_in, hidden), d_in ** -0.5),
            "b1": _normal(rng, hidden, 0.1),
            "W2": _normal(rng, (hidden, classes), hidden ** -0.5),
            "b2": _normal(rng, classes, 0.1),
        }
    if wid == "W5":
        return {"pool": rng.uniform(size=(size, 2)).astype(np.float32)}
    raise KeyError(f"unknown workload {wid!r}")


# ---- float64 references ------------------------------------------------------------------
def _ref_w1(d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"x_grad": 4.0 * d["x"].astype(np.float64)}


def _ref_w2(d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    x, t, w, b = (d[k].astype(np.float64) for k in ("x", "t", "w", "b"))
    z = x * w + b
    u = GELU_C * (z + GELU_A * z ** 3)
    th = np.tanh(u)
    h = 0.5 * z * (1.0 + th)
    dh = 0.5 * (1.0 + th) + 0.5 * z * (1.0 - th * th) * GELU_C * (1.0 + 3.0 * GELU_A * z * z)
    g = 2.0 * (h - t) / z.size * dh
    return {"loss": np.array(np.mean((h - t) ** 2)), "w_grad": g * x, "b_grad": g}


def _ref_w3(d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    X, W1, b1, W2, b2 = (d[k].astype(np.float64) for k in ("X", "W1", "b1", "W2", "b2"))
    y = d["y"]
    n = X.shape[0]
    h = np.tanh(X @ W1 + b1)
    logits = h @ W2 + b2
    m = logits.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
    logp = logits - lse
    loss = -logp[np.arange(n), y].mean()
    g = np.exp(logp)
    g[np.arange(n), y] -= 1.0
    g /= n
    gW2 = h.T @ g
    gb2 = g.sum(axis=0)
    gz = (g @ W2.T) * (1.0 - h * h)
    gW1 = X.T @ gz
    gb1 = gz.sum(axis=0)
    return {"loss": np.array(loss), "W1_grad": gW1, "b1_grad": gb1, "W2_grad": gW2,
            "b2_grad": gb2, "W1": W1 - LR * gW1, "b1": b1 - LR * gb1, "W2": W2 - LR * gW2,
            "b2": b2 - LR * gb2}


def cflow_ref(a: np.ndarray) -> tuple[float, np.ndarray]:
    """The tutorial's f(a) and dc/da in float64 for one input pair."""
    a = a.astype(np.float64)
    scale = 2.0
    b = a * 2
    while np.abs(b).sum() < 1000:
        b = b * 2
        scale *= 2.0
    grad = np.zeros(2)
    if b.sum() >= 0:
        grad[0] = scale
        return float(b[0]), grad
    grad[1] = scale
    return float(b[1]), grad


def _ref_w5(got: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    cs, gs = zip(*(cflow_ref(a) for a in got["a"]))
    return {"a": got["a"].astype(np.float64), "c": np.array(cs), "a_grad": np.stack(gs)}


def reference(wid: str, data: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The float64 reference results (W5 needs the inputs each call used: `got['a']`)."""
    if wid == "W1":
        return _ref_w1(data)
    if wid in ("W2", "W4"):
        return _ref_w2(data)
    if wid in ("W3", "W6"):
        return _ref_w3(data)
    if wid == "W5":
        return _ref_w5(got)
    raise KeyError(wid)


def check(wid: str, got: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> tuple[bool, float, str]:
    """(ok, worst normwise relative error, message) of `got` against the float64 reference."""
    tol = WORKLOADS[wid].tol
    worst = 0.0
    problems = []
    for key, want in ref.items():
        if key not in got:
            problems.append(f"{key}: missing")
            continue
        have = np.asarray(got[key], dtype=np.float64)
        if have.shape != want.shape:
            problems.append(f"{key}: shape {have.shape} != {want.shape}")
            continue
        if not np.all(np.isfinite(have)):
            problems.append(f"{key}: non-finite values")
            continue
        denom = max(float(np.max(np.abs(want))) if want.size else 0.0, 1e-30)
        err = float(np.max(np.abs(have - want))) / denom if want.size else 0.0
        worst = max(worst, err)
        limit = tol.get(key, tol["*"])
        if err > limit:
            problems.append(f"{key}: rel err {err:.2e} > {limit:.0e}")
    return (not problems), worst, "; ".join(problems)


def _w1_bytes(n: int) -> int:
    return 2 * 4 * n  # read x, write x.grad


def _w2_bytes(n: int) -> int:
    return 6 * 4 * n  # read x, t, w, b; write w.grad, b.grad


WORKLOADS: dict[str, Workload] = {
    "W1": Workload("W1", "square", "x[n]; y = 2*x*x; y.backward(); x.grad", {"*": 1e-6},
                   min_bytes=_w1_bytes),
    "W2": Workload("W2", "gelu_mse", "z = x*w+b; tanh-GELU; mse vs t; grads of w, b",
                   {"*": 1e-4, "loss": 1e-5}, min_bytes=_w2_bytes),
    "W3": Workload("W3", "mlp", "tanh MLP 784-512-10, softmax xent, grads + SGD",
                   {"*": 1e-4, "loss": 1e-5}, check_after_first=True),
    "W4": Workload("W4", "tiny", "W2 with n=64 (overhead)", {"*": 1e-4, "loss": 1e-5},
                   unit="us"),
    "W5": Workload("W5", "cflow", "tutorial f(a), fresh a each call, dc/da", {"*": 1e-6},
                   check_calls=16, warmup=64, unit="us"),
    "W6": Workload("W6", "compile", "first call of W3 in a fresh process: empty/warm cache",
                   {"*": 1e-4, "loss": 1e-5}, check_after_first=True),
}
