"""The fusion plan: which values are realized, which kernels compute them, in what order.

The plan is target-independent. `plan(trace)` runs the IR pass pipeline, then

1. decides the *realized* values (held in memory): trace outputs, reduction results, host
   step results (matmul, gather, scatter_add, concatenate, slice_vjp, host callbacks),
   guard operands, and the operands host steps need as arrays. Every other elementwise or
   layout value (broadcast_to, reshape, transpose, slice) is *inline*: recomputed inside each
   kernel that reads it, through index maps, never stored;
2. groups realized loop values into kernels: a kernel is one loop nest over a domain shape,
   computing elementwise values at the identity index and any number of reductions over
   that domain (the reduction's producers fused in). A value joins the earliest kernel of
   its domain that comes after everything it reads; reading a value computed in the same
   kernel is allowed only at the identity index (and never a reduction's result);
3. realizes an inline value that several kernels would recompute when its cost is high;
4. builds each kernel's body as a list of scalar statements (`Load`, `Compute`, `Store`,
   `Accumulate`) with index expressions in Python integer syntax over the loop variables
   (`i` for a flat loop, `i0, i1, ...` for a loop nest), which renderers (Numba CPU here, a
   numba-cuda one later) turn into source text.

Buffers are flat and C-ordered: a value's element at coordinates c lives at the linear
index sum(c[k] * stride[k]), so reshape is free and every kernel argument is 1-d.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy

from ..errors import CompileError
from ..ir.core import Eqn, Lit, Trace, Var
from ..ir.ops import TABLE, Kind
from ..ir.passes import optimize

LOOP_DTYPES = frozenset(
    numpy.dtype(d) for d in ("float32", "float64", "int8", "uint8", "int32", "int64", "bool")
)
CHUNK = 1 << 14  # elements per work unit of a flat loop (fixed: results do not depend on threads)
RECOMPUTE_LIMIT = 12  # inline cost above which a value read by several kernels is realized


def _inline_layout(e: Eqn) -> bool:
    """A view: recomputed through its row's index map wherever it is read."""
    return TABLE[e.op].index_map is not None


def _loop_reduction(e: Eqn) -> bool:
    return TABLE[e.op].combine is not None


# ---- index expressions ---------------------------------------------------------------
def strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    out, s = [], 1
    for n in reversed(shape):
        out.append(s)
        s *= n
    return tuple(reversed(out))


class Idx:
    """An index into a value of `shape`: per-dim coordinates and/or a linear expression."""

    __slots__ = ("shape", "_coords", "_lin", "root")

    def __init__(self, shape, coords=None, lin=None, root=None) -> None:
        self.shape = tuple(shape)
        self._coords = None if coords is None else list(coords)
        self._lin = lin
        self.root = root  # the kernel's root index (to flag flat loops that need coords)

    def size(self) -> int:
        return int(numpy.prod(self.shape, dtype=numpy.int64))

    def lin(self) -> str:
        if self._lin is None:
            terms = [
                c if s == 1 else f"{c} * {s}"
                for c, s, n in zip(self._coords, strides(self.shape), self.shape)
                if n != 1 and c != "0"
            ]
            self._lin = " + ".join(terms) if terms else "0"
        return self._lin

    def coords(self) -> list[str]:
        if self._coords is None:
            if self.root is not None:
                self.root.need_coords = True
            lin = self._lin if _atomic(self._lin) else f"({self._lin})"
            cs = []
            for k, (n, s) in enumerate(zip(self.shape, strides(self.shape))):
                if n == 1:
                    cs.append("0")
                    continue
                c = lin if s == 1 else f"{lin} // {s}"
                if k > 0 and any(m != 1 for m in self.shape[:k]):
                    c = f"({c}) % {n}"
                cs.append(f"({c})")
            self._coords = cs
        return list(self._coords)


def _atomic(s: str) -> bool:
    return s.isidentifier() or s.isdigit()


class Root:
    __slots__ = ("need_coords",)

    def __init__(self) -> None:
        self.need_coords = False


def map_index(e: Eqn, idx: Idx, root: Optional[Root], generic: bool = False) -> Idx:
    """The operand index a layout eqn reads for output index `idx`. `generic`: sizes are
    runtime values, so a flat loop does not broadcast by `i % size` (a division per
    element); the coordinates it then needs make the kernel a loop nest."""
    x = e.ins[0]
    if isinstance(x, Lit):  # a splat constant: every index reads the same literal
        return Idx((), lin="0", root=root)
    xs = tuple(x.shape)
    row = TABLE[e.op]
    if row.index_map is None:
        raise CompileError(f"internal: {e.op.value} is not an index map")
    m = row.index_map(xs, tuple(idx.shape), **e.p)
    if m is None:  # the linear index is kept
        return Idx(xs, lin=idx.lin(), root=root)
    if x.size == 1:
        return Idx(xs, lin="0", root=root)
    lead = len(idx.shape) - len(xs)
    if idx._lin == "i" and xs == tuple(idx.shape[lead:]) and all(
            mk == (lead + k, 1, 0) for k, mk in enumerate(m)) and (not generic or x.size == idx.size()):
        # the operand is the trailing dims of the result, in a flat loop: no coordinates needed
        lin = idx.lin()
        return Idx(xs, lin=lin if x.size == idx.size() else f"({lin}) % {x.size}", root=root)
    c = idx.coords()
    xc = []
    for d, step, start in m:
        if d is None:
            xc.append(str(start))
            continue
        term = c[d] if step == 1 else f"{c[d]} * {step}"
        xc.append(f"({start} + {term})" if start else (term if step == 1 else f"({term})"))
    return Idx(xs, coords=xc, root=root)


# ---- plan data ---------------------------------------------------------------------------
@dataclass
class Load:
    name: str
    var: Var
    index: str


@dataclass
class Compute:
    name: str
    eqn: Eqn
    args: list  # local names (str) or Lit


@dataclass
class Store:
    var: Var
    index: str
    value: Union[str, Lit]


@dataclass
class Accumulate:
    red: int  # position in Kernel.reductions
    value: Union[str, Lit]


@dataclass
class Reduction:
    eqn: Eqn
    axes: tuple[int, ...]
    combine: str  # the row's combine: add / max / min / mul
    form: str = ""  # "full", "suffix" (axes = trailing dims from `start`) or "array"
    start: int = 0
    kept_lin: str = "0"


@dataclass
class Kernel:
    name: str
    domain: tuple[int, ...]
    values: list[Var] = field(default_factory=list)  # elementwise values stored here
    reductions: list[Reduction] = field(default_factory=list)
    parallel: bool = False
    nested: bool = False
    root_lin: str = "i"
    units: int = 1
    body: list = field(default_factory=list)
    reads: list[Var] = field(default_factory=list)  # realized buffers it loads
    writes: list[Var] = field(default_factory=list)  # buffers it stores (values, then reductions)

    @property
    def size(self) -> int:
        return int(numpy.prod(self.domain, dtype=numpy.int64))


@dataclass
class HostStep:
    """An eqn run with the op table's numpy rule between kernels (matmul goes to BLAS)."""

    eqn: Eqn
    view: bool = False  # a layout op producing a numpy view for another host step


@dataclass
class GuardStep:
    var: Var
    expect: Any
    index: int
    where: str


Step = Union[Kernel, HostStep, GuardStep]


@dataclass
class Plan:
    trace: Trace  # the optimized trace
    steps: list
    realized: set
    views: set
    n_guards: int
    generic: bool = False  # sizes are runtime arguments of the generated functions

    def kernels(self) -> list[Kernel]:
        return [s for s in self.steps if isinstance(s, Kernel)]

    def __str__(self) -> str:
        return format_plan(self)


# ---- planning ------------------------------------------------------------------------
def plan(trace: Trace, par_min: int = 1 << 19, generic: bool = False) -> Plan:
    """The fusion plan of `trace`; raises CompileError for what the loops cannot express.
    `generic`: the renderer passes sizes as runtime arguments (see `map_index`)."""
    t = optimize(trace)
    for v in list(t.inputs) + [o for e in t.eqns for o in e.outs]:
        if numpy.dtype(v.dtype) not in LOOP_DTYPES:
            raise CompileError(f"dtype {v.dtype} is not supported by the compiled loops")
    producer = {o: e for e in t.eqns for o in e.outs}
    inputs = set(t.inputs)
    realized, views = _realize(t, producer, inputs)
    for _ in range(4):
        steps, kernel_of, users = _group(t, producer, inputs, realized, views, par_min, generic)
        extra = {v for v, ks in users.items() if len(ks) > 1 and _cost(v, producer, realized, inputs) > RECOMPUTE_LIMIT}
        if not extra:
            break
        realized |= extra
    for k in steps:
        if isinstance(k, Kernel):
            _build_body(k, producer, realized, inputs, views, kernel_of, steps, generic)
    steps = _place_guards(t, steps, kernel_of)
    n_guards = sum(1 for e in t.eqns if TABLE[e.op].kind is Kind.GUARD)
    return Plan(t, steps, realized, views, n_guards, generic)


def _loop_kind(e: Eqn) -> str:
    row = TABLE[e.op]
    if row.kind is Kind.GUARD:
        return "guard"
    if row.kind is Kind.ELEMENTWISE and row.render is not None:
        return "inline"
    if row.index_map is not None:
        return "inline"
    if row.combine is not None and numpy.dtype(e.out.dtype) != numpy.dtype(bool) and e.p["axes"]:
        return "reduce"
    return "host"


def _realize(t: Trace, producer: dict, inputs: set) -> tuple[set, set]:
    realized: set = set(o for o in t.outputs if o not in inputs)
    views: set = set()
    for e in t.eqns:
        k = _loop_kind(e)
        if k in ("reduce", "host"):
            realized.update(e.outs)
        if k == "guard" and isinstance(e.ins[0], Var) and e.ins[0] not in inputs:
            realized.add(e.ins[0])

    def need_array(a: Any) -> None:
        if not isinstance(a, Var) or a in inputs or a in realized or a in views:
            return
        e = producer[a]
        if _inline_layout(e):
            views.add(a)
            need_array(e.ins[0])
        else:
            realized.add(a)

    for e in t.eqns:
        if _loop_kind(e) == "host":
            for a in e.ins:
                need_array(a)
    return realized, views


def _cost(v: Var, producer: dict, realized: set, inputs: set, seen=None) -> int:
    seen = set() if seen is None else seen
    if not isinstance(v, Var) or v in realized or v in inputs or v in seen:
        return 0
    seen.add(v)
    e = producer[v]
    return TABLE[e.op].cost + sum(_cost(a, producer, realized, inputs, seen) for a in e.ins)


def _domain(e: Eqn) -> tuple[int, ...]:
    return tuple(e.ins[0].shape) if _loop_reduction(e) else tuple(e.out.shape)


def _walk(v: Any, idx: Idx, producer: dict, realized: set, inputs: set, out: set, inl: set, memo: set,
          generic: bool = False) -> None:
    """Realized values read (with their linear index) while evaluating `v` at `idx`."""
    if not isinstance(v, Var):
        return
    key = (v, idx.lin())
    if key in memo:
        return
    memo.add(key)
    if v in realized or v in inputs:
        out.add(key)
        return
    inl.add(v)
    e = producer[v]
    if _inline_layout(e):
        _walk(e.ins[0], map_index(e, idx, None, generic), producer, realized, inputs, out, inl, memo, generic)
    else:
        for a in e.ins:
            _walk(a, idx, producer, realized, inputs, out, inl, memo, generic)


def _group(t, producer, inputs, realized, views, par_min, generic=False):
    steps: list = []
    kernel_of: dict = {}
    users: dict = {}  # inline value -> kernels evaluating it
    for e in t.eqns:
        kind = _loop_kind(e)
        if kind == "guard":
            continue
        if kind == "host" or (e.out in views):
            steps.append(HostStep(e, view=e.out in views))
            for o in e.outs:
                kernel_of[o] = len(steps) - 1
            continue
        v = e.out
        if kind == "inline" and v not in realized:
            continue
        dom = _domain(e)
        root = Idx(dom, lin="i")
        deps: set = set()
        inl: set = set()
        memo: set = set()
        if kind == "reduce":
            _walk(e.ins[0], root, producer, realized, inputs, deps, inl, memo, generic)
        else:
            # the value itself is computed here: walk its producer's operands
            if _inline_layout(e):
                _walk(e.ins[0], map_index(e, root, None, generic), producer, realized, inputs, deps, inl, memo,
                      generic)
            else:
                for a in e.ins:
                    _walk(a, root, producer, realized, inputs, deps, inl, memo, generic)
        lower = 0
        for d, lin in deps:
            p = kernel_of.get(d)
            if p is None:
                continue
            s = steps[p]
            same_ok = isinstance(s, Kernel) and s.domain == dom and lin == "i" and d in s.values
            lower = max(lower, p if same_ok else p + 1)
        target = None
        for q in range(lower, len(steps)):
            s = steps[q]
            if isinstance(s, Kernel) and s.domain == dom:
                target = q
                break
        if target is None:
            steps.append(Kernel(f"k{len(steps)}", dom))
            target = len(steps) - 1
        k = steps[target]
        if kind == "reduce":
            k.reductions.append(Reduction(e, tuple(e.p["axes"]), TABLE[e.op].combine))
        else:
            k.values.append(v)
        kernel_of[v] = target
        for u in inl:
            users.setdefault(u, set()).add(target)
    for i, s in enumerate(steps):
        if isinstance(s, Kernel):
            s.name = f"k{i}"
            s.parallel = s.size >= par_min
    return steps, kernel_of, users


def _place_guards(t: Trace, steps: list, kernel_of: dict) -> list:
    """Each guard goes after the step computing its operand and after the guard before it,
    so guards are checked in trace order: the first failing one is the interpreter's."""
    after: dict[int, list] = {}
    gi = 0
    last = -1
    for e in t.eqns:
        if TABLE[e.op].kind is not Kind.GUARD:
            continue
        x = e.ins[0]
        pos = kernel_of.get(x, -1) if isinstance(x, Var) else -1
        pos = last = max(pos, last)
        after.setdefault(pos, []).append(GuardStep(x, e.p["expect"], gi, e.p.get("where", "")))
        gi += 1
    out = list(after.get(-1, []))
    for i, s in enumerate(steps):
        out.append(s)
        out.extend(after.get(i, []))
    return out


# ---- kernel bodies -----------------------------------------------------------------------
class _Body:
    def __init__(self, k: Kernel, producer, realized, inputs, kernel_of, steps, root: Idx, rootflag: Root,
                 generic: bool = False):
        self.generic = generic
        self.k, self.producer, self.realized, self.inputs = k, producer, realized, inputs
        self.kernel_of, self.steps = kernel_of, steps
        self.root, self.rootflag = root, rootflag
        self.stmts: list = []
        self.memo: dict = {}
        self.reads: dict = {}
        self.n = 0
        self.here = set(k.values)

    def fresh(self) -> str:
        self.n += 1
        return f"t{self.n}"

    def value(self, v: Any, idx: Idx) -> Union[str, Lit]:
        if isinstance(v, Lit):
            return v
        key = (v, idx.lin())
        if key in self.memo:
            return self.memo[key]
        if v in self.here:
            if idx.lin() != self.root.lin():
                raise CompileError(f"internal: {v.aval()} read at a non-identity index in its own kernel")
            r = self.compute(v, idx)
        elif v in self.realized or v in self.inputs:
            self.reads.setdefault(v, None)
            r = self.fresh()
            self.stmts.append(Load(r, v, idx.lin()))
        else:
            r = self.compute(v, idx)
        self.memo[key] = r
        return r

    def compute(self, v: Var, idx: Idx) -> Union[str, Lit]:
        e = self.producer[v]
        if _inline_layout(e):
            return self.value(e.ins[0], map_index(e, idx, self.rootflag, self.generic))
        args = [self.value(a, idx) for a in e.ins]
        name = self.fresh()
        self.stmts.append(Compute(name, e, args))
        return name


def _build_body(k: Kernel, producer, realized, inputs, views, kernel_of, steps, generic: bool = False) -> None:
    nested = any(set(r.axes) != set(range(len(k.domain))) for r in k.reductions)
    for attempt in range(2):
        flag = Root()
        if nested:
            root = Idx(k.domain, coords=[f"i{d}" for d in range(len(k.domain))], root=flag)
        else:
            root = Idx(k.domain, lin="i", root=flag)
        b = _Body(k, producer, realized, inputs, kernel_of, steps, root, flag, generic)
        for v in k.values:
            b.stmts.append(Store(v, root.lin(), b.value(v, root)))
        for j, r in enumerate(k.reductions):
            b.stmts.append(Accumulate(j, b.value(r.eqn.ins[0], root)))
        if nested or not flag.need_coords:
            break
        nested = True
    k.nested = nested
    k.root_lin = root.lin()
    k.body = b.stmts
    k.reads = list(b.reads)
    k.writes = list(k.values) + [r.eqn.out for r in k.reductions]
    nd = len(k.domain)
    for r in k.reductions:
        axes = set(r.axes)
        if axes == set(range(nd)):
            r.form = "full"
        elif axes == set(range(min(axes), nd)):
            r.form, r.start = "suffix", min(axes)
        else:
            r.form = "array"
        kept = [d for d in range(nd) if d not in axes]
        kshape = tuple(k.domain[d] for d in kept)
        r.kept_lin = Idx(kshape, coords=[f"i{d}" for d in kept]).lin() if kept else "0"
    # work units: chunks of CHUNK elements (flat) or outer iterations (nest). A full
    # reduction keeps one partial per unit, combined in unit order after the loop, so any
    # split of the units over threads gives the same bits.
    if nested:
        k.units = k.domain[0] if k.domain else 1
    else:
        k.units = -(-k.size // CHUNK) if k.size else 0
    if any(r.form == "array" for r in k.reductions) or k.units < 2:
        k.parallel = False


# ---- printing --------------------------------------------------------------------------
def format_plan(p: Plan) -> str:
    """A readable listing of the plan's steps (the `explain_compile` output's first part)."""
    names: dict = {}

    def nm(v: Any) -> str:
        if isinstance(v, Lit):
            return str(v)
        if v not in names:
            names[v] = f"%{len(names)}"
        return names[v]

    for v in p.trace.inputs:
        nm(v)
    lines = [f"plan: {len(p.kernels())} kernel(s), {len(p.steps)} step(s); inputs "
             + " ".join(f"{nm(v)}:{v.aval()}" for v in p.trace.inputs)]
    for s in p.steps:
        if isinstance(s, Kernel):
            form = ("parallel " if s.parallel else "serial ") + ("nest" if s.nested else "flat")
            lines.append(f"  kernel {s.name} over {list(s.domain)} ({form}, {s.units} units, {len(s.body)} stmts)")
            lines.append("    reads  " + " ".join(f"{nm(v)}:{v.aval()}" for v in s.reads))
            lines.append("    writes " + " ".join(f"{nm(v)}:{v.aval()}" for v in s.values))
            for r in s.reductions:
                lines.append(f"    reduce {r.combine} axes={r.axes} ({r.form}) -> {nm(r.eqn.out)}:{r.eqn.out.aval()}")
        elif isinstance(s, HostStep):
            e = s.eqn
            what = "view" if s.view else "host"
            lines.append(f"  {what} {e.op.value} " + " ".join(nm(a) for a in e.ins)
                         + " -> " + " ".join(f"{nm(o)}:{o.aval()}" for o in e.outs))
        else:
            lines.append(f"  guard #{s.index} {nm(s.var)} == {s.expect!r}")
    lines.append("  outputs " + " ".join(nm(o) for o in p.trace.outputs))
    return "\n".join(lines)
