"""Shared checks for Gluon layer tests: numpy-reference forward and finite-difference grads."""

from __future__ import annotations

from typing import Any, Optional

import numpy

from tracegrad import autograd, np
from tracegrad.test_utils import assert_almost_equal


def as64(block: Any, *inputs: Any) -> Any:
    """The block initialised and cast to float64 after a first forward on `inputs`."""
    block(*[np.array(x) for x in inputs])
    block.cast("float64")
    return block


def check_block_gradients(block: Any, x: numpy.ndarray, params: Optional[list] = None, eps: float = 1e-6,
                          rtol: float = 1e-5, atol: float = 1e-7, seed: int = 0, train: bool = False) -> None:
    """Gradients of sum(head * block(x)) w.r.t. x and each Parameter against central
    differences (float64; the block must already be float64)."""
    rng = numpy.random.RandomState(seed)
    x = numpy.array(x, dtype=numpy.float64)
    params = list(block.collect_params().values()) if params is None else params
    params = [p for p in params if p.grad_req != "null"]
    xa = np.array(x, dtype="float64")
    xa.attach_grad()
    for p in params:
        p.zero_grad()
    with autograd.record(train_mode=train):
        out = block(xa)
    head = rng.normal(size=out.shape)
    out.backward(np.array(head, dtype="float64"))
    analytic = [xa.grad.asnumpy()] + [p.grad().asnumpy().copy() for p in params]

    def value() -> float:
        with autograd.train_mode() if train else autograd.predict_mode():
            return float((block(np.array(x, dtype="float64")).asnumpy() * head).sum())

    def numeric_of(get: Any, put: Any) -> numpy.ndarray:
        base = get().copy()
        g = numpy.zeros_like(base)
        flat, gflat = base.reshape(-1), g.reshape(-1)
        for j in range(flat.size):
            old = flat[j]
            vals = []
            for step in (eps, -eps):
                flat[j] = old + step
                put(base)
                vals.append(value())
            flat[j] = old
            put(base)
            gflat[j] = (vals[0] - vals[1]) / (2 * eps)
        return g

    def put_x(v: numpy.ndarray) -> None:
        x[...] = v

    numeric = [numeric_of(lambda: x, put_x)]
    for p in params:
        numeric.append(numeric_of(lambda p=p: p.data().asnumpy(), lambda v, p=p: p.set_data(v)))
    names = ["x"] + [p.name for p in params]
    for n, a, b in zip(names, analytic, numeric):
        assert_almost_equal(a, b, rtol=rtol, atol=atol, names=(f"autograd d/d{n}", "numeric"))


def train_step(loss_fn: Any) -> Any:
    """The plain Gluon training step `step(net, trainer, X, Y) -> loss` with `loss_fn`."""

    def step(net: Any, trainer: Any, X: Any, Y: Any) -> Any:
        with autograd.record():
            loss = loss_fn(net(X), Y)
        loss.backward()
        trainer.step(X.shape[0])
        return loss

    return step
