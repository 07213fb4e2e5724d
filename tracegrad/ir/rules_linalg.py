"""Rows of einsum, triangles and the LAPACK ops (inv, det, slogdet, solve, cholesky, eigh, svd).

All are host rows: their numpy reference runs as a host step between fused kernels. Their
gradient rules emit table ops (einsum, matmul, solve, ...), so gradients are traces and can
be differentiated again.

EINSUM's `subscripts` are explicit and letter-only ("ij,jk->ik"; the API expands ellipses
and implicit outputs). The output may repeat a letter (the values go on that diagonal,
zeros elsewhere) and may name letters no operand has (`sizes` gives their extents; the
values are broadcast along them): with these two extensions the gradient of an einsum is
again an einsum.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy

from . import dtypes
from ..errors import DTypeError, LinAlgError, ShapeError
from .ops import Kind, Op, OpDef, fp_quiet, register


# ---- einsum ------------------------------------------------------------------------------
def parse_einsum(subscripts: str) -> tuple[list[str], str]:
    """Operand subscripts and output subscripts of an explicit, letter-only spec."""
    ins, out = subscripts.split("->")
    return ins.split(","), out


def _einsum_infer(*xs, subscripts, sizes):
    ins, out = parse_einsum(subscripts)
    if len(ins) != len(xs):
        raise ShapeError(f"einsum: {len(ins)} operand subscripts in {subscripts!r} for {len(xs)} operands")
    extent = dict(sizes)
    for s, x in zip(ins, xs):
        if len(s) != len(x.shape):
            raise ShapeError(
                f"einsum: operand subscripts {s!r} name {len(s)} dims but the operand has shape {tuple(x.shape)}"
            )
        for c, n in zip(s, x.shape):
            if extent.setdefault(c, n) != n:
                raise ShapeError(
                    f"einsum: letter {c!r} has sizes {extent[c]} and {n} in {subscripts!r} "
                    f"(shapes {[tuple(x.shape) for x in xs]})"
                )
    missing = [c for c in out if c not in extent]
    if missing:
        raise ShapeError(f"einsum: output letters {missing} of {subscripts!r} have no size")
    kinds = {dtypes.of(x) for x in xs}
    if len(kinds) != 1:
        raise DTypeError(f"einsum: operand dtypes {sorted(map(str, kinds))} differ (cast first)")
    return [(tuple(extent[c] for c in out), kinds.pop())]


def _einsum_impl(*xs, subscripts, sizes):
    ins, out = parse_einsum(subscripts)
    known = set("".join(ins))
    core = "".join(dict.fromkeys(c for c in out if c in known))
    extent = dict(sizes)
    for s, x in zip(ins, xs):
        extent.update(zip(s, x.shape))
    # numpy's path search costs ~150 us: worth it for 3+ operands or BLAS-sized work only
    work = int(numpy.prod([extent[c] for c in set("".join(ins))], dtype=numpy.float64))
    r = numpy.einsum(f"{','.join(ins)}->{core}", *xs, optimize=len(xs) > 2 or (len(xs) == 2 and work >= 1 << 16))
    if out == core:  # (numpy returns views for transpositions and diagonals: never alias)
        return r.copy() if any(numpy.may_share_memory(r, x) for x in xs) else r
    letters = list(dict.fromkeys(out))
    res = numpy.zeros(tuple(extent[c] for c in out), r.dtype)
    strides = [sum(res.strides[p] for p, c in enumerate(out) if c == u) for u in letters]
    diag = numpy.lib.stride_tricks.as_strided(res, tuple(extent[c] for c in letters), strides)
    # r's axes are the known letters, in `letters` order: add the broadcast ones
    diag[...] = r.reshape(tuple(extent[c] if c in known else 1 for c in letters))
    return res


def _einsum_vjp(b, *args, subscripts, sizes):
    ins, out = parse_einsum(subscripts)
    n = len(ins)
    xs, g = args[:n], args[-1]
    grads = []
    for i, x in enumerate(xs):
        if not hasattr(x, "shape") or not dtypes.is_float(dtypes.of(x)):
            grads.append(None)
            continue
        ops = [xs[j] for j in range(n) if j != i] + [g]
        subs = [ins[j] for j in range(n) if j != i] + [out]
        have = set("".join(subs))
        extra = tuple(sorted({c: n_ for c, n_ in zip(ins[i], x.shape) if c not in have}.items()))
        grads.append(b.einsum(*ops, subscripts=f"{','.join(subs)}->{ins[i]}", sizes=extra))
    return tuple(grads)


register(OpDef(Op.EINSUM, Kind.HOST, _einsum_infer, fp_quiet(_einsum_impl), _einsum_vjp,
               doc="Einstein summation (explicit letters; the output may repeat letters or add new ones)"))


def einsum_op(b, spec: str, *ops, sizes: tuple = ()):
    """Emit an einsum whose `...` stands for the leading (batch) dims of the first operand."""
    nb = len(ops[0].shape) - len(spec.split("->")[0].split(",")[0].replace("...", ""))
    batch = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:nb]
    return b.einsum(*ops, subscripts=spec.replace("...", batch), sizes=sizes)


# ---- triangles ---------------------------------------------------------------------------
def _tri_infer(x, k, lower):
    if len(x.shape) < 2:
        raise ShapeError(f"{'tril' if lower else 'triu'}: needs 2 or more dims, got shape {tuple(x.shape)}")
    return [(tuple(x.shape), dtypes.of(x))]


register(OpDef(
    Op.TRI, Kind.HOST, _tri_infer,
    lambda x, k, lower: numpy.tril(x, k) if lower else numpy.triu(x, k),
    lambda b, x, out, g, k, lower: (b.tri(g, k=k, lower=lower),),
    doc="tril (lower=True) or triu of the last two dims, diagonal offset k",
))


# ---- LAPACK ops --------------------------------------------------------------------------
def _square(op: Op, x) -> None:
    shape = tuple(x.shape)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ShapeError(f"{op.value}: needs square matrices (..., M, M), got shape {shape} ({dtypes.of(x)})")
    _lapack_dtype(op, x)


def _lapack_dtype(op: Op, x) -> None:
    if dtypes.of(x) not in (dtypes.float32, dtypes.float64):
        raise DTypeError(f"{op.value}: needs float32 or float64 matrices, got {dtypes.of(x)} (shape {tuple(x.shape)})")


def _lapack(op: Op, f: Callable[..., Any]) -> Callable[..., Any]:
    """numpy.linalg's `f`, its LinAlgError turned into ours (naming the op and the operands).

    The matrix operand (the first) may hold inf/NaN: those matrices give NaN results (the
    special-values policy: IEEE results, no error and no warning); a finite matrix that
    cannot be factored (singular, not positive definite) raises.
    """

    def impl(*xs, **params):
        a = xs[0]
        bad = ~numpy.isfinite(a).all(axis=(-2, -1))
        if bad.any():
            a = numpy.where(bad[..., None, None], numpy.eye(*a.shape[-2:], dtype=a.dtype), a)
        try:
            with numpy.errstate(all="ignore"):
                out = f(a, *xs[1:], **params)
        except numpy.linalg.LinAlgError as exc:
            what = ", ".join(f"{x.dtype}{list(x.shape)}" for x in xs)
            raise LinAlgError(f"{op.value}: {exc} (operands {what})") from None
        outs = tuple(out) if isinstance(out, tuple) else (out,)
        if bad.any():
            batch = numpy.broadcast_shapes(*(x.shape[:-2] for x in xs))
            mask = numpy.broadcast_to(bad, batch)
            outs = tuple(numpy.where(mask.reshape(batch + (1,) * (o.ndim - len(batch))), numpy.nan, o)
                         .astype(o.dtype, copy=False) for o in outs)
        return outs if isinstance(out, tuple) else outs[0]

    return impl


def _mT(b, x):
    n = len(x.shape)
    return b.transpose(x, perm=tuple(range(n - 2)) + (n - 1, n - 2))


def _batch_scalar(b, s, like):
    """A (...) array as (..., 1, 1) broadcast to the matrices' shape (..., M, M)."""
    return b.broadcast(b.reshape(s, tuple(s.shape) + (1, 1)), tuple(like.shape))


def _same_square(op):
    def infer(x, **_):
        _square(op, x)
        return [(tuple(x.shape), dtypes.of(x))]

    return infer


def _batch_out(op, n_out):
    def infer(x, **_):
        _square(op, x)
        return [(tuple(x.shape[:-2]), dtypes.of(x))] * n_out

    return infer


register(OpDef(
    Op.INV, Kind.HOST, _same_square(Op.INV), _lapack(Op.INV, numpy.linalg.inv),
    lambda b, x, out, g: (b.neg(b.matmul(b.matmul(_mT(b, out), g), _mT(b, out))),),
))
register(OpDef(
    Op.DET, Kind.HOST, _batch_out(Op.DET, 1), _lapack(Op.DET, numpy.linalg.det),
    lambda b, x, out, g: (b.mul(_batch_scalar(b, g, x), _mT(b, b.adjugate(x))),),
    doc="determinant; its gradient is the adjugate's transpose, exact at singular matrices too",
))


def _adjugate(x):
    """adj(A) = det(U) det(Vh) Vh^T diag(prod of the other singular values) U^T, from the
    SVD: exact for singular matrices as well (no division)."""
    u, s, vh = numpy.linalg.svd(x)
    n = s.shape[-1]
    ones = numpy.ones(s.shape[:-1] + (1,), s.dtype)
    left = numpy.cumprod(numpy.concatenate([ones, s[..., : n - 1]], axis=-1), axis=-1)
    right = numpy.flip(numpy.cumprod(numpy.concatenate([ones, numpy.flip(s, -1)[..., : n - 1]], axis=-1), axis=-1), -1)
    sign = numpy.linalg.det(u) * numpy.linalg.det(vh)
    adj = numpy.matmul(numpy.swapaxes(vh, -1, -2) * (left * right)[..., None, :], numpy.swapaxes(u, -1, -2))
    return (adj * sign[..., None, None]).astype(x.dtype, copy=False)


def _adjugate_vjp(b, x, adj, g):
    # adj = det(A) A^-1, so d<G, adj> = <G, A^-1> adj^T - A^-T G adj^T (needs A invertible)
    inv_t = _mT(b, b.inv(x))
    ip = b.reduce_sum(b.mul(g, _mT(b, inv_t)), axes=(len(x.shape) - 2, len(x.shape) - 1), keepdims=False)
    adj_t = _mT(b, adj)
    return (b.sub(b.mul(_batch_scalar(b, ip, x), adj_t), b.matmul(b.matmul(inv_t, g), adj_t)),)


register(OpDef(Op.ADJUGATE, Kind.HOST, _same_square(Op.ADJUGATE), _lapack(Op.ADJUGATE, _adjugate), _adjugate_vjp,
               doc="the adjugate (det's gradient); its own gradient needs an invertible matrix"))
register(OpDef(
    Op.SLOGDET, Kind.HOST, _batch_out(Op.SLOGDET, 2), _lapack(Op.SLOGDET, numpy.linalg.slogdet),
    lambda b, x, sign, logdet, gsign, glogdet: (b.mul(_batch_scalar(b, glogdet, x), _mT(b, b.inv(x))),),
    doc="(sign, log|det|); the sign has no gradient",
))


def _solve_infer(a, c):
    _square(Op.SOLVE, a)
    if len(c.shape) < 2 or c.shape[-2] != a.shape[-1]:
        raise ShapeError(
            f"solve: right-hand side of shape {tuple(c.shape)} does not fit matrices of shape {tuple(a.shape)} "
            f"({dtypes.of(a)}, {dtypes.of(c)})"
        )
    if dtypes.of(a) != dtypes.of(c):
        raise DTypeError(f"solve: operand dtypes {dtypes.of(a)} and {dtypes.of(c)} differ (cast first)")
    try:
        batch = numpy.broadcast_shapes(tuple(a.shape[:-2]), tuple(c.shape[:-2]))
    except ValueError:
        raise ShapeError(f"solve: batch dims of {tuple(a.shape)} and {tuple(c.shape)} do not broadcast") from None
    return [(tuple(batch) + tuple(c.shape[-2:]), dtypes.of(a))]


def _solve_vjp(b, a, c, x, g):
    gc = b.solve(_mT(b, a), g)
    return b.neg(b.matmul(gc, _mT(b, x))), gc


register(OpDef(Op.SOLVE, Kind.HOST, _solve_infer, _lapack(Op.SOLVE, numpy.linalg.solve), _solve_vjp,
               doc="x with a @ x = c, for c of shape (..., M, K)"))


def _stored_half(b, gs, lower: bool):
    """The gradient of a function that reads only one triangle of its (symmetric) operand,
    from `gs`, its symmetric gradient: the off-diagonal entries count twice."""
    return b.add(b.tri(gs, k=0, lower=lower), b.tri(gs, k=-1 if lower else 1, lower=lower))


def _cholesky_vjp(b, x, l, g):
    # symmetric gradient: L^-T Phi(L^T G) L^-1, Phi = lower triangle with half the diagonal
    t = b.tri(b.matmul(_mT(b, l), g), k=0, lower=True)
    m = b.mul(b.add(t, _mT(b, b.tri(t, k=-1, lower=True))), 0.5)
    y = b.solve(_mT(b, l), m)
    gs = _mT(b, b.solve(_mT(b, l), _mT(b, y)))
    gs = b.mul(b.add(gs, _mT(b, gs)), 0.5)
    return (_stored_half(b, gs, True),)


register(OpDef(Op.CHOLESKY, Kind.HOST, _same_square(Op.CHOLESKY), _lapack(Op.CHOLESKY, numpy.linalg.cholesky),
               _cholesky_vjp, doc="lower Cholesky factor; reads the lower triangle"))


def _safe_recip(b, d):
    """1/d, and 0 where d == 0 (no inf or NaN reaches a gradient through the other branch)."""
    zero = b.eq(d, 0.0)
    return b.where(zero, b.zeros_like(d), b.div(1.0, b.where(zero, b.broadcast(b.e.lit(1, dtypes.of(d)), d.shape), d)))


def _pair_diff(b, w):
    """D[..., i, j] = w[..., j] - w[..., i]."""
    n = w.shape[-1]
    shape = tuple(w.shape[:-1]) + (n, n)
    wj = b.broadcast(b.reshape(w, tuple(w.shape[:-1]) + (1, n)), shape)
    wi = b.broadcast(b.reshape(w, tuple(w.shape[:-1]) + (n, 1)), shape)
    return b.sub(wj, wi)


def _eigh_infer(x, UPLO):
    _square(Op.EIGH, x)
    return [(tuple(x.shape[:-1]), dtypes.of(x)), (tuple(x.shape), dtypes.of(x))]


def _eigh_vjp(b, x, w, v, gw, gv, UPLO):
    f = _safe_recip(b, _pair_diff(b, w))
    inner = b.add(b.mul(f, b.matmul(_mT(b, v), gv)), einsum_op(b, "...i->...ii", gw))
    g = b.matmul(b.matmul(v, inner), _mT(b, v))
    gs = b.mul(b.add(g, _mT(b, g)), 0.5)
    return (_stored_half(b, gs, UPLO == "L"),)


register(OpDef(Op.EIGH, Kind.HOST, _eigh_infer,
               _lapack(Op.EIGH, lambda x, UPLO: tuple(numpy.linalg.eigh(x, UPLO))), _eigh_vjp,
               doc="(eigenvalues ascending, eigenvectors) of a symmetric matrix stored in one triangle; "
                   "gradient for distinct eigenvalues"))


def _svd_infer(x):
    _lapack_dtype(Op.SVD, x)
    if len(x.shape) < 2:
        raise ShapeError(f"svd: needs 2 or more dims, got shape {tuple(x.shape)} ({dtypes.of(x)})")
    m, n = x.shape[-2:]
    k, batch, dt = min(m, n), tuple(x.shape[:-2]), dtypes.of(x)
    return [(batch + (m, k), dt), (batch + (k,), dt), (batch + (k, n), dt)]


def _svd_vjp(b, x, u, s, vh, gu, gs, gvh):
    """A = U S Vh (reduced). Pairs of equal singular values, and zero singular values in the
    terms that divide by them, contribute nothing (instead of inf/NaN)."""
    m, n = x.shape[-2:]
    k = s.shape[-1]
    batch = tuple(s.shape[:-1])
    f = _safe_recip(b, _pair_diff(b, b.mul(s, s)))
    s_row = b.broadcast(b.reshape(s, batch + (1, k)), batch + (k, k))
    s_col = b.broadcast(b.reshape(s, batch + (k, 1)), batch + (k, k))
    xu = b.matmul(_mT(b, u), gu)
    yv = b.matmul(vh, _mT(b, gvh))
    p = b.add(b.mul(b.mul(f, b.sub(xu, _mT(b, xu))), s_row), b.mul(s_col, b.mul(f, b.sub(yv, _mT(b, yv)))))
    p = b.add(p, einsum_op(b, "...i->...ii", gs))
    ga = b.matmul(b.matmul(u, p), vh)
    inv_s = _safe_recip(b, s)
    if m > k:
        r = b.sub(gu, b.matmul(u, xu))
        ga = b.add(ga, b.matmul(b.mul(r, b.broadcast(b.reshape(inv_s, batch + (1, k)), batch + (m, k))), vh))
    if n > k:
        r = b.sub(gvh, b.matmul(_mT(b, yv), vh))
        ga = b.add(ga, b.matmul(u, b.mul(b.broadcast(b.reshape(inv_s, batch + (k, 1)), batch + (k, n)), r)))
    return (ga,)


register(OpDef(Op.SVD, Kind.HOST, _svd_infer,
               _lapack(Op.SVD, lambda x: tuple(numpy.linalg.svd(x, full_matrices=False))), _svd_vjp,
               doc="reduced SVD (u, s descending, vh); gradient for distinct nonzero singular values"))
