"""Programs: a compiled plan with pre-built argument lists, called once per step.

A `Program` holds one slot per buffer. A call fills the input slots (flat views of the
arguments), points output slots at their destination buffers when that is safe, allocates
the other temporaries, then runs the steps: Numba kernels, numpy host steps (matmul goes to
BLAS) and guard checks. When the trace has guards, every output is computed into a
temporary and copied to its destination only after all guards passed, so a failed guard
(`GuardFailure`) leaves every destination untouched.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy

from ..errors import CompileError, GuardFailure
from ..ir.core import Lit, Var
from ..ir.ops import TABLE, Kind
from . import pool
from .fusion import GuardStep, HostStep, Kernel, Load, Plan

_KERNEL, _HOST, _GUARD = 0, 1, 2
_COMBINE = {"add": numpy.add.reduce, "max": numpy.maximum.reduce, "min": numpy.minimum.reduce,
            "mul": numpy.multiply.reduce}


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
                steps.append((_KERNEL, fn, [slot(v) for v in c.args], c.parts, fin, None, c.units, c.parallel))
            elif isinstance(s, HostStep):
                e = s.eqn
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
                x = s.var
                if isinstance(x, Lit):
                    if x.value != s.expect:
                        steps.append((_GUARD, None, s.index, x.value))
                    continue
                steps.append((_GUARD, slot(x), s.index, s.expect))
        self.steps = steps
        self.has_guards = plan.n_guards > 0
        self.nslots = len(slots) + 1
        allocs = []
        for v in slots:
            if v in inputs or v in plan.views:
                continue
            if any(v in s.writes for s in plan.kernels()) or v in written_at:
                allocs.append((slots[v], v.size, numpy.dtype(v.dtype)))
        self.allocs = allocs
        # outputs: (slot, shape, dtype, input position or -1, direct-writable)
        self.outs = []
        self.unsafe: list[list[int]] = []
        for o in t.outputs:
            pos = t.inputs.index(o) if o in inputs else -1
            direct = (not self.has_guards) and o in written_at
            self.outs.append((slot(o), tuple(o.shape), numpy.dtype(o.dtype), pos, direct))
            self.unsafe.append(self._unsafe_inputs(o, written_at.get(o, -1)) if direct else [])

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

    def __call__(self, args: Sequence[numpy.ndarray], dests: Optional[Sequence[Optional[numpy.ndarray]]] = None) -> list:
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
        for s, n, dt in self.allocs:
            if env[s] is None:
                env[s] = numpy.empty(n, dt)
        for st in self.steps:
            kind = st[0]
            if kind == _KERNEL:
                a = [env[s] for s in st[2]]
                if not st[7]:
                    st[1](*a)
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
                        numpy.matmul(*vals, out=env[s].reshape(st[5]))
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
