"""JAX on the layer workloads (jax.jit of the whole step): W7 LeNet SGD step, W8 MLP with a
hand-written Adam update (no optax; PyTorch's form of Adam), W9 residual blocks and W9c one
convolution, forward + backward. Convolutions through lax.conv_general_dilated (NCHW/OIHW),
max-pooling through lax.reduce_window."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..common import NotApplicable
from ..workloads_nn import BETA1, BETA2, BN_EPS, EPS8, LR7, LR8, w7_params, w8_params, w9_params
from ._base import Step


def _ops(jax: Any, jnp: Any) -> dict[str, Any]:
    lax = jax.lax

    def conv(x: Any, w: Any, pad: int) -> Any:
        return lax.conv_general_dilated(x, w, (1, 1), [(pad, pad), (pad, pad)],
                                        dimension_numbers=("NCHW", "OIHW", "NCHW"))

    def pool(x: Any) -> Any:
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    def xent(logits: Any, y: Any) -> Any:
        logp = jax.nn.log_softmax(logits, axis=1)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    def bn(x: Any, g: Any, b: Any) -> Any:
        mu = x.mean(axis=(0, 2, 3), keepdims=True)
        var = x.var(axis=(0, 2, 3), keepdims=True)
        return g[None, :, None, None] * (x - mu) * lax.rsqrt(var + BN_EPS) + b[None, :, None, None]

    return {"conv": conv, "pool": pool, "xent": xent, "bn": bn}


def make(mode: str, wid: str, d: dict[str, np.ndarray], size: Any, jax: Any, jnp: Any) -> Step:
    """The jax.jit step for W7, W8, W9 or W9c (mode 'grad', plain jax.grad, has no rows here)."""
    if mode != "jit":
        raise NotApplicable("plain jax.grad rows cover W1-W5 only")
    o = _ops(jax, jnp)
    relu = jax.nn.relu
    out: dict[str, Any] = {}
    if wid == "W7":
        names = w7_params()

        def loss7(p: dict[str, Any], X: Any, y: Any) -> Any:
            h = o["pool"](relu(o["conv"](X, p["conv1_weight"], 2) + p["conv1_bias"][None, :, None, None]))
            h = o["pool"](relu(o["conv"](h, p["conv2_weight"], 0) + p["conv2_bias"][None, :, None, None]))
            h = h.reshape(h.shape[0], -1)
            h = relu(h @ p["fc1_weight"].T + p["fc1_bias"])
            h = relu(h @ p["fc2_weight"].T + p["fc2_bias"])
            return o["xent"](h @ p["fc3_weight"].T + p["fc3_bias"], y)

        vg = jax.value_and_grad(loss7)

        @jax.jit
        def step7(p: dict[str, Any], X: Any, y: Any) -> Any:
            value, g = vg(p, X, y)
            return {k: p[k] - LR7 * g[k] for k in p}, g, value

        return _stateful(jax, step7, {k: jnp.asarray(d[k]) for k in names},
                         (jnp.asarray(d["X"]), jnp.asarray(d["y"])), out)
    if wid == "W8":
        names = w8_params()

        def loss8(p: dict[str, Any], X: Any, y: Any) -> Any:
            h = relu(X @ p["fc1_weight"].T + p["fc1_bias"])
            h = relu(h @ p["fc2_weight"].T + p["fc2_bias"])
            return o["xent"](h @ p["fc3_weight"].T + p["fc3_bias"], y)

        vg8 = jax.value_and_grad(loss8)

        @jax.jit
        def step8(state: tuple, X: Any, y: Any) -> Any:
            p, m, v, t = state
            value, g = vg8(p, X, y)
            t = t + 1
            m = {k: BETA1 * m[k] + (1 - BETA1) * g[k] for k in p}
            v = {k: BETA2 * v[k] + (1 - BETA2) * g[k] * g[k] for k in p}
            c1, c2 = 1 - BETA1 ** t, 1 - BETA2 ** t
            new = {k: p[k] - LR8 / c1 * m[k] / (jnp.sqrt(v[k]) / jnp.sqrt(c2) + EPS8) for k in p}
            return (new, m, v, t), g, value

        p0 = {k: jnp.asarray(d[k]) for k in names}
        state = [(p0, {k: jnp.zeros_like(a) for k, a in p0.items()},
                  {k: jnp.zeros_like(a) for k, a in p0.items()}, jnp.asarray(0, jnp.int32))]
        X, y = jnp.asarray(d["X"]), jnp.asarray(d["y"])

        def step() -> None:
            new, g, value = step8(state[0], X, y)
            jax.block_until_ready(new)
            state[0] = new
            out.update(grads=g, loss=value)

        def fetch() -> dict[str, np.ndarray]:
            res = {k + "_grad": np.asarray(v) for k, v in out["grads"].items()}
            res.update({k: np.asarray(v) for k, v in state[0][0].items()})
            res["loss"] = np.asarray(out["loss"])
            res["adam_mxnet_eps"] = np.asarray(0.0)
            return res

        return Step(step, fetch)
    if wid == "W9":
        names = w9_params(size)

        def loss9(p: dict[str, Any], x: Any, t: Any) -> Any:
            h = x
            for i in range(size[3]):
                q = f"b{i}_"
                z = relu(o["bn"](o["conv"](h, p[q + "conv1_weight"], 1), p[q + "bn1_gamma"], p[q + "bn1_beta"]))
                z = o["bn"](o["conv"](z, p[q + "conv2_weight"], 1), p[q + "bn2_gamma"], p[q + "bn2_beta"])
                h = relu(z + h)
            return jnp.mean((h - t) ** 2)

        fn, consts = jax.jit(jax.value_and_grad(loss9)), ("x", "t")
    else:
        names = ["x", "w"]

        def loss9c(p: dict[str, Any], t: Any) -> Any:
            return jnp.mean((o["conv"](p["x"], p["w"], 1) - t) ** 2)

        fn, consts = jax.jit(jax.value_and_grad(loss9c)), ("t",)
    params = {k: jnp.asarray(d[k]) for k in names}
    args = tuple(jnp.asarray(d[k]) for k in consts)

    def fb() -> None:
        value, g = fn(params, *args)
        jax.block_until_ready(g)
        out.update(grads=g, loss=value)

    def fetch_fb() -> dict[str, np.ndarray]:
        res = {k + "_grad": np.asarray(v) for k, v in out["grads"].items()}
        res["loss"] = np.asarray(out["loss"])
        return res

    return Step(fb, fetch_fb)


def _stateful(jax: Any, fn: Any, params: dict[str, Any], args: tuple, out: dict[str, Any]) -> Step:
    """A jitted SGD step p, *args -> (new p, grads, loss) as a Step."""
    state = [params]

    def step() -> None:
        new, g, value = fn(state[0], *args)
        jax.block_until_ready(new)
        state[0] = new
        out.update(grads=g, loss=value)

    def fetch() -> dict[str, np.ndarray]:
        res = {k + "_grad": np.asarray(v) for k, v in out["grads"].items()}
        res.update({k: np.asarray(v) for k, v in state[0].items()})
        res["loss"] = np.asarray(out["loss"])
        return res

    return Step(step, fetch)
