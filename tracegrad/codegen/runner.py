"""Programs: a compiled plan with pre-built argument lists, called once per step.

A `Program` holds one slot per buffer. A call fills the input slots (flat views of the
arguments), points output slots at their destination buffers when that is safe, allocates
the other temporaries (small ones are kept by the program and reused: outputs returned
without a destination are always fresh arrays), then runs the steps: Numba kernels, numpy
host steps (matmul goes to BLAS) and guard checks. Guards that follow serial kernels are
checked inside the generated function, which returns the failing guard's index before any
later kernel runs. An output written before the last guard is computed into a temporary
and copied to its destination only after all guards passed, so a failed guard
(`GuardFailure`) leaves every destination untouched.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy

from ..errors import CompileError, GuardFailure
from ..ir.core import Lit, Var
from ..ir.ops import TABLE, Kind, fp_quiet
from . import driver, pool
from .fusion import HostStep, Kernel, Load, Plan

_KERNEL, _HOST, _GUARD = 0, 1, 2
POOL_BYTES = 1 << 12  # temporaries up to this size are kept by the program between calls
# numpy calls between kernels follow the floating-point warnings policy (ir.ops.fp_quiet)
_COMBINE = {"add": fp_quiet(numpy.add.reduce), "max": fp_quiet(numpy.maximum.reduce),
            "min": fp_quiet(numpy.minimum.reduce), "mul": fp_quiet(numpy.multiply.reduce)}
_matmul = fp_quiet(numpy.matmul)


class Program:
    """A runnable compiled trace: `program(args, dests) -> outputs`."""

    def __init__(self, plan: Plan, module: Any, source: str, calls: list) -> None:
        self.plan = plan
        self.source = source
        t = plan.trace
        slots: dict[Var, int] = {}

        def slot(v: Var) -> int:
            if v not in slots:
                slots[v] = len(slots)
            return slots[v]

        self.in_slots = [slot(v) for v in t.inputs]
        self.in_dtypes = [numpy.dtype(v.dtype) for v in t.inputs]
        inputs = set(t.inputs)
        steps: list[tuple] = []
        written_at: dict[Var, int] = {}
        guard_at = -1  # the plan step of the last guard
        consts: dict[Var, Any] = {}  # host step results computed once, from literals only
        outputs = set(t.outputs)
        self.consts: list[tuple[int, Any]] = []
        call_of = {id(k): c for c in calls for k in c.kernels}
        for i, s in enumerate(plan.steps):
            if isinstance(s, Kernel):
                for v in s.writes:
                    written_at[v] = i
                c = call_of[id(s)]
                if c.kernels[0] is not s:
                    continue  # a later kernel of a segment: runs in the segment's call
                fn = getattr(module, c.name)
                fin = [(_COMBINE[cb], slot(v), numpy.dtype(v.dtype)) for cb, v in zip(c.fin or (), c.fin_args)]
                # guard index -> (slot to read the seen value from, or -1: the seen value)
                gmap = {g.index: (-1, not g.expect) if g.var in c.local else (slot(g.var), None) for g in c.guards}
                steps.append((_KERNEL, fn, [slot(v) for v in c.args], c.parts, fin, gmap, c.units, c.parallel,
                              c.extra))
            elif isinstance(s, HostStep):
                e = s.eqn
                if self._fold(e, s.view, slot, consts, outputs):
                    continue
                ops = []
                for a in e.ins:
                    if isinstance(a, Lit):
                        ops.append((None, a.dtype.type(a.value), None))
                    else:
                        ops.append((slot(a), None, None if a in plan.views else tuple(a.shape)))
                outs = [(slot(o), numpy.dtype(o.dtype), o in plan.views) for o in e.outs]
                mm = TABLE[e.op].kind is Kind.MATMUL
                steps.append((_HOST, TABLE[e.op].impl, ops, outs, e.p, tuple(e.out.shape) if mm else None))
                if mm:  # numpy.matmul(..., out=dest): BLAS writes the destination directly
                    written_at[e.out] = i
            else:
                guard_at = i
                if any(g is s for c in calls for g in c.guards):
                    continue  # checked inside its segment's function
                x = s.var
                if isinstance(x, Lit):
                    if x.value != s.expect:
                        steps.append((_GUARD, None, s.index, x.value))
                    continue
                steps.append((_GUARD, slot(x), s.index, s.expect))
        self.steps = steps
        self.has_guards = plan.n_guards > 0
        self.nslots = len(slots) + 1
        # temporaries: small ones come from a per-program free list (reused across calls,
        # one set per concurrent call), large ones and outputs are allocated per call
        allocs, pooled = [], []
        callback_ins = {a for st in plan.steps if isinstance(st, HostStep) and TABLE[st.eqn.op].effects for a in st.eqn.ins}
        for v in slots:
            if v in inputs or v in plan.views:
                continue
            if any(v in s.writes for s in plan.kernels()) or v in written_at:
                # (a host callback could hand its operand back as its result: not kept)
                small = v.size * numpy.dtype(v.dtype).itemsize <= POOL_BYTES and v not in callback_ins
                (pooled if small and v not in outputs else allocs).append((slots[v], v.size, numpy.dtype(v.dtype)))
        self.allocs = allocs
        self.pooled = pooled
        self._free: list[list] = []
        # outputs: (slot, shape, dtype, input position or -1, direct-writable); an output
        # written after the last guard may go straight to its destination
        self.outs = []
        self.unsafe: list[list[int]] = []
        for o in t.outputs:
            pos = t.inputs.index(o) if o in inputs else -1
            direct = o in written_at and written_at[o] > guard_at
            self.outs.append((slot(o), tuple(o.shape), numpy.dtype(o.dtype), pos, direct))
            self.unsafe.append(self._unsafe_inputs(o, written_at.get(o, -1)) if direct else [])
        self.run, self.driver_source = driver.generate(self)

    def __call__(self, args: Sequence[numpy.ndarray], dests: Optional[Sequence[Optional[numpy.ndarray]]] = None) -> list:
        """Run the program (the generated driver): outputs with a destination go into it."""
        return self.run(args, dests)

    def _fold(self, e: Any, view: bool, slot: Any, consts: dict, outputs: set) -> bool:
        """Run a host step whose operands are all literals (or folded) now, once: its result
        is the same on every call (e.g. the cotangent 1.0 scattered by slice_vjp). Results
        that are trace outputs are not folded (the caller gets fresh arrays)."""
        if TABLE[e.op].effects or any(o in outputs or o.size * o.dtype.itemsize > POOL_BYTES for o in e.outs):
            return False
        if not all(isinstance(a, Lit) or a in consts for a in e.ins):
            return False
        vals = [a.dtype.type(a.value) if isinstance(a, Lit) else consts[a] for a in e.ins]
        out = TABLE[e.op].impl(*vals, **e.p)
        if len(e.outs) == 1:
            out = (out,)
        for o, r in zip(e.outs, out):
            r = numpy.array(r, dtype=o.dtype)  # a private copy (never a view of a literal)
            consts[o] = r
            self.consts.append((slot(o), r if view else r.reshape(-1)))
        return True

    def _unsafe_inputs(self, o: Var, at: int) -> list[int]:
        """Input positions whose buffer must not be the destination of output `o`."""
        t = self.plan.trace
        bad = []
        for pos, x in enumerate(t.inputs):
            if x.size != o.size:
                continue
            for i, s in enumerate(self.plan.steps):
                if isinstance(s, Kernel) and x in s.reads:
                    if i > at:
                        bad.append(pos)
                        break
                    if i == at and any(isinstance(b, Load) and b.var is x and b.index != s.root_lin for b in s.body):
                        bad.append(pos)
                        break
                elif isinstance(s, HostStep) and x in s.eqn.ins and (i > at or s.view):
                    bad.append(pos)  # (numpy.matmul itself handles an `out` overlapping its operands)
                    break
        return bad

    def call_generic(self, args: Sequence[numpy.ndarray], dests: Optional[Sequence[Optional[numpy.ndarray]]] = None) -> list:
        """The reference runner: the same steps as the driver, by a loop over slots."""
        env: list[Any] = [None] * self.nslots
        for s, a, dt in zip(self.in_slots, args, self.in_dtypes):
            if a.dtype != dt:
                raise CompileError(f"argument dtype {a.dtype} differs from the traced {dt}")
            f = a.reshape(-1)
            env[s] = f if f.flags.c_contiguous else numpy.ascontiguousarray(f)
        direct = None
        if dests is not None:
            for j, (s, shape, dt, pos, ok) in enumerate(self.outs):
                d = dests[j]
                if not ok or d is None or env[s] is not None:
                    continue
                if d.dtype != dt or d.shape != shape or not d.flags.c_contiguous:
                    continue
                if any(args[i] is d or numpy.may_share_memory(args[i], d) for i in self.unsafe[j]):
                    continue
                env[s] = d.reshape(-1)
                if direct is None:
                    direct = set()
                direct.add(j)
        for s, c in self.consts:
            env[s] = c
        for s, n, dt in self.allocs:
            if env[s] is None:
                env[s] = numpy.empty(n, dt)
        if self.pooled:
            try:
                bufs = self._free.pop()
            except IndexError:
                bufs = [numpy.empty(n, dt) for _, n, dt in self.pooled]
            for (s, _, _), b in zip(self.pooled, bufs):
                env[s] = b
            try:
                return self._run(env, args, dests, direct)
            finally:
                self._free.append(bufs)
        return self._run(env, args, dests, direct)

    def _run(self, env: list, args: Sequence[numpy.ndarray], dests: Any, direct: Optional[set]) -> list:
        for st in self.steps:
            kind = st[0]
            if kind == _KERNEL:
                a = [env[s] for s in st[2]] + st[8]
                if not st[7]:
                    code = st[1](*a)
                    if code >= 0:
                        s, seen = st[5][code]
                        raise GuardFailure(code, seen if s < 0 else env[s][0].item())
                    continue
                ps = [numpy.empty(n, dt) for n, dt in st[3]]
                a += ps
                pool.run(st[1], a, st[6])
                for p, (combine, s, dt) in zip(ps, st[4]):  # partials in unit order
                    env[s][0] = dt.type(combine(p))
            elif kind == _HOST:
                vals = [c if s is None else (env[s] if shape is None else env[s].reshape(shape)) for s, c, shape in st[2]]
                if st[5] is not None:
                    s = st[3][0][0]
                    if env[s] is not None:
                        _matmul(*vals, out=env[s].reshape(st[5]))
                        continue
                out = st[1](*vals, **st[4])
                if len(st[3]) == 1:
                    out = (out,)
                for (s, dt, view), r in zip(st[3], out):
                    r = numpy.asarray(r, dtype=dt)
                    env[s] = r if view else numpy.ascontiguousarray(r).reshape(-1)
            else:
                if st[1] is None:
                    raise GuardFailure(st[2], st[3])
                seen = env[st[1]][0].item()
                if seen != st[3]:
                    raise GuardFailure(st[2], seen)
        results = []
        for j, (s, shape, dt, pos, ok) in enumerate(self.outs):
            r = args[pos] if pos >= 0 else env[s].reshape(shape)
            d = None if dests is None else dests[j]
            if d is not None:
                if direct is None or j not in direct:
                    d[...] = r
                r = d
            results.append(r)
        return results
