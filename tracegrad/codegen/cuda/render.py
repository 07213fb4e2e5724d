"""Python source of numba-cuda kernels for the steps of a launch plan.

Every buffer a kernel touches is a flat 1-D device array named `b<slot>`; shapes, strides
and sizes are literals in the source (a plan is built per trace, whose shapes are fixed).
Values keep their trace dtype: literals are typed (`float32(0.5)`) and every computed value
is cast back to its dtype, so float32 programs stay float32 on the device.
"""

from __future__ import annotations

import math
from typing import Union

import numpy

from ...errors import CompileError
from ...ir import dtypes
from ...ir.core import Eqn, Lit, Var
from ...ir.ops import TABLE
from .plan import SMALL_REDUCTION, LoopStep, MatmulStep, ReduceStep, ScatterStep
from .views import View, c_strides, size_of


def tname(dt: numpy.dtype) -> str:
    """The name of a dtype's scalar constructor in kernel globals (`float32`...)."""
    return "bool_" if numpy.dtype(dt) == dtypes.bool_ else numpy.dtype(dt).name


def lit_src(value: object, dt: numpy.dtype) -> str:
    dt = numpy.dtype(dt)
    if dt == dtypes.bool_:
        return "True" if value else "False"
    if dt.kind == "f":
        v = float(value)  # type: ignore[arg-type]
        if math.isnan(v):
            body = "math.nan"
        elif math.isinf(v):
            body = "math.inf" if v > 0 else "-math.inf"
        else:
            body = repr(v)
        return f"{tname(dt)}({body})"
    return f"{tname(dt)}({int(value)})"  # type: ignore[call-overload]


def _lit(a: Lit) -> str:
    return lit_src(a.value, a.dtype)


class _RenderCtx:
    """The `RenderContext` of one value in a kernel (ir/ops.py)."""

    target = "cuda"

    def __init__(self, e: Eqn) -> None:
        self.dtype = numpy.dtype(e.out.dtype)
        self.in_dtype = next((numpy.dtype(a.dtype) for a in e.ins), self.dtype)
        self.tname = tname(self.dtype)

    def const(self, value: object, dtype: object) -> str:
        return lit_src(value, numpy.dtype(dtype))

    def local(self) -> str:
        raise CompileError("internal: cuda render rules are expressions (no statements)")

    def emit(self, line: str) -> None:
        raise CompileError("internal: cuda render rules are expressions (no statements)")


def op_src(e: Eqn, xs: list[str]) -> str:
    """A scalar expression for one elementwise eqn (before the cast to its dtype): the
    row's render rule for the "cuda" target."""
    rule = TABLE[e.op].render
    try:
        if rule is None:
            raise KeyError("cuda")
        return rule.expr(_RenderCtx(e), xs, e.p)
    except KeyError:
        raise CompileError(f"internal: elementwise op {e.op.value} has no render rule") from None


def _coords(shape: tuple[int, ...], flat: str, prefix: str) -> list[str]:
    """Lines that split a flat C-order index over `shape` into `prefix<k>` coordinates."""
    lines = []
    st = c_strides(shape)
    for k, (n, s) in enumerate(zip(shape, st)):
        if n == 1:
            lines.append(f"{prefix}{k} = 0")
        elif k == 0:
            lines.append(f"{prefix}{k} = {flat} // {s}")
        else:
            lines.append(f"{prefix}{k} = ({flat} // {s}) % {n}" if s != 1 else f"{prefix}{k} = {flat} % {n}")
    return lines


def _pos(v: View, coords: list[str], offset_extra: str = "") -> str:
    terms = [str(v.offset)] if v.offset else []
    for c, n, s in zip(coords, v.shape, v.strides):
        if n != 1 and s != 0:
            terms.append(c if s == 1 else f"{c} * {s}")
    if offset_extra:
        terms.append(offset_extra)
    return " + ".join(terms) or "0"


class _Body:
    def __init__(self, loop_shape: tuple[int, ...]) -> None:
        self.shape = loop_shape
        self.slots: set[int] = set()
        self.uses_coords = False
        self.coords = [f"c{k}" for k in range(len(loop_shape))]

    def index(self, v: View) -> str:
        """The position of the loop's element `i` in view `v` (of the loop's shape)."""
        self.slots.add(v.slot)
        if v.is_contiguous() and tuple(v.shape) == self.shape:
            return f"i + {v.offset}" if v.offset else "i"
        self.uses_coords = True
        return _pos(v, self.coords)

    def read(self, v: View) -> str:
        if v.is_lit:
            return _lit(v.lit)
        return f"b{v.slot}[{self.index(v)}]"


def loop_source(step: LoopStep, name: str, tpb: int) -> tuple[str, list[int]]:
    """A grid-stride loop kernel: loads, the fused eqns, stores, fused full reductions."""
    body = _Body(step.shape)
    names: dict[Var, str] = {}
    lines = _group_lines(step, body, names)
    pre_loop, post_loop = [], []
    for j, (var, op, partial) in enumerate(step.reductions):
        t = tname(var.dtype)
        comb = _COMBINE[op]
        body.slots.add(partial)
        pre_loop.append(f"a{j} = {_identity(op, numpy.dtype(var.dtype))}")
        lines.append(f"a{j} = {t}({comb.format(a=f'a{j}', b=names[var])})")
        post_loop += [
            f"s{j} = cuda.shared.array({tpb}, nb_{t})",
            f"s{j}[cuda.threadIdx.x] = a{j}",
            "cuda.syncthreads()",
            f"h = {tpb // 2}",
            "while h > 0:",
            "    if cuda.threadIdx.x < h:",
            f"        s{j}[cuda.threadIdx.x] = {t}({comb.format(a=f's{j}[cuda.threadIdx.x]', b=f's{j}[cuda.threadIdx.x + h]')})",
            "    cuda.syncthreads()",
            "    h //= 2",
            "if cuda.threadIdx.x == 0:",
            f"    b{partial}[cuda.blockIdx.x] = s{j}[0]",
        ]  # fmt: skip
    n = size_of(step.shape)
    slots = sorted(s for s in body.slots if s >= 0)
    head = [f"def {name}({', '.join(f'b{s}' for s in slots)}):",
            "    i = cuda.grid(1)",
            "    step = cuda.gridsize(1)"] + ["    " + ln for ln in pre_loop] + [
            f"    while i < {n}:"]  # fmt: skip
    pre = _coords(step.shape, "i", "c") if body.uses_coords else []
    inner = pre + lines + ["i += step"]
    return "\n".join(head + ["        " + ln for ln in inner] + ["    " + ln for ln in post_loop]) + "\n", slots


def _group_lines(step: LoopStep, body: "_Body", names: dict, prefix: str = "") -> list[str]:
    """Loads, eqns and stores of a loop group at element `i` (names: Var -> local name;
    `prefix` keeps the locals of two groups in one kernel apart)."""
    lines: list[str] = []
    for k, (var, view) in enumerate(step.loads.items()):
        if view.is_lit:
            names[var] = _lit(view.lit)
        else:
            names[var] = f"{prefix}r{k}"
            lines.append(f"{prefix}r{k} = {body.read(view)}")
    for e in step.eqns:
        o = e.out
        nm = f"{prefix}v{len(names)}"
        if o in step.gathers:
            lines.extend(_gather_lines(step.gathers[o], body, names, nm))
            names[o] = nm
            continue
        xs = [_lit(a) if isinstance(a, Lit) else names[a] for a in e.ins]
        expr = op_src(e, xs)
        names[o] = nm
        if o.dtype == dtypes.bool_:
            lines.append(f"{nm} = {expr}")
        else:
            lines.append(f"{nm} = {tname(o.dtype)}({expr})")
    for src, dst in step.stores:
        val = names[src] if isinstance(src, Var) else body.read(src)
        lines.append(f"b{dst.slot}[{body.index(dst)}] = {val}")
    return lines


_COMBINE = {  # by the row's combine
    "add": "{a} + {b}",
    "mul": "{a} * {b}",
    "max": "max({a}, {b})",
    "min": "min({a}, {b})",
}


def _identity(combine: str, dt: numpy.dtype) -> str:
    if combine == "add":
        return lit_src(0, dt)
    if combine == "mul":
        return lit_src(1, dt)
    if dt.kind == "f":
        return lit_src(-math.inf if combine == "max" else math.inf, dt)
    info = numpy.iinfo(dt)
    return lit_src(info.min if combine == "max" else info.max, dt)


def reduce_source(step: ReduceStep, name: str, dt: numpy.dtype, n_out: int, tpb: int) -> tuple[str, list[int], bool]:
    """One block per (output, part): a strided accumulation, then a shared-memory tree; or,
    for short rows (softmax over classes), one thread per output summing its row in order.

    Either way the combine order depends only on the launch shape: results repeat bitwise.
    Returns (source, buffer slots, whether it is the one-thread-per-output form).
    """
    src, axes, parts = step.src, step.axes, step.parts
    kept = [d for d in range(len(src.shape)) if d not in axes]
    kshape = tuple(src.shape[d] for d in kept)
    rshape = tuple(src.shape[d] for d in axes)
    red = size_of(rshape)
    t = tname(dt)
    comb = _COMBINE[step.combine]
    kc = _coords(kshape, "o", "k")
    rc = _coords(rshape, "r", "q")
    base = _pos(View(src.slot, kshape, tuple(src.strides[d] for d in kept), src.offset), [f"k{j}" for j in range(len(kept))])
    rpos = _pos(View(src.slot, rshape, tuple(src.strides[d] for d in axes), 0), [f"q{j}" for j in range(len(axes))])
    slots = sorted({src.slot, step.dst})
    if step.prologue is not None:  # the value is recomputed at each row element
        body = _Body(tuple(src.shape))
        body.shape = None  # never the flat fast path: positions come from the coordinates
        full, kk, qq = [], iter(range(len(kept))), iter(range(len(axes)))
        for d in range(len(src.shape)):
            full.append(f"q{next(qq)}" if d in axes else f"k{next(kk)}")
        body.coords = full
        names: dict = {}
        pro = _group_lines(step.prologue, body, names, prefix="p")
        item = names[step.operand]
        slots = sorted(({step.dst} | {s for s in body.slots if s >= 0}))
        base = "0"
    else:
        pro, item = [], f"b{src.slot}[base + {rpos}]"
    if step.parts == 1 and red <= SMALL_REDUCTION:
        epi = _epilogue(step, slots, "acc")
        lines = [
            f"def {name}({', '.join(f'b{s}' for s in slots)}):",
            "    o = cuda.grid(1)",
            "    step = cuda.gridsize(1)",
            f"    while o < {n_out}:",
            *["        " + ln for ln in kc],
            f"        base = {base}",
            f"        acc = {_identity(step.combine, dt)}",
            f"        for r in range({red}):",
            *["            " + ln for ln in rc],
            *["            " + ln for ln in pro],
            f"            acc = {t}({comb.format(a='acc', b=item)})",
            f"        b{step.dst}[o] = acc",
            *(["        i = o"] + ["        " + ln for ln in epi] if epi else []),
            "        o += step",
        ]
        return "\n".join(lines) + "\n", slots, True
    epi = _epilogue(step, slots, "rv")
    if epi:
        epi = ["i = blk", "rv = sh[0]"] + epi
    lines = [
        f"def {name}({', '.join(f'b{s}' for s in slots)}):",
        "    tid = cuda.threadIdx.x",
        f"    sh = cuda.shared.array({tpb}, nb_{t})",
        "    blk = cuda.blockIdx.x",
        f"    while blk < {n_out * parts}:",
        f"        o = blk // {parts}",
        f"        p = blk - o * {parts}",
        *["        " + ln for ln in kc],
        f"        base = {base}",
        f"        acc = {_identity(step.combine, dt)}",
        f"        r = p * {tpb} + tid",
        f"        while r < {red}:",
        *["            " + ln for ln in rc],
        f"            acc = {t}({comb.format(a='acc', b=f'b{src.slot}[base + {rpos}]')})",
        f"            r += {parts * tpb}",
        "        sh[tid] = acc",
        "        cuda.syncthreads()",
        f"        s = {tpb // 2}",
        "        while s > 0:",
        "            if tid < s:",
        f"                sh[tid] = {t}({comb.format(a='sh[tid]', b='sh[tid + s]')})",
        "            cuda.syncthreads()",
        "            s //= 2",
        "        if tid == 0:",
        f"            b{step.dst}[blk] = sh[0]",
        *["            " + ln for ln in epi],
        "        cuda.syncthreads()",
        "        blk += cuda.gridDim.x",
    ]
    return "\n".join(lines) + "\n", slots, False


def _epilogue(step: Union[ReduceStep, MatmulStep], slots: list[int], result: str) -> list[str]:
    """The lines of a step's elementwise epilogue at output element `i` (its result in the
    local `result`); adds the buffers it touches to `slots` (kept sorted)."""
    ep = step.epilogue
    if ep is None or not (ep.eqns or ep.stores):
        return []
    body = _Body(ep.shape)
    names = {step.result: result}
    glines = _group_lines(ep, body, names)
    pre = _coords(ep.shape, "i", "c") if body.uses_coords else []
    slots[:] = sorted(set(slots) | {s for s in body.slots if s >= 0})
    return pre + glines


def matmul_source(step: MatmulStep, name: str, dt: numpy.dtype, tile: int) -> tuple[str, list[int], tuple]:
    """A shared-memory tiled matmul; batch dims (broadcast) on the grid's z axis."""
    a, b, out = step.a, step.b, step.out_shape
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    bshape = tuple(out[:-2])
    nb = size_of(bshape)
    t = tname(dt)
    zc = _coords(bshape, "z", "z")
    zn = [f"z{j}" for j in range(len(bshape))]

    def batch_off(v: View) -> str:
        vb = View(v.slot, tuple(v.shape[:-2]), tuple(v.strides[:-2]), v.offset).broadcast_to(bshape)
        return _pos(vb, zn)

    sam, sak = a.strides[-2], a.strides[-1]
    sbk, sbn = b.strides[-2], b.strides[-1]
    slots = sorted({a.slot, b.slot, step.dst})
    epi = _epilogue(step, slots, "acc")
    lines = [
        f"def {name}({', '.join(f'b{s}' for s in slots)}):",
        f"    sa = cuda.shared.array(({tile}, {tile}), nb_{t})",
        f"    sb = cuda.shared.array(({tile}, {tile}), nb_{t})",
        "    tx = cuda.threadIdx.x",
        "    ty = cuda.threadIdx.y",
        "    z = cuda.blockIdx.z",
        *["    " + ln for ln in zc],
        f"    aoff = {batch_off(a)}",
        f"    boff = {batch_off(b)}",
        f"    row = cuda.blockIdx.y * {tile} + ty",
        f"    col = cuda.blockIdx.x * {tile} + tx",
        f"    acc = {t}(0)",
        f"    for t0 in range(0, {k}, {tile}):",
        "        ka = t0 + tx",
        f"        if row < {m} and ka < {k}:",
        f"            sa[ty, tx] = b{a.slot}[aoff + row * {sam} + ka * {sak}]",
        "        else:",
        f"            sa[ty, tx] = {t}(0)",
        "        kb = t0 + ty",
        f"        if kb < {k} and col < {n}:",
        f"            sb[ty, tx] = b{b.slot}[boff + kb * {sbk} + col * {sbn}]",
        "        else:",
        f"            sb[ty, tx] = {t}(0)",
        "        cuda.syncthreads()",
        f"        for kk in range({tile}):",
        f"            acc = {t}(acc + sa[ty, kk] * sb[kk, tx])",
        "        cuda.syncthreads()",
        f"    if row < {m} and col < {n}:",
        f"        i = z * {m * n} + row * {n} + col",
        f"        b{step.dst}[i] = acc",
        *["        " + ln for ln in epi],
    ]
    grid = ((n + tile - 1) // tile, (m + tile - 1) // tile, max(nb, 1))
    return "\n".join(lines) + "\n", slots, grid


def _gather_lines(gl, body: "_Body", names: dict, nm: str) -> list[str]:
    """`nm = x[pos]` for a gather at the loop's element (coordinates `c<k>`)."""
    x = gl.x
    _, bshape, items, b0 = gl.layout
    body.uses_coords = True
    body.slots.add(x.slot)
    bcoords = [f"c{b0 + m}" for m in range(len(bshape))]
    lines, terms = [], [str(x.offset)] if x.offset else []
    for item in items:
        if item[0] == "s":
            _, axis, od = item
            if x.strides[axis] != 0 and x.shape[axis] != 1:
                terms.append(f"c{od} * {x.strides[axis]}")
        else:
            _, axis, j = item
            iv = gl.idx[j]
            if isinstance(iv, View):
                body.slots.add(iv.slot)
                val = f"b{iv.slot}[{_pos(iv, bcoords)}]"
            else:
                val = names[iv]
            ix = f"{nm}_{j}"
            n = x.shape[axis]
            lines.append(f"{ix} = int64({val})")
            lines.append(f"{ix} = {ix} + {n} if {ix} < 0 else {ix}")
            terms.append(f"{ix} * {x.strides[axis]}")
    lines.append(f"{nm} = b{x.slot}[{' + '.join(terms) or '0'}]")
    return lines


def _index_pos(step: ScatterStep, x: View, x_shape: tuple[int, ...]) -> tuple[list[str], set[int]]:
    """Lines computing `pos` (the array position) from the loop coordinates `c<k>`."""
    _, bshape, items, b0 = step.layout
    bcoords = [f"c{b0 + m}" for m in range(len(bshape))]
    lines = [f"pos = {x.offset}"]
    slots: set[int] = set()
    for item in items:
        if item[0] == "s":
            _, axis, od = item
            if x.strides[axis] != 0 and x_shape[axis] != 1:
                lines.append(f"pos += c{od} * {x.strides[axis]}")
        else:
            _, axis, j = item
            iv = step.idx[j]
            slots.add(iv.slot)
            lines.append(f"ix = int64(b{iv.slot}[{_pos(iv, bcoords)}])")
            lines.append(f"ix = ix + {x_shape[axis]} if ix < 0 else ix")
            lines.append(f"pos += ix * {x.strides[axis]}")
    return lines, slots


def scatter_source(step: ScatterStep, name: str) -> tuple[str, list[int]]:
    g, x_shape = step.g, step.out_shape
    dst = View.whole(step.dst, x_shape)
    loop_shape = tuple(g.shape)
    pos_lines, slots = _index_pos(step, dst, x_shape)
    body = _Body(loop_shape)
    gval = body.read(g)
    slots |= {step.dst} | ({g.slot} if not g.is_lit else set())
    n = size_of(loop_shape)
    inner = _coords(loop_shape, "i", "c") + pos_lines + [f"cuda.atomic.add(b{step.dst}, pos, {gval})", "i += step"]
    ordered = sorted(slots)
    head = [f"def {name}({', '.join(f'b{s}' for s in ordered)}):", "    i = cuda.grid(1)",
            "    step = cuda.gridsize(1)", f"    while i < {n}:"]  # fmt: skip
    return "\n".join(head + ["        " + ln for ln in inner]) + "\n", ordered
