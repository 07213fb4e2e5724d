"""PyTorch on the layer workloads: W7 LeNet SGD step, W8 MLP Adam step, W9 residual blocks
forward + backward, W9c one convolution forward + backward.

Eager: torch.nn.functional with the parameters as leaf tensors (W8: nn.Sequential and
torch.optim.Adam, the idiomatic form). torch.compile: W7, W9, W9c compile the whole step over
torch.func.grad_and_value (SGD inside for W7), as W3 does; W8 compiles the model and
`optimizer.step()` (PyTorch's recipe for compiled optimizers), backward through AOTAutograd.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..workloads_nn import BN_EPS, EPS8, LR7, LR8, w7_params, w8_params, w9_params
from ._base import Step


def _lenet(torch: Any) -> Callable:
    F = torch.nn.functional

    def loss(p: dict[str, Any], X: Any, y: Any) -> Any:
        h = F.max_pool2d(F.relu(F.conv2d(X, p["conv1_weight"], p["conv1_bias"], padding=2)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, p["conv2_weight"], p["conv2_bias"])), 2)
        h = h.flatten(1)
        h = F.relu(F.linear(h, p["fc1_weight"], p["fc1_bias"]))
        h = F.relu(F.linear(h, p["fc2_weight"], p["fc2_bias"]))
        return F.cross_entropy(F.linear(h, p["fc3_weight"], p["fc3_bias"]), y)

    return loss


def _resblocks(torch: Any, blocks: int) -> Callable:
    F = torch.nn.functional

    def bn(x: Any, g: Any, b: Any) -> Any:
        return F.batch_norm(x, None, None, g, b, training=True, eps=BN_EPS)

    def loss(p: dict[str, Any], x: Any, t: Any) -> Any:
        h = x
        for i in range(blocks):
            q = f"b{i}_"
            z = F.relu(bn(F.conv2d(h, p[q + "conv1_weight"], padding=1), p[q + "bn1_gamma"], p[q + "bn1_beta"]))
            z = bn(F.conv2d(z, p[q + "conv2_weight"], padding=1), p[q + "bn2_gamma"], p[q + "bn2_beta"])
            h = F.relu(z + h)
        return ((h - t) ** 2).mean()

    return loss


def _conv(torch: Any) -> Callable:
    F = torch.nn.functional

    def loss(p: dict[str, Any], t: Any) -> Any:
        return ((F.conv2d(p["x"], p["w"], padding=1) - t) ** 2).mean()

    return loss


def _functional(torch: Any, mode: str, wid: str, d: dict[str, np.ndarray], size: Any) -> Step:
    """W7, W9, W9c: a loss of a parameter dict, eager autograd or a compiled whole step."""
    t = torch.from_numpy
    if wid == "W7":
        names, loss, consts, lr = w7_params(), _lenet(torch), ("X", "y"), LR7
    elif wid == "W9":
        names, loss, consts, lr = w9_params(size), _resblocks(torch, size[3]), ("x", "t"), None
    else:
        names, loss, consts, lr = ["x", "w"], _conv(torch), ("t",), None
    args = tuple(t(d[k]) for k in consts)
    out: dict[str, Any] = {}
    if mode == "eager":
        ps = {k: t(d[k]).requires_grad_() for k in names}

        def step() -> None:
            for p in ps.values():
                p.grad = None
            value = loss(ps, *args)
            value.backward()
            if lr is not None:
                with torch.no_grad():
                    for p in ps.values():
                        p.sub_(p.grad, alpha=lr)
            out["loss"] = value

        def fetch() -> dict[str, np.ndarray]:
            res = {k + "_grad": p.grad.numpy() for k, p in ps.items()}
            if lr is not None:
                res.update({k: p.detach().numpy() for k, p in ps.items()})
            res["loss"] = out["loss"].detach().numpy()
            return res

        return Step(step, fetch)

    params = {k: t(d[k]) for k in names}
    gv = torch.func.grad_and_value(loss)

    @torch.compile
    def train_step(p: dict[str, Any], *a: Any) -> Any:
        grads, value = gv(p, *a)
        new = {k: p[k] - lr * grads[k] for k in p} if lr is not None else p
        return new, grads, value

    def cstep() -> None:
        new, grads, value = train_step(params, *args)
        params.update(new)
        out.update(grads=grads, loss=value)

    def cfetch() -> dict[str, np.ndarray]:
        res = {k + "_grad": g.numpy() for k, g in out["grads"].items()}
        if lr is not None:
            res.update({k: p.numpy() for k, p in params.items()})
        res["loss"] = out["loss"].numpy()
        return res

    return Step(cstep, cfetch)


def _mlp_adam(torch: Any, mode: str, d: dict[str, np.ndarray]) -> Step:
    """W8: nn.Sequential MLP with torch.optim.Adam (eager, or compiled model and optimizer step)."""
    nn = torch.nn
    d_in, hidden, classes = d["fc1_weight"].shape[1], d["fc1_weight"].shape[0], d["fc3_weight"].shape[0]
    model = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                          nn.Linear(hidden, classes))
    layers = {"fc1": model[0], "fc2": model[2], "fc3": model[4]}
    with torch.no_grad():
        for name, layer in layers.items():
            layer.weight.copy_(torch.from_numpy(d[name + "_weight"]))
            layer.bias.copy_(torch.from_numpy(d[name + "_bias"]))
    params = {f"{n}_{k}": getattr(layer, k) for n, layer in layers.items() for k in ("weight", "bias")}
    assert list(params) == w8_params()
    opt = torch.optim.Adam(model.parameters(), lr=LR8, eps=EPS8)
    X, y = torch.from_numpy(d["X"]), torch.from_numpy(d["y"])
    F = torch.nn.functional
    forward, opt_step = model, opt.step
    if mode == "compile":
        forward = torch.compile(model)
        opt_step = torch.compile(opt.step)
    out: dict[str, Any] = {}

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(X), y)
        loss.backward()
        opt_step()
        out["loss"] = loss

    def fetch() -> dict[str, np.ndarray]:
        res = {k + "_grad": p.grad.numpy() for k, p in params.items()}
        res.update({k: p.detach().numpy() for k, p in params.items()})
        res["loss"] = out["loss"].detach().numpy()
        res["adam_mxnet_eps"] = np.asarray(0.0)
        return res

    return Step(step, fetch)


def make(torch: Any, mode: str, wid: str, d: dict[str, np.ndarray], size: Any) -> Step:
    """The torch step (mode 'eager' or 'compile') for W7, W8, W9 or W9c."""
    if wid == "W8":
        return _mlp_adam(torch, mode, d)
    return _functional(torch, mode, wid, d, size)
