"""Trace-to-trace passes: constant folding, transposed products, common subexpressions, dead code.

Each pass is a pure function `Trace -> Trace` that keeps the trace's inputs and outputs (the
same `Var` objects, so callers can match results by position). `PIPELINE` lists them in the
order the code generator runs them; `optimize(trace)` runs the pipeline.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy

from .core import Eqn, Lit, Trace, Var, freeze_params
from .ops import TABLE, Kind, Op

_FOLDABLE_LAYOUT = (Op.BROADCAST_TO, Op.RESHAPE)


def fold(trace: Trace) -> Trace:
    """Constant folding.

    An elementwise eqn whose operands are all literals (or values known to be one constant
    everywhere) is evaluated at compile time with the op's numpy rule; so are broadcast_to
    and reshape of such a value. Elementwise consumers then read the literal; the value
    itself stays defined (as `broadcast_to[shape] lit`) for any other consumer or output.
    """
    const: dict[Var, Lit] = {}
    eqns: list[Eqn] = []

    def sub(a: Any) -> Any:
        return const.get(a, a) if isinstance(a, Var) else a

    for e in trace.eqns:
        row = TABLE[e.op]
        if row.kind is Kind.ELEMENTWISE and len(e.outs) == 1:
            ins = tuple(sub(a) for a in e.ins)
            if all(isinstance(a, Lit) for a in ins):
                lit = _eval_lit(e, ins)
                if lit is not None:
                    const[e.out] = lit
                    eqns.append(_splat(e.out, lit))
                    continue
            eqns.append(Eqn(e.op, ins, e.outs, e.params) if ins != e.ins else e)
            continue
        if e.op in _FOLDABLE_LAYOUT and isinstance(sub(e.ins[0]), Lit):
            lit = sub(e.ins[0])
            const[e.out] = Lit(lit.value, e.out.dtype)
            eqns.append(_splat(e.out, const[e.out]))
            continue
        eqns.append(e)
    return Trace(trace.inputs, tuple(eqns), trace.outputs)


def _splat(out: Var, lit: Lit) -> Eqn:
    return Eqn(Op.BROADCAST_TO, (lit,), (out,), freeze_params({"shape": tuple(out.shape)}))


def _eval_lit(e: Eqn, ins: tuple) -> Lit | None:
    vals = [a.dtype.type(a.value) for a in ins]
    try:
        with numpy.errstate(all="ignore"):
            r = TABLE[e.op].impl(*vals, **e.p)
        r = numpy.asarray(r).astype(e.out.dtype)
    except Exception:  # the runtime will raise the same error with its context
        return None
    if r.shape != ():
        return None
    return Lit(r.item(), e.out.dtype)


def _lit_key(a: Lit) -> tuple:
    v = a.value
    if isinstance(v, float) and v != v:
        return ("L", "nan", a.dtype.str)
    return ("L", type(v).__name__, v, a.dtype.str, numpy.copysign(1.0, v) if isinstance(v, float) else 0)


_NO_CSE = (Kind.GUARD, Kind.HOST)


def _swaps_last(e: Eqn) -> bool:
    """`e` is a transpose exchanging the last two axes and keeping the others."""
    if e.op is not Op.TRANSPOSE:
        return False
    perm = tuple(e.p["perm"])
    n = len(perm)
    return n >= 2 and perm == tuple(range(n - 2)) + (n - 1, n - 2)


def transposed_products(trace: Trace) -> Trace:
    """`swap(a @ b)` becomes `swap(b) @ swap(a)`, and `swap(swap(x))` operands read `x`.

    A layer `x @ w.T`'s weight gradient is `swap(x.T @ g)`: the product comes out in the
    transposed layout, so the elementwise code that consumes it (the gradient's copy, the
    optimizer's update) reads it with a stride. Written as `g.T @ x` the product has the
    weight's layout and BLAS reads the transposed operands in place (no copy). Applies when
    the product's only consumer is the transpose and both operands have its rank (no batch
    broadcast)."""
    producer: dict[Var, Eqn] = {}
    uses: dict[Var, int] = {}
    for e in trace.eqns:
        for a in e.ins:
            if isinstance(a, Var):
                uses[a] = uses.get(a, 0) + 1
        for o in e.outs:
            producer[o] = e
    outputs = set(trace.outputs)
    eqns: list[Eqn] = []
    changed = False

    def swapped(x: Var) -> Var:
        src = producer.get(x)
        if src is not None and _swaps_last(src):
            return src.ins[0]
        n = x.ndim
        out = Var(x.shape[:-2] + (x.shape[-1], x.shape[-2]), x.dtype)
        eqns.append(Eqn(Op.TRANSPOSE, (x,), (out,), freeze_params({"perm": tuple(range(n - 2)) + (n - 1, n - 2)})))
        return out

    for e in trace.eqns:
        m = e.ins[0] if _swaps_last(e) else None
        pe = producer.get(m) if isinstance(m, Var) else None
        if (pe is not None and pe.op is Op.MATMUL and uses.get(m) == 1 and m not in outputs
                and all(isinstance(a, Var) and a.ndim == m.ndim and a.shape[:-2] == m.shape[:-2] for a in pe.ins)):
            a, b = pe.ins
            eqns.append(Eqn(Op.MATMUL, (swapped(b), swapped(a)), e.outs))
            changed = True
            continue
        eqns.append(e)
    return Trace(trace.inputs, tuple(eqns), trace.outputs) if changed else trace


def cse(trace: Trace) -> Trace:
    """Common subexpression elimination: an eqn equal to an earlier one (same op, params and
    operands) is dropped and its outputs renamed to the earlier outputs. Guards and host
    callbacks are never merged."""
    rename: dict[Var, Var] = {}
    seen: dict[tuple, Eqn] = {}
    eqns: list[Eqn] = []

    def ref(a: Any) -> Any:
        return rename.get(a, a) if isinstance(a, Var) else a

    for e in trace.eqns:
        ins = tuple(ref(a) for a in e.ins)
        if ins != e.ins:
            e = Eqn(e.op, ins, e.outs, e.params)
        if TABLE[e.op].kind in _NO_CSE:
            eqns.append(e)
            continue
        try:
            k = (e.op, tuple(_lit_key(a) if isinstance(a, Lit) else a for a in ins), e.params,
                 tuple((o.shape, o.dtype.str) for o in e.outs))
            hash(k)
        except TypeError:  # unhashable params: never merged
            eqns.append(e)
            continue
        prev = seen.get(k)
        if prev is not None:
            for o, p in zip(e.outs, prev.outs):
                rename[o] = p
            continue
        seen[k] = e
        eqns.append(e)
    outs = tuple(ref(o) for o in trace.outputs)
    if outs != trace.outputs:
        # keep output identities: re-define renamed outputs as copies of their survivors
        eqns, outs = _restore_outputs(eqns, trace.outputs, rename)
    return Trace(trace.inputs, tuple(eqns), outs)


def _restore_outputs(eqns: list[Eqn], outputs: tuple, rename: dict) -> tuple[list[Eqn], tuple]:
    out = list(eqns)
    for o in outputs:
        if o in rename:
            out.append(Eqn(Op.RESHAPE, (rename[o],), (o,), freeze_params({"shape": tuple(o.shape)})))
    return out, outputs


def dce(trace: Trace) -> Trace:
    """Dead code elimination: keep eqns whose outputs reach an output or a guard."""
    live: set = set(trace.outputs)
    keep: list[Eqn] = []
    for e in reversed(trace.eqns):
        if e.op is Op.GUARD or any(o in live for o in e.outs):
            keep.append(e)
            for a in e.ins:
                if isinstance(a, Var):
                    live.add(a)
    keep.reverse()
    return Trace(trace.inputs, tuple(keep), trace.outputs)


PIPELINE: tuple[Callable[[Trace], Trace], ...] = (fold, transposed_products, cse, dce)


def optimize(trace: Trace) -> Trace:
    """Run every pass of `PIPELINE` in order."""
    for p in PIPELINE:
        trace = p(trace)
    return trace
