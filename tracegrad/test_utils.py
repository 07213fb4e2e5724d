"""Testing helpers users can call too (as MXNet's `mxnet.test_utils`).

`check_numeric_gradient(f, inputs)` compares the gradients tracegrad's autograd computes for
`f` with central finite differences taken in float64.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy

__all__ = ["check_numeric_gradient", "numeric_grad", "assert_almost_equal"]


def _as_float64(x: Any) -> numpy.ndarray:
    from .tracer.array import Array

    v = x.asnumpy() if isinstance(x, Array) else numpy.asarray(x)
    return numpy.array(v, dtype=numpy.float64, copy=True, order="C")


def _scalarize(out: Any, head: Optional[numpy.ndarray]) -> float:
    v = numpy.asarray(out, dtype=numpy.float64)
    if head is None:
        return float(v.sum())
    return float((v * head).sum())


def numeric_grad(
    f: Callable[..., Any],
    inputs: Sequence[numpy.ndarray],
    head: Optional[numpy.ndarray] = None,
    eps: float = 1e-6,
) -> list[numpy.ndarray]:
    """Central differences of `sum(head * f(*inputs))` with respect to each input (float64).

    `f` is called with float64 tracegrad arrays and must return one array.
    """
    from . import np as tnp

    base = [numpy.array(x, dtype=numpy.float64, copy=True, order="C") for x in inputs]
    grads = []
    for i, x in enumerate(base):
        g = numpy.zeros_like(x)
        flat = x.reshape(-1)
        gflat = g.reshape(-1)
        for j in range(flat.size):
            old = flat[j]
            vals = []
            for step in (eps, -eps):
                flat[j] = old + step
                args = [tnp.array(b, dtype="float64") for b in base]
                vals.append(_scalarize(f(*args).asnumpy(), head))
            flat[j] = old
            gflat[j] = (vals[0] - vals[1]) / (2 * eps)
        grads.append(g)
    return grads


def check_numeric_gradient(
    f: Callable[..., Any],
    inputs: Sequence[Any],
    head_grad: Any = "random",
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    grad_inputs: Optional[Sequence[int]] = None,
    seed: int = 0,
    *,
    numeric_eps: Optional[float] = None,
    grad_nodes: Optional[Sequence[int]] = None,
) -> list[numpy.ndarray]:
    """Check the autograd gradients of `f` at `inputs` against central differences.

    `inputs` are numpy arrays (or tracegrad arrays); they are copied into float64 tracegrad
    arrays, gradients are attached to those listed in `grad_inputs` (all by default), `f` is
    run under `autograd.record()` and the result back-propagated with `head_grad` (a random
    normal array of the output's shape by default; `None` means ones). The same weighted sum
    is differentiated numerically. Raises AssertionError naming the input, the worst element
    and both values when they differ by more than `atol + rtol * |numeric|`. Returns the
    autograd gradients (numpy float64). `numeric_eps` and `grad_nodes` are MXNet's names for
    `eps` and `grad_inputs`.
    """
    if numeric_eps is not None:
        eps = numeric_eps
    if grad_nodes is not None:
        grad_inputs = grad_nodes
    from . import autograd
    from . import np as tnp

    base = [_as_float64(x) for x in inputs]
    which = list(range(len(base))) if grad_inputs is None else list(grad_inputs)
    args = [tnp.array(b, dtype="float64") for b in base]
    for i in which:
        args[i].attach_grad()
    with autograd.record():
        out = f(*args)
    shape = out.shape
    if isinstance(head_grad, str) and head_grad == "random":
        head = numpy.random.RandomState(seed).normal(size=shape)
    elif head_grad is None:
        head = None
    else:
        head = _as_float64(head_grad)
    head_arr = None if head is None else tnp.array(head, dtype=out.dtype)
    out.backward(head_arr)
    analytic = [args[i].grad.asnumpy().astype(numpy.float64) for i in which]

    def f_sub(*sub: Any) -> Any:
        full = list(tnp.array(b, dtype="float64") for b in base)
        for k, i in enumerate(which):
            full[i] = sub[k]
        return f(*full)

    numeric = numeric_grad(f_sub, [base[i] for i in which], head, eps)
    for i, a, n in zip(which, analytic, numeric):
        assert_almost_equal(a, n, rtol=rtol, atol=atol, names=(f"autograd d/dinput{i}", "numeric"))
    return analytic


def assert_almost_equal(
    a: Any,
    b: Any,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    names: tuple[str, str] = ("a", "b"),
) -> None:
    """Assert `|a - b| <= atol + rtol * |b|` elementwise, with a message naming the worst element."""
    a = numpy.asarray(a, dtype=numpy.float64)
    b = numpy.asarray(b, dtype=numpy.float64)
    if a.shape != b.shape:
        raise AssertionError(f"shapes differ: {names[0]} {a.shape} vs {names[1]} {b.shape}")
    both_nan = numpy.isnan(a) & numpy.isnan(b)
    err = numpy.where(both_nan, 0.0, numpy.abs(a - b))
    tol = atol + rtol * numpy.abs(b)
    bad = ~(err <= tol)
    if bad.any():
        idx = numpy.unravel_index(int(numpy.argmax(numpy.where(bad, err - tol, -numpy.inf))), a.shape)
        raise AssertionError(
            f"{names[0]} and {names[1]} differ at {idx}: {a[idx]!r} vs {b[idx]!r} "
            f"({int(bad.sum())} of {a.size} elements out of tolerance rtol={rtol}, atol={atol})\n"
            f"{names[0]}={a}\n{names[1]}={b}"
        )
