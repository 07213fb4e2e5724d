"""The workloads W1-W9 (../shared/bench/WORKLOADS.md): sizes, data, float64 references, checks.

Every implementation receives the same float32 data (fixed seeds) and returns its results as
a dict of numpy arrays under the key names below; `check` compares them with the float64
reference computed here before any time is trusted (W7-W9: benchmarks.workloads_nn). Also
imported inside the MXNet venv, so it needs only numpy (any version >= 1.17).

Training steps (W3, W7, W8: `Workload.params` names what the step updates) are checked on a
timed step: the worker fetches the parameters before it, and `reference` recomputes that
step in float64 from them (`with_params`); `history` holds the results of the steps before,
for optimizers with state (Adam).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np

from . import nn_ref, workloads_nn

GELU_C = 0.7978845608
GELU_A = 0.044715
LR = 0.1
SEED = 0

# Sizes per preset. W3 is (batch, d_in, hidden, classes); W5 is the pool of fresh inputs.
# W7 is the batch; W8 (batch, d_in, hidden, classes); W9 (batch, channels, height=width,
# blocks); W9c the convolution of W9's shape.
SIZES: dict[str, dict[str, Any]] = {
    "full": {"W1": 1 << 24, "W2": 1 << 22, "W3": (256, 784, 512, 10), "W4": 64, "W5": 256,
             "W7": 256, "W8": (128, 784, 256, 10), "W9": (32, 64, 16, 4), "W9c": (32, 64, 16)},
    "quick": {"W1": 1 << 20, "W2": 1 << 18, "W3": (64, 784, 128, 10), "W4": 64, "W5": 64,
              "W7": 32, "W8": (32, 784, 256, 10), "W9": (8, 16, 8, 2), "W9c": (8, 16, 8)},
    "tiny": {"W1": 1 << 10, "W2": 1 << 10, "W3": (8, 16, 8, 10), "W4": 64, "W5": 16,
             "W7": 4, "W8": (4, 24, 16, 10), "W9": (2, 4, 6, 1), "W9c": (2, 4, 6)},
}


@dataclass(frozen=True)
class Workload:
    """One benchmark workload: what a step does, its data, reference and tolerances."""

    id: str
    name: str
    doc: str
    tol: dict[str, float]                 # normwise relative tolerance per result key
    params: Optional[Callable[[Any], list[str]]] = None  # what a training step updates
    check_calls: int = 0                  # >0: collect this many (step, fetch) results (W5)
    warmup: int = 2
    min_bytes: Callable[[Any], int] | None = None  # minimal traffic == minimal memory (W1, W2)
    unit: str = "ms"
    keys: tuple[str, ...] = field(default=())

    @property
    def stateful(self) -> bool:
        """The step updates parameters (each step starts where the last one left them)."""
        return self.params is not None


def _normal(rng: np.random.Generator, shape: Any, scale: float = 1.0) -> np.ndarray:
    out = rng.standard_normal(shape, dtype=np.float32)
    if scale != 1.0:
        out *= np.float32(scale)
    return out


def make_data(wid: str, size: Any, seed: int = SEED) -> dict[str, np.ndarray]:
    """The float32 inputs of one workload (labels int64), generated without float64 temporaries."""
    rng = np.random.default_rng(seed + int(wid[1:].rstrip("c")) + (100 if wid.endswith("c") else 0))
    if wid in ("W7", "W8", "W9", "W9c"):
        return workloads_nn.make_data(wid, size, rng)
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
    h = np.tanh(X @ W1 + b1)
    loss, g = nn_ref.softmax_xent(h @ W2 + b2, d["y"])
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


def with_params(data: dict[str, np.ndarray], state: dict[str, np.ndarray],
                names: Sequence[str]) -> dict[str, np.ndarray]:
    """`data` with the parameters `names` taken from `state` (a fetched result)."""
    out = dict(data)
    for k in names:
        out[k] = np.asarray(state[k])
    return out


def reference(wid: str, data: dict[str, np.ndarray], got: dict[str, np.ndarray],
              history: Sequence[dict[str, np.ndarray]] = ()) -> dict[str, np.ndarray]:
    """The float64 reference results of one step on `data` (W5 needs the inputs each call
    used: `got['a']`; W8 the implementation's gradients of the steps before: `history`)."""
    if wid in ("W7", "W8", "W9", "W9c"):
        return workloads_nn.reference(wid, data, got, history)
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


def _w3_params(size: Any) -> list[str]:
    return ["W1", "b1", "W2", "b2"]


# The gate on every gradient, loss and updated parameter: normwise relative error 1e-5 against
# float64 (W1 and W5 are exact in float32 up to rounding: 1e-6).
TOL = {"*": 1e-5}
# W7's conv1 weight gradient sums 256*28*28 = 200,704 products per element: float32 rounding
# alone reaches sqrt(K) * 2^-24 ~ 2.7e-5 of it (PyTorch eager measured 4e-6 at step 1 and
# 9.5e-6 at step 4), so its convolution gradients are gated at 3e-5; everything else at 1e-5.
TOL_W7 = {"*": 1e-5, "conv1_weight_grad": 3e-5, "conv1_bias_grad": 3e-5,
          "conv2_weight_grad": 3e-5, "conv2_bias_grad": 3e-5}


WORKLOADS: dict[str, Workload] = {
    "W1": Workload("W1", "square", "x[n]; y = 2*x*x; y.backward(); x.grad", {"*": 1e-6},
                   min_bytes=_w1_bytes),
    "W2": Workload("W2", "gelu_mse", "z = x*w+b; tanh-GELU; mse vs t; grads of w, b",
                   TOL, min_bytes=_w2_bytes),
    "W3": Workload("W3", "mlp", "tanh MLP 784-512-10, softmax xent, grads + SGD",
                   TOL, params=_w3_params),
    "W4": Workload("W4", "tiny", "W2 with n=64 (overhead)", TOL, unit="us"),
    "W5": Workload("W5", "cflow", "tutorial f(a), fresh a each call, dc/da", {"*": 1e-6},
                   check_calls=16, warmup=64, unit="us"),
    "W6": Workload("W6", "compile", "first call of W3 in a fresh process: empty/warm cache",
                   TOL, params=_w3_params),
    "W7": Workload("W7", "lenet", "LeNet-5 step: conv-relu-pool x2, dense 120/84/10, xent, SGD 0.05",
                   TOL_W7, params=workloads_nn.w7_params),
    "W8": Workload("W8", "mlp_adam", "relu MLP 784-256-256-10, xent, Adam 1e-3",
                   TOL, params=workloads_nn.w8_params),
    "W9": Workload("W9", "resblocks", "4 ResNet basic blocks 64ch 16x16, mse, forward+backward",
                   TOL),
    "W9c": Workload("W9c", "conv", "W9's conv3x3 alone: mse, forward+backward (x and w grads)",
                    TOL),
}
