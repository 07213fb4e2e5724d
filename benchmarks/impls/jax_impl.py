"""JAX: jax.jit(value_and_grad) of the whole step (the SGD update inside the jitted function),
and plain jax.grad without jit (mode 'grad': op-by-op dispatch, which also runs W5's Python
control flow on concrete values). W7-W9c live in benchmarks.impls.jax_nn.

Threads: the harness sets PJRT_NPROC (XLA's CPU pool size); the notes report the number of
XLA Eigen threads the process really has.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..common import NotApplicable, Skipped
from ..workloads import GELU_A, GELU_C, LR
from ._base import Pool, Step

jax: Any = None
jnp: Any = None


def setup(mode: str) -> None:
    """Import jax on the CPU (threads through XLA_FLAGS); persistent cache at BENCH_CACHE_DIR."""
    global jax, jnp
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    try:
        import jax as _jax
        import jax.numpy as _jnp
    except ImportError as e:
        raise Skipped(f"jax not installed ({e}); pip install jax jaxlib") from e
    jax, jnp = _jax, _jnp
    cache = os.environ.get("BENCH_CACHE_DIR")
    if cache:
        for name, value in (("jax_compilation_cache_dir", os.path.join(cache, "jax")),
                            ("jax_persistent_cache_min_compile_time_secs", 0.0),
                            ("jax_persistent_cache_min_entry_size_bytes", 0)):
            try:
                jax.config.update(name, value)
            except (AttributeError, KeyError, ValueError):
                pass  # older jax without that option: the cache is simply not used


def _gelu_mse(w: Any, b: Any, x: Any, t: Any) -> Any:
    z = x * w + b
    h = 0.5 * z * (1.0 + jnp.tanh(GELU_C * (z + GELU_A * z ** 3)))
    return jnp.mean((h - t) ** 2)


def _mlp_loss(p: dict[str, Any], X: Any, y: Any) -> Any:
    h = jnp.tanh(X @ p["W1"] + p["b1"])
    logp = jax.nn.log_softmax(h @ p["W2"] + p["b2"], axis=1)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def _f(a: Any) -> Any:
    b = a * 2
    while jnp.abs(b).sum() < 1000:
        b = b * 2
    if b.sum() >= 0:
        return b[0]
    return b[1]


def xla_threads() -> str:
    """The XLA CPU pool as this process has it (thread names from /proc)."""
    from ..common import thread_names

    n = sum(v for k, v in thread_names().items() if "XLAEigen" in k)
    return f"XLA Eigen pool: {n} threads (PJRT_NPROC={os.environ.get('PJRT_NPROC', 'unset')})"


def make(mode: str, wid: str, d: dict[str, np.ndarray], size: Any) -> Step:
    """The jax step for workload `wid`: jax.jit (W5: N/A, jit cannot trace Python control
    flow) or plain jax.grad (mode 'grad')."""
    if wid in ("W7", "W8", "W9", "W9c"):
        from . import jax_nn

        st = jax_nn.make(mode, wid, d, size, jax, jnp)
    else:
        st = _make(mode, wid, d, size)
    st.notes = xla_threads
    return st


def _make(mode: str, wid: str, d: dict[str, np.ndarray], size: Any) -> Step:
    out: dict[str, Any] = {}
    jit = jax.jit if mode == "jit" else (lambda f: f)
    if wid == "W1":
        x = jnp.asarray(d["x"])
        fn = jit(jax.grad(lambda x: jnp.sum(2 * x * x)))

        def step() -> None:
            out["x_grad"] = fn(x).block_until_ready()

        return Step(step, lambda: {"x_grad": np.asarray(out["x_grad"])})
    if wid in ("W2", "W4"):
        x, t, w, b = (jnp.asarray(d[k]) for k in ("x", "t", "w", "b"))
        fn = jit(jax.value_and_grad(_gelu_mse, argnums=(0, 1)))

        def step() -> None:
            loss, (gw, gb) = fn(w, b, x, t)
            gb.block_until_ready()
            out.update(loss=loss, w_grad=gw, b_grad=gb)

        return Step(step, lambda: {k: np.asarray(v) for k, v in out.items()})
    if wid == "W3":
        X, y = jnp.asarray(d["X"]), jnp.asarray(d["y"])
        params = {k: jnp.asarray(d[k]) for k in ("W1", "b1", "W2", "b2")}
        vg = jax.value_and_grad(_mlp_loss)

        @jit
        def train_step(p: dict[str, Any], X: Any, y: Any) -> Any:
            loss, g = vg(p, X, y)
            return {k: p[k] - LR * g[k] for k in p}, g, loss

        def step() -> None:
            new, g, loss = train_step(params, X, y)
            jax.block_until_ready(new)
            params.update(new)
            out.update(grads=g, loss=loss)

        def fetch() -> dict[str, np.ndarray]:
            res = {k + "_grad": np.array(v) for k, v in out["grads"].items()}
            res.update({k: np.array(v) for k, v in params.items()})
            res["loss"] = np.asarray(out["loss"])
            return res

        return Step(step, fetch)
    # W5: jit over Python control flow on traced values fails; plain jax.grad runs it
    fn = jit(jax.value_and_grad(_f))
    try:
        fn(jnp.asarray(d["pool"][0]))
    except jax.errors.JAXTypeError as e:  # TracerBoolConversionError / ConcretizationTypeError
        first = str(e).strip().splitlines()[0]
        raise NotApplicable(f"jax.jit cannot trace the data-dependent while/if: "
                            f"{type(e).__name__}: {first[:120]}; see the 'jax' row (plain jax.grad)") from e
    pool = Pool(d["pool"])

    def step5() -> None:
        a = pool.next()
        c, g = fn(jnp.asarray(a))
        out.update(a=a, c=np.asarray(c), a_grad=np.asarray(g))

    return Step(step5, lambda: dict(out))
