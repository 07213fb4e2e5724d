"""backward() without re-deriving gradients: one cached forward+backward trace per structure.

The recorded graph behind the heads is keyed by its structure (ops, params, avals, how
values flow, which inputs are variables and their grad_req). The first backward of a
structure derives the combined trace once with `ir.trace_builder.grad_trace`; later ones
only walk the graph, look the key up and run the program. Anything unusual (custom
Functions, retained intermediates, explicit head gradients, capture by the jit, freed
parts of the graph) takes the general path in backward.py, which emits the gradients op by
op and gives the same results.
"""

from __future__ import annotations

from operator import attrgetter
from typing import TYPE_CHECKING, Any, Optional, Sequence

from ..errors import LinAlgError
from ..ir.core import Eqn, Lit, Trace, Var
from ..ir.ops import Op
from ..ir.trace_builder import grad_trace
from .recording import TraceRecorder, collect
from ..runtime.execute import _Key, execute
from . import registry
from .graph import free_graph
from .lazy import linalg_error, restore_pending, take_pending

if TYPE_CHECKING:
    from .array import Array
from .hooks import capturing

_SMALL_HEAD = 4096
_CACHE: dict = {}
_MAX = 512


class _Plan:
    __slots__ = ("trace", "key", "n_vars")

    def __init__(self, trace: Trace, n_vars: int) -> None:
        self.trace, self.n_vars = trace, n_vars
        self.key = _Key(trace.key())


def _walk(heads: Sequence[Array]) -> Optional[tuple[list, dict]]:
    """Producers (program order) and input arrays (by id) of the graph, or None for the
    general path."""
    prods: dict[int, Any] = {}
    inputs: dict[int, Array] = {}
    seen: set[int] = set()
    stack = list(heads)
    custom, lit = Op.CUSTOM, Lit
    while stack:
        a = stack.pop()
        i = id(a)
        if i in seen:
            continue
        seen.add(i)
        if a._freed:
            return None
        p = a._prod
        if p is None or (a._data is not None and not a._in_graph):
            inputs[i] = a
            continue
        if a._grad is not None or p.op is custom:
            return None
        if id(p) not in prods:
            prods[id(p)] = p
            for x in p.ins:
                if type(x) is not lit and id(x) not in seen:
                    stack.append(x)
    order = list(prods.values())
    if len(order) > 1:
        order.sort(key=_serial_of)
    return order, inputs


_serial_of = attrgetter("serial")


def _structure(prods: list, inputs: dict, heads: Sequence[Array]) -> tuple:
    """Canonical key of the graph and the inputs in canonical order."""
    ref: dict[int, Any] = {}
    order: list[Array] = []
    number: Optional[dict] = None
    parts: list[Any] = []
    lit = Lit
    for n, p in enumerate(prods):
        refs = []
        for x in p.ins:
            if type(x) is lit:
                refs.append(("L", x.value, x.dtype.str))
                continue
            r = ref.get(id(x))
            if r is None:
                if id(x) in inputs:
                    r = ref[id(x)] = len(order)
                    order.append(x)
                else:  # a value outside the graph (computed under pause) is a constant
                    if number is None:
                        number = {id(q): k for k, q in enumerate(prods)}
                    r = ref[id(x)] = (number[id(x._prod)], x._idx, x._in_graph)
            refs.append(r)
        parts.append((p.op, p.fparams, tuple(refs), tuple(p.avals)))
        outs = p.outs
        if len(outs) == 1:
            w = outs[0]
            o = w() if w is not None else None
            if o is not None:
                ref[id(o)] = (n, 0)
        else:
            for i, w in enumerate(outs):
                o = w() if w is not None else None
                if o is not None:
                    ref[id(o)] = (n, i)
    for h in heads:  # a head that is itself an input (no producer) takes the general path
        if id(h) not in ref or id(h) in inputs:
            return None, order
    roles = tuple(
        (a._shape, a._dtype.str, a._grad_req if (a._grad is not None and a._in_graph) else "-")
        for a in order
    )
    return (tuple(parts), roles, tuple(ref[id(h)] for h in heads)), order


class _GradRecorder(TraceRecorder):
    """The forward of a cached backward: a value outside the graph (computed under pause)
    is read through STOP_GRADIENT, and a live output always names its producer's value."""

    def __init__(self, order: list) -> None:
        super().__init__()
        self.in_ids = {id(a) for a in order}
        self.stopped: dict[int, Var] = {}

    def operand(self, x: Any, p: Any) -> Any:
        if type(x) is Lit:
            return x
        v = self.env[id(x)]
        if x._in_graph or id(x) in self.in_ids:
            return v
        s = self.stopped.get(id(x))
        if s is None:  # a constant inside the graph: no gradient flows into it
            s = self.stopped[id(x)] = Var(v.shape, v.dtype)
            self.eqns.append(Eqn(Op.STOP_GRADIENT, (v,), (s,), ()))
        return s

    def bind_output(self, o: Any, v: Var) -> None:
        self.env[id(o)] = v


def _build(prods: list, order: list, heads: Sequence[Array], variables: list[int], adds: list[int]) -> Trace:
    rec = _GradRecorder(order)
    in_vars = [rec.input(a) for a in order]
    for p in prods:
        rec.add(p)
    fwd = rec.trace(in_vars, [rec.env[id(h)] for h in heads])
    full = grad_trace(fwd, wrt=variables)
    grads = list(full.outputs[len(heads):])
    extra_in, extra_eqns = [], []
    for k, i in enumerate(variables):
        if i in adds:
            buf = Var(order[i]._shape, order[i]._dtype)
            out = Var(order[i]._shape, order[i]._dtype)
            extra_in.append(buf)
            extra_eqns.append(Eqn(Op.ADD, (buf, grads[k]), (out,), ()))
            grads[k] = out
    small = tuple(full.outputs[j] for j, h in enumerate(heads) if h.size <= _SMALL_HEAD)
    return Trace(full.inputs + tuple(extra_in), full.eqns + tuple(extra_eqns), tuple(grads) + small)


def _with_pending(trace: Trace, order: list, args: list, dests: list, pending: dict) -> Trace:
    """`trace` with the pending writes' values as extra outputs into their buffers (appended
    to `args` and `dests`); their forward eqns repeat the plan's over the same input
    variables, so the compiler's common-subexpression pass computes them once."""
    rec = TraceRecorder()
    for a, v in zip(order, trace.inputs):
        rec.env[id(a)] = v
    targets = [a for a, _ in pending.values()]
    prods, inputs = collect(targets)
    new = [a for a in inputs if id(a) not in rec.env]
    extra = [rec.input(a) for a in new]
    args.extend(a._data for a in new)
    for p in prods:
        rec.add(p)
    dests.extend(buf for _, buf in pending.values())
    return Trace(trace.inputs + tuple(extra), trace.eqns + tuple(rec.eqns),
                 trace.outputs + tuple(rec.env[id(a)] for a in targets))


def try_backward(heads: Sequence[Array], head_grads: Sequence[Any], retain_graph: bool) -> bool:
    """Run backward through the cached path; False when the general path must do it."""
    if capturing() or any(g is not None for g in head_grads):
        return False
    for h in heads:
        if not isinstance(h, registry.BASE) or h._prod is None or h._grad is not None:
            return False
        h._check_graph()
    walked = _walk(heads)
    if walked is None:
        return False
    prods, inputs = walked
    key, order = _structure(prods, inputs, heads)
    if key is None:
        return False
    variables = [i for i, a in enumerate(order) if a._grad is not None and a._in_graph and a._grad_req != "null"]
    if not variables:
        return False
    plan = _CACHE.get(key)
    if plan is None:
        adds = [i for i in variables if order[i]._grad_req == "add"]
        plan = _Plan(_build(prods, order, heads, variables, adds), len(variables))
        if len(_CACHE) >= _MAX:
            _CACHE.clear()
        _CACHE[key] = plan

    vs = [order[i] for i in variables]
    for v in vs:
        v._grad._prepare_write()
    small = [h for h in heads if h.size <= _SMALL_HEAD]
    args = [a._data for a in order] + [v._grad._data for v in vs if v._grad_req == "add"]
    dests = [v._grad._data for v in vs] + [None] * len(small)
    trace, key, pending = plan.trace, plan.key, take_pending()
    if pending:  # pending writes (batch_norm's running statistics): in the same program
        trace, key = _with_pending(plan.trace, order, args, dests, pending), None
    try:
        results = execute(trace, args, dests, key=key)
    except LinAlgError as exc:  # issue 9: a singular matrix, named with the user's lines
        restore_pending(pending)
        raise linalg_error(exc, prods) from None
    except BaseException:
        restore_pending(pending)
        raise
    for a, buf in pending.values():  # a written array holds its own buffer again
        a._data, a._prod, a._idx = buf, None, 0
    for h, r in zip(small, results[plan.n_vars :]):
        if h._data is None:
            h._set_value(r)
    for v in vs:  # gluon-train: Trainer's ignore_stale_grad reads this (MXNet's _fresh_grad)
        v._grad_fresh = True
    if not retain_graph:
        free_graph(prods, heads)
    return True
