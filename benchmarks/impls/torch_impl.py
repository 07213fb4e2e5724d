"""PyTorch: eager autograd, and torch.compile of the whole step (backward included).

The compiled form differentiates with torch.func.grad_and_value inside the compiled function,
so dynamo/AOTAutograd/inductor see forward, backward and the SGD update as one program.
W5 compiles f itself (data-dependent loop and branch: dynamo graph-breaks) and backpropagates
eagerly through the compiled graphs, which is how a user would run it.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from ..common import THREADS, Skipped
from ..workloads import GELU_A, GELU_C, LR
from ._base import Pool, Step

torch: Any = None


def setup(mode: str) -> None:
    """Import torch with two threads; inductor's cache goes to BENCH_CACHE_DIR when set."""
    global torch
    cache = os.environ.get("BENCH_CACHE_DIR")
    if cache:
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(cache, "inductor"))
        os.environ.setdefault("TRITON_CACHE_DIR", os.path.join(cache, "triton"))
    try:
        import torch as _torch
    except ImportError as e:
        raise Skipped(f"torch not installed ({e}); pip install torch==2.13.0") from e
    torch = _torch
    threads = int(os.environ.get("BENCH_THREADS", THREADS))
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:
        pass  # already set by an earlier parallel op; harmless


def _t(a: np.ndarray) -> Any:
    return torch.from_numpy(a)


def _gelu_mse(w: Any, b: Any, x: Any, t: Any) -> Any:
    z = x * w + b
    h = 0.5 * z * (1.0 + torch.tanh(GELU_C * (z + GELU_A * z ** 3)))
    return ((h - t) ** 2).mean()


def _mlp_loss(W1: Any, b1: Any, W2: Any, b2: Any, X: Any, y: Any) -> Any:
    h = torch.tanh(X @ W1 + b1)
    return torch.nn.functional.cross_entropy(h @ W2 + b2, y)


def _f(a: Any) -> Any:
    b = a * 2
    while b.abs().sum() < 1000:
        b = b * 2
    if b.sum() >= 0:
        return b[0]
    return b[1]


# ---- eager ---------------------------------------------------------------------------------
def _eager(wid: str, d: dict[str, np.ndarray]) -> Step:
    out: dict[str, Any] = {}
    if wid == "W1":
        x = _t(d["x"]).requires_grad_()

        def step() -> None:
            x.grad = None
            (2 * x * x).sum().backward()

        return Step(step, lambda: {"x_grad": x.grad.numpy()})
    if wid in ("W2", "W4"):
        x, t = _t(d["x"]), _t(d["t"])
        w, b = _t(d["w"]).requires_grad_(), _t(d["b"]).requires_grad_()

        def step() -> None:
            w.grad = b.grad = None
            loss = _gelu_mse(w, b, x, t)
            loss.backward()
            out["loss"] = loss

        return Step(step, lambda: {"loss": out["loss"].detach().numpy(), "w_grad": w.grad.numpy(),
                                   "b_grad": b.grad.numpy()})
    if wid == "W3":
        X, y = _t(d["X"]), _t(d["y"])
        ps = {k: _t(d[k]).requires_grad_() for k in ("W1", "b1", "W2", "b2")}

        def step() -> None:
            for p in ps.values():
                p.grad = None
            loss = _mlp_loss(ps["W1"], ps["b1"], ps["W2"], ps["b2"], X, y)
            loss.backward()
            with torch.no_grad():
                for p in ps.values():
                    p.sub_(p.grad, alpha=LR)
            out["loss"] = loss

        def fetch() -> dict[str, np.ndarray]:
            res = {k + "_grad": p.grad.numpy().copy() for k, p in ps.items()}
            res.update({k: p.detach().numpy().copy() for k, p in ps.items()})
            res["loss"] = out["loss"].detach().numpy()
            return res

        return Step(step, fetch)
    return _w5(d, _f)


def _w5(d: dict[str, np.ndarray], f: Callable[[Any], Any]) -> Step:
    pool = Pool(d["pool"])
    out: dict[str, Any] = {}

    def step() -> None:
        a_np = pool.next()
        a = _t(a_np).requires_grad_()
        c = f(a)
        c.backward()
        out.update(a=a_np, c=c.detach().numpy(), a_grad=a.grad.numpy())

    return Step(step, lambda: dict(out))


# ---- torch.compile of the whole step -------------------------------------------------------
def _compiled(wid: str, d: dict[str, np.ndarray]) -> Step:
    func = torch.func
    out: dict[str, Any] = {}
    if wid == "W1":
        x = _t(d["x"])
        fn = torch.compile(func.grad(lambda x: (2 * x * x).sum()))

        def step() -> None:
            out["x_grad"] = fn(x)

        return Step(step, lambda: {"x_grad": out["x_grad"].numpy()})
    if wid in ("W2", "W4"):
        x, t, w, b = (_t(d[k]) for k in ("x", "t", "w", "b"))
        fn = torch.compile(func.grad_and_value(_gelu_mse, argnums=(0, 1)))

        def step() -> None:
            (gw, gb), loss = fn(w, b, x, t)
            out.update(loss=loss, w_grad=gw, b_grad=gb)

        return Step(step, lambda: {k: v.numpy() for k, v in out.items()})
    if wid == "W3":
        X, y = _t(d["X"]), _t(d["y"])
        names = ("W1", "b1", "W2", "b2")
        ps = [_t(d[k]) for k in names]
        gv = func.grad_and_value(_mlp_loss, argnums=(0, 1, 2, 3))

        @torch.compile
        def train_step(W1: Any, b1: Any, W2: Any, b2: Any, X: Any, y: Any) -> Any:
            grads, loss = gv(W1, b1, W2, b2, X, y)
            new = [p - LR * g for p, g in zip((W1, b1, W2, b2), grads)]
            return new, grads, loss

        def step() -> None:
            new, grads, loss = train_step(*ps, X, y)
            ps[:] = new
            out.update(grads=grads, loss=loss)

        def fetch() -> dict[str, np.ndarray]:
            res = {k + "_grad": g.numpy().copy() for k, g in zip(names, out["grads"])}
            res.update({k: p.numpy().copy() for k, p in zip(names, ps)})
            res["loss"] = out["loss"].numpy()
            return res

        return Step(step, fetch)
    step_obj = _w5(d, torch.compile(_f))
    counters = torch._dynamo.utils.counters
    step_obj.notes = lambda: (
        f"dynamo: {counters['stats'].get('unique_graphs', '?')} graphs, "
        f"{sum(counters['unimplemented'].values()) + sum(counters['graph_break'].values())} "
        "graph breaks (data-dependent while/if), backward through the compiled graphs")
    return step_obj


def make(mode: str, wid: str, data: dict[str, np.ndarray], size: Any) -> Step:
    """The torch step (eager or torch.compile) for workload `wid`."""
    if wid in ("W7", "W8", "W9", "W9c"):
        from . import torch_nn

        return torch_nn.make(torch, mode, wid, data, size)
    return _eager(wid, data) if mode == "eager" else _compiled(wid, data)
