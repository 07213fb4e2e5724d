"""backward() and grad(): gradients emitted as (lazy) arrays and computed in one program."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Optional, Sequence

import weakref

import numpy

from ..errors import NO_INPUTS, NOT_IN_GRAPH, DTypeError, GraphError, ShapeError
from ..ir.autodiff import Node, backward_pass
from ..ir.builder import Builder
from ..ir.core import Lit
from .. import device as _dev_mod
from . import fastgrad, registry
from .graph import free_graph as _free
from .eager import note_backward
from .lazy import EMITTER, _out_aval, collect, materialize
from .hooks import hooks
from .state import STATE

if TYPE_CHECKING:
    from .array import Array


@contextmanager
def _emitting(create_graph: bool, train_mode: bool) -> Iterator[None]:
    saved = (STATE.recording, STATE.training)
    STATE.recording = create_graph
    STATE.training = train_mode
    STATE.force_lazy += 1
    try:
        yield
    finally:
        STATE.force_lazy -= 1
        STATE.recording, STATE.training = saved


_SMALL_HEAD = 4096


def _graph(heads: Sequence[Array]) -> list:
    """Producers of the recorded graph behind `heads`, in program order."""
    order, _ = collect(heads, through_concrete=True)
    for p in order:
        for x in p.ins:
            # `_freed` holds the serial at which a backward freed x: ops recorded before it
            # belong to the consumed graph; ops recorded later saw x as a constant.
            if type(x) is not Lit and x._freed and p.serial < x._freed:
                raise GraphError(
                    f"{NO_INPUTS} Part of this graph (an array of shape {x.shape}) was freed by an "
                    "earlier backward; pass retain_graph=True to that backward to reuse it."
                )
    return [p for p in order if any(x._in_graph for x in p.ins if type(x) is not Lit)]


def _needs_grad(x: Any) -> bool:
    return x._in_graph


def _head_grads(heads: Sequence[Array], head_grads: Sequence[Any]) -> list[Any]:
    b = Builder(EMITTER)
    out = []
    for h, g in zip(heads, head_grads):
        if g is None:
            out.append(b.broadcast(EMITTER.lit(1, h.dtype), h.shape))
            continue
        if not isinstance(g, registry.BASE):
            g = registry.CLS._wrap(numpy.asarray(g, dtype=h.dtype))
        if tuple(g.shape) != tuple(h.shape):
            raise ShapeError(
                f"backward: head gradient has shape {tuple(g.shape)} but the head has shape "
                f"{tuple(h.shape)}; pass an array of the head's shape"
            )
        if g.dtype != h.dtype:
            raise DTypeError(
                f"backward: head gradient has dtype {g.dtype} but the head has dtype {h.dtype}; "
                f"pass an array of dtype {h.dtype}"
            )
        out.append(g)
    return out


def _run(heads, head_grads, create_graph, train_mode):
    for h in heads:
        if not isinstance(h, registry.BASE):
            raise TypeError(f"backward: heads must be arrays, got {type(h).__name__}")
        h._check_graph()
    prods = _graph(heads)
    nodes = []
    for p in prods:
        outs = [r() if r is not None else None for r in p.outs]
        outs = [o if o is not None else _ghost(p, i) for i, o in enumerate(outs)]
        nodes.append(Node(p.op, p.params, p.ins, outs))
    with _emitting(create_graph, train_mode):
        gs = _head_grads(heads, head_grads)
        ct = backward_pass(nodes, list(zip(heads, gs)), Builder(EMITTER), key=id, needs_grad=_needs_grad)
    return prods, ct


def _ghost(p: Any, i: int) -> Array:
    """A stand-in for an output nobody holds any more (gradient rules may read it)."""
    shape, dt = _out_aval(p, i)
    o = registry.CLS._lazy(shape, dt, p, i, True)
    p.outs[i] = weakref.ref(o)
    return o


def _variables_of(prods: Sequence[Any], heads: Sequence[Array]) -> list[Array]:
    """Arrays with a gradient buffer inside the graph (leaves and retained intermediates)."""
    found: dict[int, Array] = {}
    for h in heads:
        if h._grad is not None:
            found[id(h)] = h
    for p in prods:
        for x in p.ins:
            if type(x) is not Lit and x._grad is not None:
                found[id(x)] = x
        for r in p.outs:
            o = r() if r is not None else None
            if o is not None and o._grad is not None:
                found[id(o)] = o
    return list(found.values())


def backward(
    heads: Any,
    head_grads: Any = None,
    retain_graph: bool = False,
    train_mode: bool = True,
) -> None:
    """Gradients of `heads` into the `.grad` buffers of every variable in their graph."""
    heads, head_grads = _as_lists(heads, head_grads)
    note_backward()
    if fastgrad.try_backward(heads, head_grads, retain_graph):
        return
    prods, ct = _run(heads, head_grads, False, train_mode)
    variables = [v for v in _variables_of(prods, heads) if v._grad_req != "null"]
    if not variables:
        raise GraphError(NO_INPUTS)
    for v in variables:
        v._grad._prepare_write()
    targets, dests = [], []
    copies, first_dest = [], {}  # one lazy gradient can serve several variables (add: g, g)
    written = []
    with _emitting(False, train_mode):
        for v in variables:
            g = ct.get(id(v))
            if g is None:
                g = Builder(EMITTER).zeros_like(v)
            if v._grad_req == "add":
                g = Builder(EMITTER).add(v._grad, g)
            written.append((v, g))
            if id(g) in first_dest:
                copies.append((first_dest[id(g)], v._grad._data))
                continue
            first_dest[id(g)] = v._grad._data
            targets.append(g)
            dests.append(v._grad._data)
    # A small lazy head (the loss) is computed in the same program, so that the freed
    # graph behind it can be released instead of being recomputed when it is read.
    for h in heads:
        if h._data is None and h.size <= _SMALL_HEAD:
            targets.append(h)
            dests.append(None)
    materialize(targets, dests)
    for src, dst in copies:
        dst[...] = src
    for v, _ in written:  # gluon-train: Trainer's ignore_stale_grad reads this (MXNet's _fresh_grad)
        v._grad_fresh = True
    cap = hooks()  # jit (issue 4): the .grad buffers are outputs of the step
    for v, g in written:
        cap.on_grad_write(v, g)
    if not retain_graph:
        _free(prods, heads)


def grad(
    heads: Any,
    variables: Any,
    head_grads: Any = None,
    retain_graph: Optional[bool] = None,
    create_graph: bool = False,
    train_mode: bool = True,
) -> list[Array]:
    """Gradients of `heads` with respect to `variables`, as new arrays (always a list)."""
    heads, head_grads = _as_lists(heads, head_grads)
    if isinstance(variables, registry.BASE):
        variables = [variables]
    assert len(variables) > 0, "variables cannot be an empty list."
    for i, v in enumerate(variables):
        if not v._in_graph or v._grad is None and v._prod is None:
            raise GraphError(
                f"Cannot differentiate with respect to the {i + 1}-th variable because it does not "
                "require gradient. Call attach_grad() on it before recording."
            )
    if retain_graph is None:
        retain_graph = create_graph
    prods, ct = _run(heads, head_grads, create_graph, train_mode)
    out = []
    with _emitting(create_graph, train_mode):
        for v in variables:
            g = ct.get(id(v))
            out.append(g if g is not None else Builder(EMITTER).zeros_like(v))
    if not create_graph:
        out = [_fresh(g) for g in out]
        materialize(out)
        out = [_on_device_of(g, v) for g, v in zip(out, variables)]
    if not retain_graph:
        _free(prods, heads)
    return out


def _on_device_of(g: Array, v: Array) -> Array:
    """A gradient made of constants alone (no device of its own) goes to its variable's device."""
    dev = getattr(v, "_dev", None)
    if dev is None or dev is _dev_mod.UNPLACED or g._dev is dev:
        return g
    return g.to_device(dev)


def _fresh(g: Array) -> Array:
    if g._data is not None:
        return registry.CLS._wrap(numpy.array(g._data, copy=True))
    return g


def _as_lists(heads: Any, head_grads: Any) -> tuple[list, list]:
    if isinstance(heads, registry.BASE):
        heads = [heads]
        head_grads = [head_grads] if head_grads is not None else [None]
    heads = list(heads)
    if head_grads is None:
        head_grads = [None] * len(heads)
    elif isinstance(head_grads, registry.BASE):
        head_grads = [head_grads]
    head_grads = list(head_grads)
    assert len(heads) == len(head_grads), (
        f"heads and head_grads must be lists of the same length: {len(heads)} vs. {len(head_grads)}"
    )
    return heads, head_grads


__all__ = ["backward", "grad", "NOT_IN_GRAPH"]
