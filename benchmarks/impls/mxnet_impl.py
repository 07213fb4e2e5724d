"""MXNet 2.0.0b1 (in its own venv, numpy < 1.24): eager autograd and hybridized Gluon blocks.

Runs under the venv made by benchmarks/mxnet_venv.sh; the harness starts the worker with that
venv's python. MXNet is asynchronous: every step ends with npx.waitall().
"""

from __future__ import annotations

from typing import Any

import numpy as onp

from ..common import NotApplicable, Skipped
from ..workloads import GELU_A, GELU_C, LR
from ._base import Pool, Step

mx: Any = None


def setup(mode: str) -> None:
    """Import mxnet (SKIP when absent)."""
    global mx
    try:
        import mxnet as _mx
    except ImportError as e:
        raise Skipped(f"mxnet not installed ({e}); see benchmarks/mxnet_venv.sh") from e
    mx = _mx
    mx.npx.set_np()


def _loss_fns() -> dict[str, Any]:
    np, npx = mx.np, mx.npx

    def w1(x: Any) -> Any:
        return 2 * x * x

    def w2(x: Any, t: Any, w: Any, b: Any) -> Any:
        z = x * w + b
        h = 0.5 * z * (1 + np.tanh(GELU_C * (z + GELU_A * z ** 3)))
        return np.mean((h - t) ** 2)

    def w3(X: Any, y: Any, W1: Any, b1: Any, W2: Any, b2: Any) -> Any:
        h = np.tanh(np.dot(X, W1) + b1)
        logits = np.dot(h, W2) + b2
        return -npx.pick(npx.log_softmax(logits), y).mean()

    def w5(a: Any) -> Any:
        b = a * 2
        while np.abs(b).sum() < 1000:
            b = b * 2
        if b.sum() >= 0:
            return b[0]
        return b[1]

    return {"W1": w1, "W2": w2, "W4": w2, "W3": w3, "W5": w5}


def _hybrid(fn: Any) -> Any:
    gluon = mx.gluon

    class Block(gluon.HybridBlock):
        def forward(self, *args: Any) -> Any:
            return fn(*args)

    block = Block()
    block.initialize()
    block.hybridize(static_alloc=True, static_shape=True)
    return block


def make(mode: str, wid: str, d: dict[str, onp.ndarray], size: Any) -> Step:
    """The MXNet step (mode 'eager' or 'hybrid') for workload `wid` (W7/W8: Gluon, hybridized)."""
    np, npx, autograd = mx.np, mx.npx, mx.autograd
    if wid in ("W7", "W8"):
        from . import gluon_steps

        if mode != "hybrid":
            raise NotApplicable("W7/W8 are measured hybridized (the mxnet.hybrid row)")
        return gluon_steps.make(mx, wid, d, sync=npx.waitall,
                                hybridize={"static_alloc": True, "static_shape": True})
    fn = _loss_fns()[wid]
    if mode == "hybrid":
        if wid == "W5":
            raise NotApplicable("hybridize cannot trace the data-dependent while/if of f(a)")
        fn = _hybrid(fn)
    out: dict[str, Any] = {}
    if wid == "W5":
        pool = Pool(d["pool"])

        def step5() -> None:
            a = np.array(pool.next())
            a.attach_grad()
            with autograd.record():
                c = fn(a)
            c.backward()
            npx.waitall()
            out.update(a=a, c=c)

        return Step(step5, lambda: {"a": out["a"].asnumpy(), "c": out["c"].asnumpy(),
                                    "a_grad": out["a"].grad.asnumpy()})
    order = {"W1": ("x",), "W2": ("x", "t", "w", "b"), "W4": ("x", "t", "w", "b"),
             "W3": ("X", "y", "W1", "b1", "W2", "b2")}[wid]
    args = [np.array(d[k], dtype=d[k].dtype) for k in order]
    grad_of = {"W1": ("x",), "W2": ("w", "b"), "W4": ("w", "b"),
               "W3": ("W1", "b1", "W2", "b2")}[wid]
    var = {k: a for k, a in zip(order, args)}
    for k in grad_of:
        var[k].attach_grad()

    def step() -> None:
        with autograd.record():
            res = fn(*args)
        res.backward()
        if wid == "W3":
            for k in grad_of:
                var[k][:] = var[k] - LR * var[k].grad
        npx.waitall()
        out["res"] = res

    def fetch() -> dict[str, onp.ndarray]:
        got = {k + "_grad": var[k].grad.asnumpy() for k in grad_of}
        if wid != "W1":
            got["loss"] = out["res"].asnumpy()
        if wid == "W3":
            got.update({k: var[k].asnumpy() for k in grad_of})
        return got

    return Step(step, fetch)
