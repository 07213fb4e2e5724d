"""Rows of reductions, matmul, layout and indexing ops, host callbacks and guards."""

from __future__ import annotations

from typing import Any

import numpy

from . import dtypes
from ..errors import DTypeError, GuardFailure, IndexOutOfRangeError, ShapeError, UnsupportedError
from .ops import Kind, Op, OpDef, fp_quiet, register


# ---- reductions (params: axes = sorted non-negative tuple, keepdims) ---------------------
def _reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def _reduce_infer(op: Op, out_dtype=None):
    def infer(x, axes, keepdims):
        for a in axes:
            if not 0 <= a < len(x.shape):
                raise ShapeError(f"{op.value}: axis {a} is out of range for shape {tuple(x.shape)}")
        if op in (Op.REDUCE_MAX, Op.REDUCE_MIN) and any(x.shape[a] == 0 for a in axes):
            raise ShapeError(f"{op.value}: zero-size axis in shape {tuple(x.shape)} has no identity")
        return [(_reduced_shape(x.shape, axes, keepdims), out_dtype or dtypes.of(x))]

    return infer


def _sum_vjp(b, x, out, g, axes, keepdims):
    return (b.keep_reduced(g, x.shape, axes, keepdims),)


def _extremum_vjp(b, x, out, g, axes, keepdims):
    # MXNet: every element equal to the result gets the full gradient (no tie splitting).
    outb = b.keep_reduced(out, x.shape, axes, keepdims)
    gb = b.keep_reduced(g, x.shape, axes, keepdims)
    return (b.where(b.eq(x, outb), gb, b.zeros_like(gb)),)


def _prod_vjp(b, x, out, g, axes, keepdims):
    gb = b.keep_reduced(g, x.shape, axes, keepdims)
    return (b.mul(gb, b.prod_others(x, axes=axes)),)


def _prod_others_vjp(b, x, out, h, axes):
    """r_j = sum_{i != j} h_i * prod_{k != i, j} x_k over each group, exact at zeros.

    Written in table ops (so third order works away from zeros): with P the product of
    the group's nonzero elements, S = sum h_i / x_i and H = sum h_i over its nonzeros and
    zeros, a group with no zero gives P/x_j * (S - h_j/x_j); one zero gives P*S at the zero
    and H*P/x_j elsewhere; two zeros give (H - h_j)*P at the zeros; more zeros give 0.
    """
    shape = tuple(x.shape)
    zeros = b.zeros_like(x)
    is0 = b.eq(x, 0.0)
    nz = b.where(is0, b.broadcast(b.e.lit(1, x.dtype), shape), x)

    def group_sum(v):
        return b.keep_reduced(b.reduce_sum(v, axes=axes, keepdims=True), shape, axes, True)

    p = b.keep_reduced(b.reduce_prod(nz, axes=axes, keepdims=True), shape, axes, True)
    n0 = group_sum(b.cast(is0, x.dtype))
    h_over = b.div(h, nz)
    s = group_sum(b.where(is0, zeros, h_over))
    hz = group_sum(b.where(is0, h, zeros))
    p_over = b.div(p, nz)
    r0 = b.mul(p_over, b.sub(s, h_over))
    r1 = b.where(is0, b.mul(p, s), b.mul(hz, p_over))
    r2 = b.where(is0, b.mul(b.sub(hz, h), p), zeros)
    r = b.where(b.eq(n0, 2.0), r2, zeros)
    r = b.where(b.eq(n0, 1.0), r1, r)
    return (b.where(b.eq(n0, 0.0), r0, r),)


def _prod_others(x, axes):
    """For each element, the product of the others in its reduction group (exact at zeros)."""
    ax = tuple(axes)
    zero = x == 0
    nz = numpy.where(zero, numpy.ones((), x.dtype), x)
    p = numpy.prod(nz, axis=ax, keepdims=True)
    nzero = numpy.sum(zero, axis=ax, keepdims=True)
    with numpy.errstate(all="ignore"):
        others = numpy.where(zero, p, numpy.where(nzero > 0, 0, p / nz))
    return numpy.where(nzero > 1, 0, others).astype(x.dtype, copy=False)


def _no_higher_order(what: str, instead: str):
    """A gradient rule that refuses (instead of a silent zero) where none is implemented."""

    def vjp(b, *args, **params):
        raise UnsupportedError(f"{what} is not implemented; {instead}")

    return vjp


def _reduce_row(op, impl, vjp, combine, out_dtype=None, differentiable=True):
    register(
        OpDef(
            op,
            Kind.REDUCTION,
            _reduce_infer(op, out_dtype),
            lambda x, axes, keepdims: numpy.asarray(impl(x, axis=tuple(axes), keepdims=keepdims)).astype(
                out_dtype or x.dtype, copy=False
            ),
            vjp,
            None,
            differentiable,
            combine=combine,
        )
    )


# the ufuncs' reduce: what numpy.sum/max/min/prod call, without their dispatch wrapper
_reduce_row(Op.REDUCE_SUM, fp_quiet(numpy.add.reduce), _sum_vjp, "add")
_reduce_row(Op.REDUCE_MAX, numpy.maximum.reduce, _extremum_vjp, "max")
_reduce_row(Op.REDUCE_MIN, numpy.minimum.reduce, _extremum_vjp, "min")
_reduce_row(Op.REDUCE_PROD, fp_quiet(numpy.multiply.reduce), _prod_vjp, "mul")
register(
    OpDef(
        Op.PROD_OTHERS,
        Kind.HOST,
        lambda x, axes: [(tuple(x.shape), dtypes.of(x))],
        fp_quiet(_prod_others),
        _prod_others_vjp,
        doc="gradient helper of prod: the product of the other elements in each group",
    )
)


def _arg_infer(op):
    def infer(x, axis, keepdims):
        axes = tuple(range(len(x.shape))) if axis is None else (axis,)
        return _reduce_infer(op, dtypes.int64)(x, axes, keepdims)

    return infer


for _op, _f in [(Op.ARGMAX, numpy.argmax), (Op.ARGMIN, numpy.argmin)]:
    register(
        OpDef(
            _op,
            Kind.REDUCTION,
            _arg_infer(_op),
            (lambda f: lambda x, axis, keepdims: numpy.asarray(f(x, axis=axis, keepdims=keepdims)).astype(
                numpy.int64
            ))(_f),
            None,
            None,
            differentiable=False,
        )
    )


# ---- matmul: a[..., m, k] @ b[..., k, n], batch dims broadcast ---------------------------
def _matmul_infer(a, b):
    if len(a.shape) < 2 or len(b.shape) < 2:
        raise ShapeError(f"matmul: operands need 2 or more dims, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[-1] != b.shape[-2]:
        raise ShapeError(
            f"matmul: inner dimensions differ: {tuple(a.shape)} @ {tuple(b.shape)} "
            f"({a.shape[-1]} != {b.shape[-2]}; dtypes {dtypes.of(a)}, {dtypes.of(b)})"
        )
    if dtypes.of(a) != dtypes.of(b):
        raise DTypeError(f"matmul: operand dtypes {a.dtype} and {b.dtype} differ (cast first)")
    try:
        batch = numpy.broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
    except ValueError:
        raise ShapeError(f"matmul: batch dims of {tuple(a.shape)} and {tuple(b.shape)} do not broadcast") from None
    return [(tuple(batch) + (a.shape[-2], b.shape[-1]), dtypes.of(a))]


def _swap_last(b, x):
    n = len(x.shape)
    return b.transpose(x, perm=tuple(range(n - 2)) + (n - 1, n - 2))


def _matmul_vjp(b, x, y, out, g):
    gx = b.sum_to(b.matmul(g, _swap_last(b, y)), x.shape)
    gy = b.sum_to(b.matmul(_swap_last(b, x), g), y.shape)
    return gx, gy


register(OpDef(Op.MATMUL, Kind.MATMUL, _matmul_infer, fp_quiet(numpy.matmul), _matmul_vjp))


# ---- layout ------------------------------------------------------------------------------
def _reshape_infer(x, shape):
    if int(numpy.prod(shape, dtype=numpy.int64)) != int(numpy.prod(x.shape, dtype=numpy.int64)):
        raise ShapeError(f"reshape: cannot reshape array of shape {tuple(x.shape)} into shape {tuple(shape)}")
    return [(tuple(shape), dtypes.of(x))]


register(
    OpDef(
        Op.RESHAPE,
        Kind.LAYOUT,
        _reshape_infer,
        lambda x, shape: x.reshape(shape),
        lambda b, x, out, g, shape: (b.reshape(g, x.shape),),
        cost=0,
        index_map=lambda xs, out, shape: None,  # the C-order linear index is kept
    )
)


def _transpose_map(xs, out, perm):
    m: list = [None] * len(xs)
    for d, pd in enumerate(perm):
        m[pd] = (d, 1, 0)
    return m


def _broadcast_map(xs, out, shape):
    lead = len(out) - len(xs)
    return [(lead + j, 1, 0) if n == out[lead + j] else (None, 1, 0) for j, n in enumerate(xs)]


def _slice_map(xs, out, index):
    m, k, j = [], 0, 0
    for item in index:
        if item is None:
            k += 1
            continue
        n = xs[j]
        if isinstance(item, tuple):
            start, _, step = slice(*item).indices(n)
            m.append((k, step, start))
            k += 1
        else:
            m.append((None, 1, int(item) + n if int(item) < 0 else int(item)))
        j += 1
    m.extend((k + r, 1, 0) for r in range(len(xs) - j))
    return m


def _transpose_infer(x, perm):
    if sorted(perm) != list(range(len(x.shape))):
        raise ShapeError(f"transpose: axes {perm} are not a permutation for shape {tuple(x.shape)}")
    return [(tuple(x.shape[p] for p in perm), dtypes.of(x))]


register(
    OpDef(
        Op.TRANSPOSE,
        Kind.LAYOUT,
        _transpose_infer,
        lambda x, perm: numpy.transpose(x, perm),
        lambda b, x, out, g, perm: (b.transpose(g, perm=tuple(numpy.argsort(perm).tolist())),),
        cost=0,
        index_map=_transpose_map,
    )
)


def _broadcast_infer(x, shape):
    try:
        ok = numpy.broadcast_shapes(tuple(x.shape), tuple(shape)) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ShapeError(f"broadcast_to: cannot broadcast shape {tuple(x.shape)} to {tuple(shape)}")
    return [(tuple(shape), dtypes.of(x))]


register(
    OpDef(
        Op.BROADCAST_TO,
        Kind.LAYOUT,
        _broadcast_infer,
        lambda x, shape: numpy.broadcast_to(x, shape),
        lambda b, x, out, g, shape: (b.sum_to(g, x.shape),),
        cost=0,
        index_map=_broadcast_map,
    )
)


def _index_key(index: tuple) -> tuple:
    """A basic-index param (ints, (start, stop, step) triples, None) as a numpy key."""
    return tuple(slice(*i) if isinstance(i, tuple) else i for i in index)


def _probe(shape: tuple[int, ...]) -> numpy.ndarray:
    return numpy.lib.stride_tricks.as_strided(numpy.empty(1, numpy.int8), shape, (0,) * len(shape))


def _slice_infer(x, index):
    return [(_probe(tuple(x.shape))[_index_key(index)].shape, dtypes.of(x))]


def _slice_vjp_impl(g, index, shape):
    z = numpy.zeros(shape, g.dtype)
    z[_index_key(index)] = g
    return z


register(
    OpDef(
        Op.SLICE,
        Kind.LAYOUT,
        _slice_infer,
        lambda x, index: x[_index_key(index)],
        lambda b, x, out, g, index: (b.slice_vjp(g, index=index, shape=tuple(x.shape)),),
        doc="basic indexing: ints, slices, None",
        cost=0,
        index_map=_slice_map,
    )
)
register(
    OpDef(
        Op.SLICE_VJP,
        Kind.LAYOUT,
        lambda g, index, shape: [(tuple(shape), dtypes.of(g))],
        _slice_vjp_impl,
        lambda b, g, out, gg, index, shape: (b.slice(gg, index=index),),
        doc="zeros of `shape` with `g` written at basic index `index`",
        assemble=lambda shapes, index, shape: (True, [(0, tuple(index))]),
    )
)


def _concat_infer(*xs, axis):
    first = xs[0]
    for x in xs[1:]:
        if len(x.shape) != len(first.shape) or any(
            a != c for i, (a, c) in enumerate(zip(x.shape, first.shape)) if i != axis
        ):
            raise ShapeError(
                f"concatenate: shapes {[tuple(x.shape) for x in xs]} differ outside axis {axis}"
            )
    shape = list(first.shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    return [(tuple(shape), dtypes.promote(*[dtypes.of(x) for x in xs]))]


def _concat_vjp(b, *args, axis):
    xs, g = args[: len(args) - 2], args[-1]
    grads, start = [], 0
    for x in xs:
        stop = start + x.shape[axis]
        index = tuple((None, None, None) if i != axis else (start, stop, 1) for i in range(len(x.shape)))
        grads.append(b.slice(g, index=index))
        start = stop
    return tuple(grads)


def _concat_assemble(shapes, axis):
    parts, start = [], 0
    for j, xs in enumerate(shapes):
        stop = start + xs[axis]
        parts.append((j, tuple((start, stop, 1) if i == axis else (None, None, None) for i in range(len(xs)))))
        start = stop
    return False, parts


register(
    OpDef(
        Op.CONCATENATE,
        Kind.LAYOUT,
        _concat_infer,
        lambda *xs, axis: numpy.concatenate(xs, axis=axis),
        _concat_vjp,
        assemble=_concat_assemble,
    )
)


# ---- indexing with integer arrays --------------------------------------------------------
# `key` is a template: basic items as in SLICE, and the string "@" where the next index
# array operand goes. Repeated indices accumulate in the gradient (scatter-add).
def _gather_key(key: tuple, idx: tuple) -> tuple:
    it = iter(idx)
    return tuple(next(it) if k == "@" else (slice(*k) if isinstance(k, tuple) else k) for k in key)


def _check_index_dtypes(op, idx):
    for i in idx:
        if dtypes.of(i).kind not in "iu":
            raise DTypeError(f"{op.value}: index arrays must be integers, got {i.dtype}")


def _gather_infer(x, *idx, key):
    _check_index_dtypes(Op.GATHER, idx)
    probes = [numpy.zeros(tuple(i.shape), numpy.intp) for i in idx]
    try:
        shape = _probe(tuple(x.shape))[_gather_key(key, probes)].shape
    except IndexError as exc:
        raise ShapeError(f"gather: {exc} (array shape {tuple(x.shape)})") from None
    return [(shape, dtypes.of(x))]


def _out_of_range(op, exc, shape, idx):
    """The index error of a gather/scatter as a tracegrad error naming op and shapes (the
    caller that ran the trace adds the user's line)."""
    return IndexOutOfRangeError(
        f"{op.value}: {exc} (array shape {tuple(shape)}, index shapes {[tuple(i.shape) for i in idx]})"
    )


def _gather_impl(x, *idx, key):
    try:
        return x[_gather_key(key, idx)]
    except IndexError as exc:
        raise _out_of_range(Op.GATHER, exc, x.shape, idx) from None


def _scatter_add_impl(g, *idx, key, shape):
    z = numpy.zeros(shape, g.dtype)
    try:
        numpy.add.at(z, _gather_key(key, idx), g)
    except IndexError as exc:
        raise _out_of_range(Op.SCATTER_ADD, exc, shape, idx) from None
    return z


register(
    OpDef(
        Op.GATHER,
        Kind.INDEX,
        _gather_infer,
        _gather_impl,
        lambda b, x, *rest, key: (
            b.scatter_add(rest[-1], *rest[:-2], key=key, shape=tuple(x.shape)),
        )
        + (None,) * (len(rest) - 2),
        index_form="gather",
    )
)
register(
    OpDef(
        Op.SCATTER_ADD,
        Kind.INDEX,
        lambda g, *idx, key, shape: [(tuple(shape), dtypes.of(g))],
        _scatter_add_impl,
        lambda b, g, *rest, key, shape: (b.gather(rest[-1], *rest[:-2], key=key),) + (None,) * (len(rest) - 2),
        doc="zeros of `shape`, then g added at the gathered positions (np.add.at)",
        index_form="scatter_add",
    )
)


# ---- host callbacks (autograd.Function) and guards ---------------------------------------
def _custom_infer(*xs, fn, avals):
    return [tuple(a) for a in avals]


def _custom_impl(*xs, fn, avals):
    raise RuntimeError("custom op values are computed by their Function, never re-run")


def _custom_vjp(b, *args, fn, avals):
    n_out = len(avals)
    gs = args[len(args) - n_out :]
    xs = args[: len(args) - 2 * n_out]
    ins_avals = tuple((tuple(x.shape), dtypes.of(x)) for x in xs)
    grads = b.custom_vjp(*gs, fn=fn, avals=ins_avals)
    grads = grads if isinstance(grads, list) else [grads]
    return tuple(grads)


register(OpDef(Op.CUSTOM, Kind.HOST, _custom_infer, _custom_impl, _custom_vjp, effects=True))


def _custom_vjp_impl(*gs, fn, avals):
    return fn.run_backward(gs, avals)


register(
    OpDef(
        Op.CUSTOM_VJP,
        Kind.HOST,
        lambda *gs, fn, avals: [tuple(a) for a in avals],
        _custom_vjp_impl,
        _no_higher_order(
            "differentiating an autograd.Function's backward (create_graph=True)",
            "write the backward with tracegrad ops outside a Function",
        ),
        effects=True,
    )
)


def _guard_impl(x: Any, expect: Any, where: str) -> tuple:
    seen = numpy.asarray(x).item()
    if seen != expect:
        raise GuardFailure(-1, seen)
    return ()


register(
    OpDef(
        Op.GUARD,
        Kind.GUARD,
        lambda x, expect, where: [],
        _guard_impl,
        None,
        differentiable=False,
        doc="the program is only valid where x == expect (a data-dependent branch)",
    )
)
