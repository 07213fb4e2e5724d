"""tracegrad on the layer workloads, written against MXNet 2.x's API as a user would.

W7 twice: plain `np`/`npx` ops (npx.convolution, npx.pooling, npx.fully_connected) with the
SGD update in the step, under `tracegrad.jit` (mode 'jit'); and the Gluon step of
benchmarks.impls.gluon_steps, hybridized, the step under `tracegrad.jit` (mode 'gluon', also
W8). W9 and W9c through the record scope (mode 'record') and under `tracegrad.jit`. A row
whose API is not there yet (the ops of issue 9, tracegrad.gluon of issue 10) is SKIP with
what is missing.
"""

from __future__ import annotations

import importlib
from types import SimpleNamespace
from typing import Any, Callable

import numpy

from ..common import NotApplicable, Skipped
from ..workloads_nn import BN_EPS, LR7, w7_params, w9_params
from ._base import Step

NPX_OPS = {"W7": ("convolution", "pooling", "fully_connected", "relu", "log_softmax", "pick"),
           "W9": ("convolution", "batch_norm", "relu"), "W9c": ("convolution",)}


def require(tg: Any, mode: str, wid: str) -> None:
    """Skipped naming what is missing when the API this row needs is not there."""
    if mode == "gluon":
        try:
            gluon = importlib.import_module("tracegrad.gluon")
        except ImportError as e:
            raise Skipped(f"tracegrad.gluon not available ({e}; issue 10)") from e
        needs = ["nn.HybridSequential", "nn.Dense", "loss.SoftmaxCrossEntropyLoss", "Trainer"]
        if wid == "W7":
            needs += ["nn.Conv2D", "nn.MaxPool2D"]
        for path in needs:
            obj: Any = gluon
            for part in path.split("."):
                obj = getattr(obj, part, None)
            if obj is None:
                raise Skipped(f"tracegrad.gluon.{path} not available (issue 10)")
        return
    for op in NPX_OPS[wid]:
        if not hasattr(tg.npx, op):
            raise Skipped(f"npx.{op} not available (issue 9)")


def make(tg: Any, mode: str, wid: str, d: dict[str, numpy.ndarray], size: Any,
         backend_of: Callable[[Any], Any]) -> Step:
    """The tracegrad step for W7, W8, W9 or W9c; `backend_of(fn)` reports its back end."""
    if mode == "gluon" and wid not in ("W7", "W8"):
        raise NotApplicable("the Gluon rows are W7 and W8")
    if mode != "gluon" and wid == "W8":
        raise NotApplicable("W8 is the Gluon MLP (the tracegrad.gluon row)")
    if wid == "W7" and mode == "record":
        raise NotApplicable("W7's plain-ops form is measured under tracegrad.jit")
    require(tg, mode, wid)
    if mode == "gluon":
        from . import gluon_steps

        mx = SimpleNamespace(np=tg.np, npx=tg.npx, gluon=importlib.import_module("tracegrad.gluon"),
                             autograd=tg.autograd)
        st = gluon_steps.make(mx, wid, d, wrap=tg.jit, hybridize={"static_alloc": True, "static_shape": True})
        gbackend = backend_of(st.fn)
        inner = st.step

        def gstep() -> None:
            inner()
            gbackend.started()

        st.step, st.backend = gstep, gbackend
        return st
    np = tg.np
    body, names, consts = _body(tg, wid, size)
    params = [np.array(d[k]) for k in names]
    for p in params:
        p.attach_grad()
    args = [np.array(d[k]) for k in consts]
    fn = tg.jit(body) if mode == "jit" else body
    out: dict[str, Any] = {}
    backend = backend_of(fn)

    def step() -> None:
        out["loss"] = fn(*args, *params)
        backend.started()

    def fetch() -> dict[str, numpy.ndarray]:
        res = {k + "_grad": p.grad.asnumpy() for k, p in zip(names, params)}
        if wid == "W7":
            res.update({k: p.asnumpy() for k, p in zip(names, params)})
        res["loss"] = out["loss"].asnumpy()
        return res

    return Step(step, fetch, backend=backend)


def _body(tg: Any, wid: str, size: Any) -> tuple[Callable, list[str], list[str]]:
    """(step body, parameter names, constant input names) in MXNet 2.x np/npx code
    (npx.fully_connected's no_bias defaults to True in MXNet 2.0: the bias is passed with
    no_bias=False, as Gluon's Dense does)."""
    np, npx, autograd = tg.np, tg.npx, tg.autograd
    if wid == "W7":
        def lenet(X: Any, y: Any, c1w: Any, c1b: Any, c2w: Any, c2b: Any, f1w: Any, f1b: Any,
                  f2w: Any, f2b: Any, f3w: Any, f3b: Any) -> Any:
            with autograd.record():
                h = npx.convolution(X, c1w, c1b, kernel=(5, 5), stride=(1, 1), pad=(2, 2), num_filter=6)
                h = npx.pooling(npx.relu(h), kernel=(2, 2), stride=(2, 2), pool_type="max")
                h = npx.convolution(h, c2w, c2b, kernel=(5, 5), stride=(1, 1), pad=(0, 0), num_filter=16)
                h = npx.pooling(npx.relu(h), kernel=(2, 2), stride=(2, 2), pool_type="max")
                h = npx.relu(npx.fully_connected(h, f1w, f1b, num_hidden=120, no_bias=False))
                h = npx.relu(npx.fully_connected(h, f2w, f2b, num_hidden=84, no_bias=False))
                logits = npx.fully_connected(h, f3w, f3b, num_hidden=10, no_bias=False)
                loss = -npx.pick(npx.log_softmax(logits), y).mean()
            loss.backward()
            for p in (c1w, c1b, c2w, c2b, f1w, f1b, f2w, f2b, f3w, f3b):
                p -= LR7 * p.grad
            return loss

        return lenet, w7_params(), ["X", "y"]
    if wid == "W9":
        blocks, ch = size[3], size[1]
        stats = [(np.zeros(ch), np.ones(ch)) for _ in range(2 * blocks)]

        def resblocks(x: Any, t: Any, *p: Any) -> Any:
            with autograd.record():
                h = x
                for i in range(blocks):
                    c1, g1, b1, c2, g2, b2 = p[6 * i:6 * i + 6]
                    (m1, v1), (m2, v2) = stats[2 * i], stats[2 * i + 1]
                    z = npx.convolution(h, c1, None, kernel=(3, 3), pad=(1, 1), num_filter=ch, no_bias=True)
                    z = npx.relu(npx.batch_norm(z, g1, b1, m1, v1, eps=BN_EPS, fix_gamma=False))
                    z = npx.convolution(z, c2, None, kernel=(3, 3), pad=(1, 1), num_filter=ch, no_bias=True)
                    z = npx.batch_norm(z, g2, b2, m2, v2, eps=BN_EPS, fix_gamma=False)
                    h = npx.relu(z + h)
                loss = np.mean((h - t) ** 2)
            loss.backward()
            return loss

        return resblocks, w9_params(size), ["x", "t"]
    ch = size[1]

    def conv(t: Any, x: Any, w: Any) -> Any:
        with autograd.record():
            y = npx.convolution(x, w, None, kernel=(3, 3), pad=(1, 1), num_filter=ch, no_bias=True)
            loss = np.mean((y - t) ** 2)
        loss.backward()
        return loss

    return conv, ["x", "w"], ["t"]
