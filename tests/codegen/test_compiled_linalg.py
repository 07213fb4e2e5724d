"""Compiled vs interpreted for the numpy/linalg rows (issue 9): each row runs as a host step
between fused kernels, forward and backward (grad_trace), at sizes above 2^15 elements, so
the kernels around them are the parallel ones."""

from __future__ import annotations

import numpy

from tracegrad.ir import Op
from tracegrad.ir.rules_linalg import einsum_op
from tracegrad.ir.trace_builder import grad_trace

from cg_helpers import check, make

F64 = numpy.dtype("float64")


def test_einsum_cumsum_tri_sort_pad_compiled_with_gradients():
    rs = numpy.random.RandomState(0)
    x = rs.uniform(-1, 1, (64, 512))
    y = rs.uniform(-1, 1, (512, 64))
    d = rs.uniform(-1, 1, (512, 8, 8))
    s = rs.uniform(-1, 1, (256, 256))

    def fn(b, x, y, d, s):
        mm = b.einsum(b.tanh(x), b.mul(y, 2.0), subscripts="ij,jk->ik", sizes=())
        diag = einsum_op(b, "...ii->...i", b.sin(d))
        emb = einsum_op(b, "...i->...ii", diag)  # a repeated output letter: the diagonal
        cs = b.cumsum(b.exp(s), axis=1, reverse=False)
        tri = b.tri(b.mul(d, d), k=-1, lower=True)
        srt = b.take_along(s, b.argsort(s, axis=0, descending=True), axis=0)
        pad = b.pad(b.tanh(s), pad_width=((3, 2), (1, 4)), mode="reflect", constant_values=0.0)
        pad2 = b.pad(s, pad_width=((1, 1), (2, 2)), mode="constant", constant_values=1.5)
        return [b.tanh(mm), b.mul(emb, 3.0), b.sin(cs), b.add(tri, 1.0), b.mul(srt, srt), b.mul(pad, pad),
                b.mul(pad2, 2.0)]

    avals = [(a.shape, F64) for a in (x, y, d, s)]
    t = grad_trace(make(fn, *avals))
    ops = {e.op for e in t.eqns}
    assert {Op.EINSUM, Op.CUMSUM, Op.TRI, Op.ARGSORT, Op.TAKE_ALONG, Op.PUT_ALONG, Op.PAD, Op.PAD_VJP} <= ops
    check(t, [x, y, d, s], rtol=1e-9, atol=1e-9)


def test_lapack_rows_compiled_with_gradients():
    rs = numpy.random.RandomState(1)
    n = 512
    a = rs.uniform(-1, 1, (n, 8, 8)) * 0.2 + numpy.eye(8) * 2.0
    c = rs.uniform(-1, 1, (n, 8, 8))
    w = rs.uniform(-1, 1, (n, 6, 8))

    def fn(b, a, c, w):
        sa = b.mul(a, 1.0)
        inv = b.inv(sa)
        det = b.det(sa)
        sign, logdet = b.slogdet(sa)
        sol = b.solve(sa, b.tanh(c))
        chol = b.cholesky(b.add(sa, 0.0))
        ew, ev = b.eigh(sa, UPLO="L")
        u, sv, vh = b.svd(b.sin(w))
        return [b.tanh(inv), b.mul(det, 0.5), b.add(logdet, sign), b.mul(sol, sol), b.exp(b.mul(chol, 0.1)),
                b.mul(ew, 2.0), b.mul(ev, ev), b.mul(u, u), b.sin(sv), b.mul(vh, vh)]

    t = grad_trace(make(fn, *[(v.shape, F64) for v in (a, c, w)]))
    ops = {e.op for e in t.eqns}
    assert {Op.INV, Op.DET, Op.ADJUGATE, Op.SLOGDET, Op.SOLVE, Op.CHOLESKY, Op.EIGH, Op.SVD} <= ops
    check(t, [a, c, w], rtol=1e-8, atol=1e-9)
