"""From a trace to a launch plan: fused loop groups, reductions, matmuls, index ops, host steps.

The CPU fusion plan of tracegrad/codegen did not exist when this renderer was written, so
the grouping is done here, on the Trace directly:

* consecutive elementwise eqns of one shape form one grid-stride loop kernel; a value
  computed in a group stays in a register unless something outside the group reads it
  (then the group also stores it: a "spill");
* layout ops (broadcast_to, transpose, basic slice, reshape of contiguous data) are views:
  the kernels that read them do the index arithmetic, nothing is copied;
* reductions, matmuls, gathers and scatter-adds are one kernel each (a reduction over many
  elements into few outputs takes two: per-block partials, then a combine of them);
* ops without a CUDA rendering (argmax/argmin, prod's gradient helper, autograd.Function
  callbacks, guards, index templates outside what the gather kernel handles) run as host
  steps with the op table's numpy rule; each one is logged with its reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy

from ...ir.core import Eqn, Lit, Trace, Var
from ...ir.ops import TABLE, Kind
from ...ir.passes import optimize
from .views import View, c_strides, size_of

log = logging.getLogger("tracegrad.codegen.cuda")

SMALL_REDUCTION = 32  # reduced elements per output up to which one thread does each output
RECOMPUTE_LIMIT = 48  # eqns copied into a group instead of spilling a value to memory
_ATOMIC_DTYPES = ("float32", "float64", "int32", "int64")


@dataclass
class Slot:
    """A flat device buffer of the plan: an input, a scratch buffer, an output, a host result."""

    size: int
    dtype: numpy.dtype
    kind: str  # "in" | "tmp" | "out" | "host"
    arg: int = -1  # the input position for "in"


@dataclass
class LoopStep:
    """A grid-stride loop over `shape`: loads, the group's eqns, stores."""

    shape: tuple[int, ...]
    eqns: list[Eqn] = field(default_factory=list)
    loads: dict[Var, View] = field(default_factory=dict)
    stores: list[tuple[Union[Var, View], View]] = field(default_factory=list)
    defined: set = field(default_factory=set)
    slots_written: set = field(default_factory=set)
    reductions: list = field(default_factory=list)  # (var, combine, partial slot): fused full reductions
    gathers: dict = field(default_factory=dict)  # out Var -> GatherLoad (GATHER eqns in `eqns`)
    is_epilogue: bool = False  # runs inside a reduction/matmul kernel (no fused reductions)


@dataclass
class ReduceStep:
    combine: str  # the row's combine: add / max / min / mul
    src: View
    axes: tuple[int, ...]
    dst: int
    parts: int  # blocks per output (1: one block computes each output)
    epilogue: Optional[LoopStep] = None  # elementwise eqns over the result, run by thread 0
    result: Optional[Var] = None  # the reduced value, a register in the epilogue
    prologue: Optional[LoopStep] = None  # short rows: the reduced value computed in place
    operand: Optional[Var] = None  # ... this value of the prologue (`src` gives its shape)


@dataclass
class MatmulStep:
    a: View
    b: View
    dst: int
    out_shape: tuple[int, ...]
    epilogue: Optional[LoopStep] = None  # elementwise eqns over the product (e.g. + bias, tanh)
    result: Optional[Var] = None


@dataclass
class GatherLoad:
    """A gather inside a loop group: `x` read at positions computed from the loop's
    coordinates and the index values (views read at the broadcast coordinates, or registers
    of the group when the index arrays have the loop's own shape)."""

    x: View
    idx: list  # View | Var per index array
    layout: tuple  # see _index_layout


@dataclass
class ScatterStep:
    g: View
    idx: list[View]
    layout: tuple
    dst: int
    out_shape: tuple[int, ...]


@dataclass
class HostStep:
    eqn: Eqn
    ins: list[Union[View, Lit]]
    dsts: list[int]
    guard_index: int = -1
    reason: str = ""


Step = Union[LoopStep, ReduceStep, MatmulStep, ScatterStep, HostStep]


@dataclass
class Plan:
    slots: list[Slot]
    steps: list[Step]
    outputs: list[tuple[int, tuple[int, ...]]]  # (slot, shape) of each trace output


class Planner:
    """Walks a trace once and lays out its steps (see the module docstring)."""

    def __init__(self, trace: Trace, tpb: int, target_blocks: int, max_blocks: int) -> None:
        self.trace = optimize(trace)  # folding, CSE, dead code (inputs and outputs kept)
        self.tpb = tpb
        self.max_blocks = max_blocks
        self.target_blocks = target_blocks
        self.slots: list[Slot] = []
        self.steps: list[Step] = []
        self.loc: dict[Var, Any] = {}  # Var -> View | LoopStep (defined in that group)
        self.open: Optional[LoopStep] = None
        self.guards = 0

    # ---- slots and views ------------------------------------------------------------
    def new_slot(self, shape: tuple[int, ...], dtype: numpy.dtype, kind: str = "tmp") -> int:
        self.slots.append(Slot(size_of(shape), numpy.dtype(dtype), kind))
        return len(self.slots) - 1

    def view(self, a: Union[Var, Lit]) -> View:
        """A readable view of an operand, spilling a group value to a buffer if needed."""
        if isinstance(a, Lit):
            return View.of_lit(a, ())
        where = self.loc[a]
        if isinstance(where, View):
            return where
        slot = self.new_slot(a.shape, a.dtype)
        v = View.whole(slot, a.shape)
        where.stores.append((a, v))
        where.slots_written.add(slot)
        self.loc[a] = v
        return v

    def buffer_view(self, a: Var) -> View:
        """A view backed by a buffer (a broadcast literal is written out first)."""
        v = self.view(a)
        return self.materialize(v, a.dtype) if v.is_lit else v

    def materialize(self, v: View, dtype: numpy.dtype) -> View:
        """A contiguous copy of a view (a loop step that only loads and stores)."""
        slot = self.new_slot(v.shape, dtype)
        out = View.whole(slot, v.shape)
        step = self._group_for(v.shape, [v])
        step.stores.append((v, out))
        step.slots_written.add(slot)
        return out

    def _group_for(self, shape: tuple[int, ...], reads: list[View]) -> LoopStep:
        g = self.open
        if g is None or g.shape != tuple(shape) or any(
            (not r.is_lit) and r.slot in g.slots_written for r in reads
        ):
            g = LoopStep(tuple(shape))
            self.steps.append(g)
            self.open = g
        return g

    def _close(self) -> None:
        self.open = None

    def _push(self, step: Step) -> None:
        self._close()
        self.steps.append(step)

    # ---- the walk -------------------------------------------------------------------
    def build(self) -> Plan:
        for j, v in enumerate(self.trace.inputs):
            self.slots.append(Slot(v.size, v.dtype, "in", j))
            self.loc[v] = View.whole(len(self.slots) - 1, v.shape)
        for e in self.trace.eqns:
            self.eqn(e)
        outputs = []
        claimed: set[int] = set()
        for o in self.trace.outputs:
            v = self.view(o)
            if v.is_lit or self.slots[v.slot].kind != "tmp" or v.slot in claimed or not v.is_whole(
                self.slots[v.slot].size
            ):
                v = self.materialize(v, o.dtype)
            self.slots[v.slot].kind = "out"
            claimed.add(v.slot)
            outputs.append((v.slot, tuple(o.shape)))
        return Plan(self.slots, self.steps, outputs)

    def eqn(self, e: Eqn) -> None:
        row = TABLE[e.op]
        if row.kind is Kind.ELEMENTWISE:
            return self.elementwise(e)
        if row.kind is Kind.LAYOUT:
            return self.layout(e)
        if row.combine is not None:
            return self.reduction(e)
        if row.kind is Kind.MATMUL:
            a, b = self.buffer_view(e.ins[0]), self.buffer_view(e.ins[1])
            dst = self.new_slot(e.out.shape, e.out.dtype)
            self._push_final(MatmulStep(a, b, dst, tuple(e.out.shape)), e.out)
            self.loc[e.out] = View.whole(dst, e.out.shape)
            return None
        if row.index_form is not None:
            return self.index(e)
        reason = "guard (a data-dependent branch is checked on the host)" if row.kind is Kind.GUARD else (
            f"no CUDA rendering for {e.op.value}"
        )
        return self.host(e, reason)

    def elementwise(self, e: Eqn) -> None:
        shape = tuple(e.out.shape)
        here = self.open.defined if self.open is not None else ()
        reads = [self.loc[a] for a in e.ins if isinstance(a, Var) and isinstance(self.loc[a], View) and a not in here]
        g = self._group_for(shape, reads)
        for a in e.ins:
            if isinstance(a, Var):
                if a in g.defined:
                    continue
                where = self.loc[a]
                if isinstance(where, LoopStep) and self._recompute(a, where, g):
                    continue  # cheaper to recompute from the group's inputs than to spill
                g.loads.setdefault(a, self.view(a))
        g.eqns.append(e)
        for o in e.outs:
            self.loc[o] = g
            g.defined.add(o)
        return None

    def _recompute(self, a: Var, src: LoopStep, g: LoopStep) -> bool:
        """Copy the eqns that compute `a` in the closed group `src` into `g` (same shape).

        Memory traffic, not arithmetic, bounds these kernels: recomputing a chain from the
        buffers it started from beats writing and re-reading an intermediate.
        """
        if src.shape != g.shape:
            return False
        defs = {o: e for e in src.eqns for o in e.outs}
        need: set = set()
        leaves: dict[Var, View] = {}
        stack = [a]
        while stack:
            v = stack.pop()
            if v in need or v in leaves or v in g.defined:
                continue
            if v in defs:
                if TABLE[defs[v].op].index_form == "gather":
                    return False
                need.add(v)
                stack.extend(x for x in defs[v].ins if isinstance(x, Var))
            elif v in src.loads:
                leaves[v] = src.loads[v]
            else:
                return False
            if len(need) > RECOMPUTE_LIMIT:
                return False
        if any((not lv.is_lit) and lv.slot in g.slots_written for lv in leaves.values()):
            return False
        for v, lv in leaves.items():
            if v not in g.defined:
                g.loads.setdefault(v, lv)
        for e in src.eqns:
            if any(o in need for o in e.outs):
                g.eqns.append(e)
                g.defined.update(e.outs)
        return True

    def layout(self, e: Eqn) -> None:
        row = TABLE[e.op]
        if row.assemble is not None:  # operands written into regions of a fresh buffer
            fill_zero, parts = row.assemble([tuple(a.shape) for a in e.ins], **e.p)
            views = {j: self.view(e.ins[j]) for j, _ in parts}
            dst = self.new_slot(e.out.shape, e.out.dtype)
            whole = View.whole(dst, e.out.shape)
            self._close()
            if fill_zero:
                fill = self._group_for(tuple(e.out.shape), [])
                fill.stores.append((View.of_lit(Lit(0, e.out.dtype), tuple(e.out.shape)), whole))
                fill.slots_written.add(dst)
                self._close()
            for j, index in parts:
                v = views[j]
                put = self._group_for(v.shape, [v])
                put.stores.append((v, whole.slice(index)))
                put.slots_written.add(dst)
                self._close()
            self.loc[e.out] = whole
            return None
        if row.index_map is None:
            return self.host(e, f"no CUDA rendering for layout op {e.op.value}")
        x = self.view(e.ins[0])
        out_shape = tuple(e.out.shape)
        m = row.index_map(tuple(x.shape), out_shape, **e.p)
        if m is None:  # the linear index is kept
            out = x.reshape(out_shape)
            if out is None:
                out = self.materialize(x, e.ins[0].dtype).reshape(out_shape)
        else:
            out = _mapped(x, m, out_shape)
        self.loc[e.out] = out
        return None

    def reduction(self, e: Eqn) -> None:
        if self._fused_full_reduction(e) or self._short_rows_in_place(e):
            return None
        src = self.buffer_view(e.ins[0])
        axes = tuple(e.p["axes"])
        n_out = e.out.size
        red = size_of(tuple(src.shape[a] for a in axes))
        dst = self.new_slot(e.out.shape, e.out.dtype)
        parts = min(64, max(1, red // (self.tpb * 4)), max(1, self.target_blocks // max(n_out, 1)))
        if parts > 1:
            partial = self.new_slot((n_out, parts), e.out.dtype)
            self._push(ReduceStep(TABLE[e.op].combine, src, axes, partial, parts))
            self._push_final(ReduceStep(TABLE[e.op].combine, View.whole(partial, (n_out, parts)), (1,), dst, 1), e.out)
        else:
            self._push_final(ReduceStep(TABLE[e.op].combine, src, axes, dst, 1), e.out)
        self.loc[e.out] = View.whole(dst, e.out.shape)
        return None

    def _short_rows_in_place(self, e: Eqn) -> bool:
        """A reduction over short rows of a value computed by an elementwise group: the
        one-thread-per-output kernel recomputes the value at each row element (a prologue)
        instead of reading it back from memory (softmax's exp(x - max) is never stored)."""
        x = e.ins[0]
        if not isinstance(x, Var) or not isinstance(self.loc[x], LoopStep) or e.out.size == 0:
            return False
        axes = tuple(e.p["axes"])
        if size_of(tuple(x.shape[a] for a in axes)) > SMALL_REDUCTION:
            return False
        pro = LoopStep(tuple(x.shape))
        if not self._recompute(x, self.loc[x], pro):
            return False
        dst = self.new_slot(e.out.shape, e.out.dtype)
        src = View(-1, tuple(x.shape), c_strides(tuple(x.shape)), 0)
        step = ReduceStep(TABLE[e.op].combine, src, axes, dst, 1, prologue=pro, operand=x)
        self._push_final(step, e.out)
        self.loc[e.out] = View.whole(dst, e.out.shape)
        return True

    def _push_final(self, step: Union[ReduceStep, MatmulStep], out: Var) -> None:
        """Push a reduction or matmul that writes `out`; elementwise eqns of `out`'s shape
        that follow run in its kernel, per output element (an epilogue: a mean's division,
        a bias add and activation) until the next step."""
        self._push(step)
        ep = LoopStep(tuple(out.shape), is_epilogue=True)
        ep.defined.add(out)
        ep.slots_written.add(step.dst)
        step.epilogue, step.result = ep, out
        self.open = ep

    def _fused_full_reduction(self, e: Eqn) -> bool:
        """A reduction of a whole loop-shaped value: accumulated in the loop kernel itself.

        Each block of the loop kernel leaves one partial (its threads' strided sums, then a
        tree); a one-block kernel combines the partials. The loop's grid is fixed by its
        size, so the combine order is too.
        """
        x = e.ins[0]
        if not isinstance(x, Var) or e.out.size != 1 or len(e.p["axes"]) != len(x.shape) or x.size == 0:
            return False
        if numpy.dtype(e.out.dtype).kind not in "fiu" or numpy.dtype(e.out.dtype) != numpy.dtype(x.dtype):
            return False
        shape = tuple(x.shape)
        where = self.loc[x]
        if self.open is not None and self.open.is_epilogue:
            self._close()  # an epilogue has no grid-stride loop to accumulate in
        if isinstance(where, View):
            if where.is_lit:
                return False
            g = self._group_for(shape, [where])
            g.loads.setdefault(x, where)
        else:
            g = self._group_for(shape, [])
            if x not in g.defined and not self._recompute(x, where, g):
                g.loads.setdefault(x, self.view(x))
        blocks = min((x.size + self.tpb - 1) // self.tpb, self.max_blocks)
        partial = self.new_slot((blocks,), e.out.dtype)
        g.reductions.append((x, TABLE[e.op].combine, partial))
        g.slots_written.add(partial)
        dst = self.new_slot(e.out.shape, e.out.dtype)
        self._push_final(ReduceStep(TABLE[e.op].combine, View.whole(partial, (1, blocks)), (1,), dst, 1), e.out)
        self.loc[e.out] = View.whole(dst, e.out.shape)
        return True

    def index(self, e: Eqn) -> None:
        key = e.p["key"]
        gather = TABLE[e.op].index_form == "gather"
        x_shape = tuple(e.ins[0].shape) if gather else tuple(e.p["shape"])
        idx_vars = list(e.ins[1:])
        layout = _index_layout(key, x_shape, [tuple(v.shape) for v in idx_vars])
        data_shape = tuple(e.out.shape) if gather else tuple(e.ins[0].shape)
        if layout is None or layout[0] != data_shape:
            return self.host(e, f"{e.op.value}: index template {key!r} is not rendered for CUDA")
        if not gather and str(e.out.dtype) not in _ATOMIC_DTYPES:
            return self.host(e, f"{e.op.value}: no atomic add for {e.out.dtype}")
        bshape = layout[1]
        if gather:
            return self.gather(e, layout)
        src = self.view(e.ins[0])
        idx = [self.buffer_view(v).broadcast_to(bshape) for v in idx_vars]
        dst = self.new_slot(e.out.shape, e.out.dtype)
        whole = View.whole(dst, e.out.shape)
        self._close()
        fill = self._group_for(tuple(e.out.shape), [])
        fill.stores.append((View.of_lit(Lit(0, e.out.dtype), tuple(e.out.shape)), whole))
        fill.slots_written.add(dst)
        self._push(ScatterStep(src, idx, layout, dst, tuple(e.out.shape)))
        self._close()
        self.loc[e.out] = whole
        return None

    def gather(self, e: Eqn, layout: tuple) -> None:
        """GATHER as a load of a loop group over its result's shape (no kernel of its own)."""
        shape, bshape = tuple(e.out.shape), layout[1]
        x = self.buffer_view(e.ins[0])
        g0 = self.open
        identity = bshape == shape and g0 is not None and g0.shape == shape
        idx: list = []
        reads = [x]
        for v in e.ins[1:]:
            if identity and v in g0.defined and tuple(v.shape) == bshape:
                idx.append(v)
            else:
                iv = self.buffer_view(v).broadcast_to(bshape)
                idx.append(iv)
                reads.append(iv)
        g = self._group_for(shape, reads)
        if g is not g0:  # registers of another group are not visible here
            idx = [self.buffer_view(v).broadcast_to(bshape) if isinstance(v, Var) else v for v in idx]
        g.gathers[e.out] = GatherLoad(x, idx, layout)
        g.eqns.append(e)
        g.defined.add(e.out)
        self.loc[e.out] = g
        return None

    def host(self, e: Eqn, reason: str) -> None:
        ins = [a if isinstance(a, Lit) else self.view(a) for a in e.ins]
        dsts = []
        for o in e.outs:
            s = self.new_slot(o.shape, o.dtype, "host")
            dsts.append(s)
            self.loc[o] = View.whole(s, o.shape)
        gi = -1
        if TABLE[e.op].kind is Kind.GUARD:
            gi = self.guards
            self.guards += 1
        log.info("cuda: host step for %s: %s", e.op.value, reason)
        self._push(HostStep(e, ins, dsts, gi, reason))
        return None


def _mapped(v: View, m: list, shape: tuple[int, ...]) -> View:
    """The view of `v` through a row's affine index map (see ir.ops.IndexMap)."""
    if v.is_lit:
        return View.of_lit(v.lit, shape)
    strides, off = [0] * len(shape), v.offset
    for k, (d, step, start) in enumerate(m):
        off += v.strides[k] * start
        if d is not None:
            strides[d] += v.strides[k] * step
    return View(v.slot, shape, tuple(strides), off)


def _index_layout(key: tuple, x_shape: tuple[int, ...], idx_shapes: list[tuple[int, ...]]) -> Optional[tuple]:
    """How GATHER/SCATTER_ADD's key maps result positions to array positions, or None.

    Handled: keys of index arrays ("@") and full slices, the index arrays broadcast together.
    Returns (data_shape, bshape, items) where items are ("@", axis, j) and ("s", axis, out_dim)
    with out dims placed as numpy places them (adjacent index arrays stay in place, separated
    ones go first).
    """
    key = tuple(key) + ((None, None, None),) * (len(x_shape) - len(key))
    if len(key) != len(x_shape):
        return None
    adv = []
    for axis, k in enumerate(key):
        if k == "@":
            adv.append(axis)
        elif not (isinstance(k, tuple) and slice(*k).indices(x_shape[axis]) == (0, x_shape[axis], 1)):
            return None
    if not adv:
        return None
    try:
        bshape = tuple(numpy.broadcast_shapes(*idx_shapes))
    except ValueError:
        return None
    adjacent = adv == list(range(adv[0], adv[-1] + 1))
    slices = [a for a in range(len(x_shape)) if a not in adv]
    out_shape: list[int] = []
    items: list[tuple] = []
    if adjacent:
        before = [a for a in slices if a < adv[0]]
        after = [a for a in slices if a > adv[-1]]
        for a in before:
            items.append(("s", a, len(out_shape)))
            out_shape.append(x_shape[a])
        b0 = len(out_shape)
        out_shape.extend(bshape)
        for a in after:
            items.append(("s", a, len(out_shape)))
            out_shape.append(x_shape[a])
    else:
        b0 = 0
        out_shape.extend(bshape)
        for a in slices:
            items.append(("s", a, len(out_shape)))
            out_shape.append(x_shape[a])
    for j, a in enumerate(adv):
        items.append(("@", a, j))
    return (tuple(out_shape), bshape, tuple(items), b0)


__all__ = ["Plan", "Planner", "Slot", "LoopStep", "ReduceStep", "MatmulStep", "GatherLoad",
           "ScatterStep", "HostStep", "c_strides"]  # fmt: skip
