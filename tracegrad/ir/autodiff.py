"""Reverse mode over a linear list of eqns: the one place where fan-out accumulates.

It works on any value type through a `Builder` (see builder.py): with the IR's trace
builder it turns a trace into its backward trace; with the tracer's lazy arrays it records
gradients that can be differentiated again (`create_graph=True`).
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Iterable, Sequence

from ..errors import DTypeError
from .builder import Builder
from .ops import TABLE, Op


class Node:
    """What the pass needs of one recorded eqn: op, params, inputs and outputs (values)."""

    __slots__ = ("op", "params", "ins", "outs")

    def __init__(self, op: Op, params: dict, ins: Sequence[Any], outs: Sequence[Any]) -> None:
        self.op, self.params, self.ins, self.outs = op, params, ins, outs


def backward_pass(
    nodes: Sequence[Node],
    heads: Sequence[tuple[Any, Any]],
    b: Builder,
    key: Callable[[Any], Hashable] = id,
    needs_grad: Callable[[Any], bool] = lambda v: True,
) -> dict[Hashable, Any]:
    """Cotangents of every value reached from `heads` (pairs of value and its cotangent).

    `nodes` must be in program order. Returns a dict from `key(value)` to its summed
    cotangent. Values for which `needs_grad` is False stop the flow.
    """
    ct: dict[Hashable, Any] = {}
    for v, g in heads:
        _accumulate(ct, key(v), g, b)
    for n in reversed(nodes):
        gs = [ct.get(key(o)) for o in n.outs]
        if all(g is None for g in gs):
            continue
        row = TABLE[n.op]
        if row.vjp is None or not row.differentiable:
            continue
        if not any(needs_grad(x) for x in n.ins if not _is_lit(x)):
            continue
        gs = [g if g is not None else b.zeros_like(o) for g, o in zip(gs, n.outs)]
        grads = row.vjp(b, *n.ins, *n.outs, *gs, **n.params)
        for x, gx in zip(n.ins, grads):
            if gx is None or _is_lit(x) or not needs_grad(x):
                continue
            if tuple(gx.shape) != tuple(x.shape):
                gx = b.sum_to(gx, x.shape)
            _accumulate(ct, key(x), gx, b)
    return ct


def _accumulate(ct: dict, k: Hashable, g: Any, b: Builder) -> None:
    prev = ct.get(k)
    ct[k] = g if prev is None else b.add(prev, g)


def _is_lit(x: Any) -> bool:
    return not hasattr(x, "shape") or type(x).__name__ == "Lit"


def check_grad_dtype(values: Iterable[Any], what: str) -> None:
    """Gradients exist only for floating dtypes: a clear error otherwise."""
    for v in values:
        if getattr(v, "dtype", None) is not None and v.dtype.kind != "f":
            raise DTypeError(
                f"{what}: cannot differentiate with respect to an array of dtype {v.dtype} "
                "(only float16/32/64 carry gradients; cast with .astype('float32'))"
            )
