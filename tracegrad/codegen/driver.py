"""The per-program driver: a Python function generated from a `Program`'s step list.

`Program.__call__` runs the steps with a generic loop over slots; small programs (W4, W5:
a few microseconds of work) spend most of their time in that loop. `generate(program)`
writes the same logic as straight-line Python (one local variable per slot, constants and
functions bound as globals, every branch on the program's structure decided now), so a call
is: check and flatten the arguments, pick destinations or fresh buffers, call the kernels,
check guard codes, wrap the results. `Program.__call__` remains the reference; the tests
run both.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy

from ..errors import CompileError, GuardFailure
from ..ir.ops import fp_quiet
from . import pool

_KERNEL, _HOST = 0, 1


def _dtype_error(a: numpy.ndarray, dt: numpy.dtype) -> CompileError:
    return CompileError(f"argument dtype {a.dtype} differs from the traced {dt}")


class _Src:
    def __init__(self) -> None:
        self.env: dict[str, Any] = {
            "_empty": numpy.empty, "_contig": numpy.ascontiguousarray, "_asarray": numpy.asarray,
            "_matmul": fp_quiet(numpy.matmul), "_share": numpy.may_share_memory, "_GF": GuardFailure,
            "_dtype_error": _dtype_error, "_pool_run": pool.run,
        }
        self.ids: dict[int, str] = {}

    def const(self, obj: Any, prefix: str = "K") -> str:
        name = self.ids.get(id(obj))
        if name is None:
            name = f"{prefix}{len(self.ids)}"
            self.ids[id(obj)] = name
            self.env[name] = obj
        return name


def generate(prog: Any) -> tuple[Callable, str]:
    """(driver function `run(args, dests=None)`, its source) for `prog`."""
    s = _Src()
    L = ["def run(args, dests=None):"]
    w = L.append
    for j, (sl, dt) in enumerate(zip(prog.in_slots, prog.in_dtypes)):
        w(f"    a = args[{j}]")
        w(f"    if a.dtype != {s.const(dt, 'DT')}:")
        w(f"        raise _dtype_error(a, {s.const(dt, 'DT')})")
        if len(prog.plan.trace.inputs[j].shape) == 1:  # no reshape for a flat argument
            w(f"    e{sl} = a if a.ndim == 1 and a.flags.c_contiguous else _contig(a.reshape(-1))")
        else:
            w(f"    e{sl} = a.reshape(-1)")
            w(f"    if not e{sl}.flags.c_contiguous:")
            w(f"        e{sl} = _contig(e{sl})")
    bound = set(prog.in_slots)
    alloc = {sl: (n, dt) for sl, n, dt in prog.allocs}
    direct_outs = []
    if any(o[4] for o in prog.outs):
        w("    ds = (None,) * %d if dests is None else dests" % len(prog.outs))
    for j, (sl, shape, dt, pos, ok) in enumerate(prog.outs):
        if not ok or sl in bound:
            continue
        bound.add(sl)
        direct_outs.append(j)
        cond = [f"d{j} is not None", f"d{j}.dtype == {s.const(dt, 'DT')}", f"d{j}.shape == {shape!r}",
                f"d{j}.flags.c_contiguous"]
        cond += [f"not (args[{i}] is d{j} or _share(args[{i}], d{j}))" for i in prog.unsafe[j]]
        w(f"    d{j} = ds[{j}]")
        w(f"    if {' and '.join(cond)}:")
        w(f"        e{sl} = d{j}" if len(shape) == 1 else f"        e{sl} = d{j}.reshape(-1)")
        w(f"        x{j} = True")
        w("    else:")
        w(f"        x{j} = False")
        if sl in alloc:
            n, adt = alloc[sl]
            w(f"        e{sl} = _empty({n}, {s.const(adt, 'DT')})")
        else:
            w(f"        e{sl} = None")
    for sl, (n, dt) in alloc.items():
        if sl not in bound:
            bound.add(sl)
            w(f"    e{sl} = _empty({n}, {s.const(dt, 'DT')})")
    for sl, c in prog.consts:
        w(f"    e{sl} = {s.const(c, 'C')}")
    ind = "    "
    if prog.pooled:
        s.env["_free"] = prog._free
        pooled = list(prog.pooled)  # (not `prog`: no reference cycle program -> driver -> program)
        s.env["_newbufs"] = lambda: [numpy.empty(n, dt) for _, n, dt in pooled]
        w("    try:")
        w("        bufs = _free.pop()")
        w("    except IndexError:")
        w("        bufs = _newbufs()")
        w(f"    {', '.join(f'e{sl}' for sl, _, _ in prog.pooled)}, = bufs")
        w("    try:")
        ind = "        "
    body = _steps(prog, s)
    L += [ind + ln for ln in body]
    res = []
    for j, (sl, shape, dt, pos, ok) in enumerate(prog.outs):
        r = f"args[{pos}]" if pos >= 0 else (f"e{sl}" if len(shape) == 1 else f"e{sl}.reshape({shape!r})")
        if j in direct_outs:
            L.append(f"{ind}r{j} = d{j} if x{j} else {r}")
            L.append(f"{ind}if d{j} is not None and not x{j}:")
            L.append(f"{ind}    d{j}[...] = r{j}")
            L.append(f"{ind}    r{j} = d{j}")
        else:
            L.append(f"{ind}r{j} = {r}")
            L.append(f"{ind}if dests is not None and dests[{j}] is not None:")
            L.append(f"{ind}    dests[{j}][...] = r{j}")
            L.append(f"{ind}    r{j} = dests[{j}]")
        res.append(f"r{j}")
    L.append(f"{ind}return [{', '.join(res)}]")
    if prog.pooled:
        L.append("    finally:")
        L.append("        _free.append(bufs)")
    src = "\n".join(L)
    exec(compile(src, "<tracegrad.codegen driver>", "exec"), s.env)
    return s.env["run"], src


def _steps(prog: Any, s: _Src) -> list[str]:
    out: list[str] = []
    w = out.append
    for st in prog.steps:
        kind = st[0]
        if kind == _KERNEL:
            _, fn, slots, parts, fin, gmap, units, parallel, extra = st
            f = s.const(fn, "F")
            args = ", ".join([f"e{sl}" for sl in slots] + [s.const(x, "Z") for x in extra])
            if not parallel:
                w(f"c = {f}({args})")
                w("if c >= 0:")
                for g, (sl, seen) in sorted(gmap.items()):
                    if sl >= 0:
                        w(f"    if c == {g}:")
                        w(f"        raise _GF(c, e{sl}[0].item())")
                seen_of = {g: seen for g, (sl, seen) in gmap.items() if sl < 0}
                w(f"    raise _GF(c, {s.const(seen_of, 'GS')}[c])")
                continue
            ps = [f"p{j}" for j in range(len(parts))]
            for p, (n, dt) in zip(ps, parts):
                w(f"{p} = _empty({n}, {s.const(dt, 'DT')})")
            w(f"_pool_run({f}, [{', '.join([f'e{sl}' for sl in slots] + [s.const(x, 'Z') for x in extra] + ps)}], {units})")
            for p, (combine, sl, dt) in zip(ps, fin):
                w(f"e{sl}[0] = {s.const(dt.type, 'T')}({s.const(combine, 'R')}({p}))")
        elif kind == _HOST:
            _, impl, ops, outs, params, mm = st
            vals = []
            for sl, c, shape in ops:
                if sl is None:
                    vals.append(s.const(c, "V"))
                else:
                    vals.append(f"e{sl}" if shape is None else f"e{sl}.reshape({shape!r})")
            if mm is not None:
                w(f"_matmul({', '.join(vals)}, out=e{outs[0][0]}.reshape({mm!r}))")
                continue
            kw = f", **{s.const(params, 'P')}" if params else ""
            w(f"r = {s.const(impl, 'H')}({', '.join(vals)}{kw})")
            if len(outs) > 1:
                w(f"{', '.join(f'r{j}_' for j in range(len(outs)))}, = r")
            for j, (sl, dt, view) in enumerate(outs):
                src = "r" if len(outs) == 1 else f"r{j}_"
                d = s.const(dt, "DT")
                w(f"e{sl} = _asarray({src}, dtype={d})" if view else f"e{sl} = _contig(_asarray({src}, dtype={d})).reshape(-1)")
        else:
            _, sl, index, expect = st
            if sl is None:
                w(f"raise _GF({index}, {s.const(expect, 'V')})")
                continue
            w(f"g = e{sl}[0].item()")
            w(f"if g != {s.const(expect, 'V')}:")
            w(f"    raise _GF({index}, g)")
    return out
