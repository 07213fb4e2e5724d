"""W7 and W8 written the Gluon way, once for MXNet 2.x and tracegrad.gluon (the same API).

`nn.HybridSequential` of Conv2D/MaxPool2D/Dense (W7) or Dense (W8), hybridized;
`gluon.loss.SoftmaxCrossEntropyLoss`; `gluon.Trainer` with 'sgd' (W7, lr 0.05) or 'adam'
(W8, lr 1e-3); the step is `with autograd.record(): l = loss(net(X), y)`, `l.backward()`,
`trainer.step(batch)`. Gluon's gradients are of the summed per-example loss (the Trainer
divides by the batch size), so fetch reports grad / batch, the gradient of the mean loss.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Callable, Optional

import numpy

from ..workloads_nn import EPS8, LR7, LR8, w7_params, w8_params
from ._base import Step

# structural parameter names (MXNet 2.x: child index . parameter) -> the workloads' names
W7_NAMES = {"0.weight": "conv1_weight", "0.bias": "conv1_bias", "2.weight": "conv2_weight",
            "2.bias": "conv2_bias", "4.weight": "fc1_weight", "4.bias": "fc1_bias",
            "5.weight": "fc2_weight", "5.bias": "fc2_bias", "6.weight": "fc3_weight", "6.bias": "fc3_bias"}
W8_NAMES = {f"{i}.{k}": f"fc{i + 1}_{k}" for i in range(3) for k in ("weight", "bias")}


def build(mx: SimpleNamespace, wid: str, d: dict[str, numpy.ndarray]) -> tuple[Any, dict[str, Any]]:
    """The hybridized network with the workload's parameters set; (net, name -> Parameter)."""
    nn = mx.gluon.nn
    net = nn.HybridSequential()
    if wid == "W7":
        net.add(nn.Conv2D(6, kernel_size=5, padding=2, activation="relu", in_channels=1),
                nn.MaxPool2D(pool_size=2, strides=2),
                nn.Conv2D(16, kernel_size=5, activation="relu", in_channels=6),
                nn.MaxPool2D(pool_size=2, strides=2),
                nn.Dense(120, activation="relu", in_units=400),
                nn.Dense(84, activation="relu", in_units=120),
                nn.Dense(10, in_units=84))
        names = W7_NAMES
    else:
        d_in, hidden, classes = d["fc1_weight"].shape[1], d["fc1_weight"].shape[0], d["fc3_weight"].shape[0]
        net.add(nn.Dense(hidden, activation="relu", in_units=d_in),
                nn.Dense(hidden, activation="relu", in_units=hidden),
                nn.Dense(classes, in_units=hidden))
        names = W8_NAMES
    net.initialize()
    params = net.collect_params()
    found = {names[k]: p for k, p in params.items() if k in names}
    missing = sorted(set(names.values()) - set(found))
    if missing:
        raise RuntimeError(f"Gluon parameter names {sorted(params)} do not map onto {missing}")
    for name, p in found.items():
        p.set_data(mx.np.array(d[name], dtype=d[name].dtype))
    return net, found


def step_fn(mx: SimpleNamespace, net: Any, loss_fn: Any, trainer: Any, batch: int) -> Callable[[Any, Any], Any]:
    """The Gluon training step `step(X, y) -> loss`: forward and loss recorded, backward,
    `trainer.step(batch)`."""

    def train_step(X: Any, y: Any) -> Any:
        with mx.autograd.record():
            loss = loss_fn(net(X), y)
        loss.backward()
        trainer.step(batch)
        return loss

    return train_step


def make(mx: SimpleNamespace, wid: str, d: dict[str, numpy.ndarray],
         wrap: Optional[Callable[[Callable], Callable]] = None,
         sync: Callable[[], None] = lambda: None, hybridize: Optional[dict[str, Any]] = None) -> Step:
    """The Gluon training step for W7 or W8; `wrap` compiles the step (tracegrad.jit), `sync`
    waits for asynchronous work (MXNet's npx.waitall)."""
    net, params = build(mx, wid, d)
    net.hybridize(**(hybridize or {}))
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    opt, opt_params = ("sgd", {"learning_rate": LR7}) if wid == "W7" else (
        "adam", {"learning_rate": LR8, "epsilon": EPS8})
    trainer = mx.gluon.Trainer(net.collect_params(), opt, opt_params)
    X = mx.np.array(d["X"], dtype=d["X"].dtype)
    y = mx.np.array(d["y"], dtype=d["y"].dtype)
    batch = d["X"].shape[0]
    order = w7_params() if wid == "W7" else w8_params()

    train_step = step_fn(mx, net, loss_fn, trainer, batch)
    fn = wrap(train_step) if wrap is not None else train_step
    out: dict[str, Any] = {"fn": fn}

    def step() -> None:
        out["loss"] = fn(X, y)
        sync()

    def fetch() -> dict[str, numpy.ndarray]:
        res = {k + "_grad": params[k].grad().asnumpy() / batch for k in order}
        res.update({k: params[k].data().asnumpy() for k in order})
        res["loss"] = numpy.asarray(out["loss"].asnumpy().mean())
        if wid == "W8":
            res["adam_mxnet_eps"] = numpy.asarray(1.0)  # MXNet's Adam: eps outside the bias correction
        return res

    st = Step(step, fetch)
    st.fn = fn  # the (compiled) step function, for its back-end report
    return st
