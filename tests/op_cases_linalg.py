"""Op cases of the numpy/linalg ops (issue 9): einsum, cumsum, tril/triu, sort/argsort/topk,
pad, meshgrid and np.linalg (norm, inv, det, slogdet, solve, cholesky, eigh, svd).

op_cases.py adds `build(Case)` to ALL (as LINALG), so the forward, gradient and coverage
tests run them; this module never imports op_cases (so either can be imported first).
Decompositions are checked through functions that do not depend on the sign of each
singular/eigen vector (their squares), and on matrices kept well away from singular.
"""

from __future__ import annotations

import math

import numpy

from tracegrad import np as tnp
from tracegrad import npx
from tracegrad.ir import Op


def _case(name, tg, ref, shapes, *ops, lo=-1.0, hi=1.0, grad=True, gap=0.0, rtol=1e-6, eps=1e-6):
    return dict(name=name, tg=tg, ref=ref, shapes=shapes, lo=lo, hi=hi, grad=grad, ops=frozenset(ops),
                positive_gap=gap, eps=eps, rtol=rtol)


def _lib(x):
    return numpy if isinstance(x, numpy.ndarray) else tnp


def _shift(a, by=3.0):
    """a + by * I over the last two dims, in a's own library and dtype."""
    eye = numpy.eye(a.shape[-1], dtype=a.dtype) * by
    return a + (eye if isinstance(a, numpy.ndarray) else tnp.array(eye, dtype=a.dtype, device=a.device))


def _cat(*parts):
    lib = _lib(parts[0])
    return lib.concatenate([p.reshape(-1) for p in parts])


def _ein(spec):
    return lambda *xs: _lib(xs[0]).einsum(spec, *xs)


EINSUM = [
    _case(f"einsum[{spec}]", _ein(spec), _ein(spec), shapes, Op.EINSUM)
    for spec, shapes in [
        ("ij,jk->ik", ((2, 3), (3, 4))),
        ("ii->i", ((3, 3),)),
        ("ii", ((3, 3),)),
        ("ji", ((2, 3),)),
        ("...ij,...jk", ((2, 2, 3), (3, 4))),
        ("bij,bjk->bik", ((2, 2, 3), (2, 3, 4))),
        ("i,j", ((3,), (2,))),
        ("ij->", ((2, 3),)),
        ("ij,ij->ij", ((2, 1), (2, 3))),
        ("ij,jk,kl->il", ((2, 3), (3, 4), (4, 2))),
        ("iij->ji", ((3, 3, 2),)),
        ("i...->...", ((2, 3, 4),)),
        ("bhqd,bhkd->bhqk", ((2, 2, 3, 4), (2, 2, 5, 4))),
    ]
]


def _cumsum(axis, dtype=None):
    return lambda x: _lib(x).cumsum(x, axis=axis, dtype=dtype)


SCAN_TRI = [
    _case(f"cumsum[axis={a}]", _cumsum(a), _cumsum(a), ((2, 3, 4),), Op.CUMSUM) for a in (None, 0, -1)
] + [
    _case("cumsum[dtype=float64]", lambda x: _lib(x).cumsum(x > 0, axis=1, dtype="float64") * x,
          lambda x: numpy.cumsum(x > 0, axis=1, dtype="float64") * x, ((3, 4),), Op.CUMSUM,
          gap=0.01),  # x > 0 jumps at 0: keep finite differences off the kink at any size
    _case("tril", lambda x: _lib(x).tril(x), lambda x: numpy.tril(x), ((3, 4),), Op.TRI),
    _case("tril[k=-1]", lambda x: _lib(x).tril(x, -1), lambda x: numpy.tril(x, -1), ((2, 3, 3),), Op.TRI),
    _case("triu[k=1]", lambda x: _lib(x).triu(x, k=1), lambda x: numpy.triu(x, k=1), ((4, 3),), Op.TRI),
    _case("triu[1-d]", lambda x: _lib(x).triu(x), lambda x: numpy.triu(x), ((3,),), Op.TRI),
]


def _sorted(axis, descending=False):
    def f(x):
        if isinstance(x, numpy.ndarray):
            s = numpy.sort(x, axis=axis)
            return numpy.flip(s, axis=0 if axis is None else axis) if descending else s
        return tnp.sort(x, axis=axis, descending=descending)

    return f


def _topk_ref(x, k, ret_typ, is_ascend, axis=-1):
    idx = numpy.argsort(x, axis=axis, kind="stable")
    if not is_ascend:
        idx = numpy.flip(idx, axis)
    idx = numpy.take(idx, numpy.arange(k), axis=axis)
    vals = numpy.take_along_axis(x, idx, axis)
    if ret_typ == "value":
        return vals
    if ret_typ == "indices":
        return idx.astype(numpy.float32)
    mask = numpy.zeros_like(x)
    numpy.put_along_axis(mask, idx, 1, axis)
    return mask


SORT = [
    _case("sort", _sorted(-1), _sorted(-1), ((3, 4),), Op.ARGSORT, Op.TAKE_ALONG),
    _case("sort[axis=0,descending]", _sorted(0, True), _sorted(0, True), ((3, 4),), Op.TAKE_ALONG),
    _case("sort[axis=None]", _sorted(None), _sorted(None), ((3, 4),), Op.TAKE_ALONG),
    _case("argsort", lambda x: tnp.argsort(x, axis=0), lambda x: numpy.argsort(x, axis=0), ((3, 4),),
          Op.ARGSORT, grad=False),
    _case("argsort[descending]", lambda x: tnp.argsort(x, descending=True),
          lambda x: numpy.flip(numpy.argsort(x), -1), ((3, 4),), Op.ARGSORT, grad=False),
    _case("topk[value,k=2]", lambda x: npx.topk(x, k=2, ret_typ="value"),
          lambda x: _topk_ref(x, 2, "value", False), ((3, 4),), Op.TAKE_ALONG),
    _case("topk[value,ascend,axis=0]", lambda x: npx.topk(x, axis=0, k=2, ret_typ="value", is_ascend=True),
          lambda x: _topk_ref(x, 2, "value", True, axis=0), ((3, 4),), Op.TAKE_ALONG),
    _case("topk[indices]", lambda x: npx.topk(x, k=3), lambda x: _topk_ref(x, 3, "indices", False),
          ((3, 4),), Op.ARGSORT, grad=False),
    _case("topk[mask]", lambda x: npx.topk(x, k=2, ret_typ="mask") * x,
          lambda x: _topk_ref(x, 2, "mask", False) * x, ((3, 4),), Op.PUT_ALONG),
    _case("topk[both]", lambda x: _cat(*npx.topk(x, k=2, ret_typ="both")),
          lambda x: _cat(_topk_ref(x, 2, "value", False), _topk_ref(x, 2, "indices", False).astype(x.dtype)),
          ((3, 4),), Op.TAKE_ALONG, grad=False),
]


def _pad(width, mode, **kw):
    return lambda x: _lib(x).pad(x, width, mode=mode, **kw)


PAD = [
    _case(f"pad[{mode}]", _pad(((1, 2), (2, 1)), mode), _pad(((1, 2), (2, 1)), mode), ((3, 4),), Op.PAD)
    for mode in ("constant", "edge", "reflect", "symmetric")
] + [
    _case("pad[constant_values=1.5]", _pad(1, "constant", constant_values=1.5),
          _pad(1, "constant", constant_values=1.5), ((2, 3, 2),), Op.PAD),
    _case("pad[reflect,wide]", _pad((3, 4), "reflect"), _pad((3, 4), "reflect"), ((3,),), Op.PAD),
    _case("pad[symmetric,3d]", _pad(((0, 0), (1, 1), (2, 0)), "symmetric"),
          _pad(((0, 0), (1, 1), (2, 0)), "symmetric"), ((2, 2, 3),), Op.PAD),
]


def _mesh(indexing, sparse=False):
    def f(a, b, c):
        grids = _lib(a).meshgrid(a, b, c, indexing=indexing, sparse=sparse)
        return grids[0] * grids[1] + grids[2]

    return f


MESHGRID = [
    _case(f"meshgrid[{ix},sparse={sp}]", _mesh(ix, sp), _mesh(ix, sp), ((2,), (3,), (4,)), Op.BROADCAST_TO)
    for ix in ("xy", "ij")
    for sp in (False, True)
]


def _la(name, *args, **kw):
    return lambda *xs: getattr(_lib(xs[0]).linalg, name)(*xs, *args, **kw)


def _norm(ord=None, axis=None, keepdims=False):
    return lambda x: _lib(x).linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims)


NORM = [
    _case(f"norm[ord={o},axis={a},keepdims={k}]", _norm(o, a, k), _norm(o, a, k), (s,), Op.REDUCE_SUM, gap=0.1)
    for o, a, k, s in [
        (None, None, False, (2, 3, 4)),
        (None, None, True, (2, 3)),
        (None, 1, False, (3, 4)),
        (2, -1, True, (3, 4)),
        (1, 0, False, (3, 4)),
        (3, 1, False, (3, 4)),
        (0.5, 1, False, (3, 4)),
        ("fro", None, False, (3, 4)),
        ("fro", (0, 2), True, (2, 3, 4)),
        (1, None, False, (3, 4)),
        (-1, None, False, (3, 4)),
        (None, None, False, (5,)),
        (1, None, False, (5,)),
        (-2.5, None, False, (5,)),
    ]
] + [
    _case(f"norm[ord={o},axis={a}]", _norm(o, a), _norm(o, a), (s,), Op.ABS, gap=0.1)
    for o, a, s in [(math.inf, None, (3, 4)), (-math.inf, (1, 0), (3, 4)), (math.inf, 1, (3, 4)),
                    (-math.inf, None, (5,))]
] + [
    _case(f"norm[ord={o},axis={a},keepdims={k}]", _norm(o, a, k), _norm(o, a, k), (s,), Op.SVD, rtol=1e-5)
    for o, a, k, s in [("nuc", None, False, (3, 4)), (2, None, False, (4, 3)), (-2, (2, 0), True, (3, 2, 4))]
] + [
    _case("norm[ord=0]", _norm(0, 1), _norm(0, 1), ((3, 4),), grad=False),
]


def _eigh(uplo):
    def f(a):
        w, v = _lib(a).linalg.eigh(a, UPLO=uplo)
        return _cat(w, v * v)

    return f


def _svd(a):
    if isinstance(a, numpy.ndarray):
        u, s, v = numpy.linalg.svd(a, full_matrices=False)
    else:
        u, s, v = tnp.linalg.svd(a)
    return _cat(u * u, s, v * v)


def _slogdet(a):
    sign, logdet = _lib(a).linalg.slogdet(a)
    return _cat(logdet, sign * 0.5)


LINALG = [
    _case("inv", lambda a: _lib(a).linalg.inv(_shift(a)), lambda a: numpy.linalg.inv(_shift(a)), ((2, 3, 3),),
          Op.INV, rtol=1e-5),
    _case("det", lambda a: _lib(a).linalg.det(_shift(a, 1.5)), lambda a: numpy.linalg.det(_shift(a, 1.5)),
          ((2, 3, 3),), Op.DET, rtol=1e-5),
    _case("det_negative", lambda a: _lib(a).linalg.det(-_shift(a)), lambda a: numpy.linalg.det(-_shift(a)),
          ((3, 3),), Op.DET, rtol=1e-5),
    _case("slogdet", lambda a: _slogdet(_shift(a, -3.0)), lambda a: _slogdet(_shift(a, -3.0)), ((2, 3, 3),),
          Op.SLOGDET, rtol=1e-5),
    _case("solve", lambda a, b: _lib(a).linalg.solve(_shift(a), b), lambda a, b: numpy.linalg.solve(_shift(a), b),
          ((2, 3, 3), (2, 3, 2)), Op.SOLVE, rtol=1e-5),
    _case("solve_vector", lambda a, b: _lib(a).linalg.solve(_shift(a), b),
          lambda a, b: numpy.linalg.solve(_shift(a), b), ((3, 3), (3,)), Op.SOLVE, rtol=1e-5),
    _case("solve_batch_bcast", lambda a, b: _lib(a).linalg.solve(_shift(a), b),
          lambda a, b: numpy.linalg.solve(_shift(a), b), ((3, 3), (2, 3, 2)), Op.SOLVE, rtol=1e-5),
    # numpy (and we) read only the lower triangle: the gradient above the diagonal is zero
    _case("cholesky", lambda a: _lib(a).linalg.cholesky(_shift(a * 0.5)),
          lambda a: numpy.linalg.cholesky(_shift(a * 0.5)), ((2, 3, 3),), Op.CHOLESKY, rtol=1e-5),
    _case("eigh", _eigh("L"), _eigh("L"), ((3, 3),), Op.EIGH, rtol=1e-5),
    _case("eigh[UPLO=U]", _eigh("U"), _eigh("U"), ((2, 3, 3),), Op.EIGH, rtol=1e-5),
    _case("svd_wide", _svd, _svd, ((3, 5),), Op.SVD, rtol=1e-5),
    _case("svd_tall", _svd, _svd, ((4, 2),), Op.SVD, rtol=1e-5),
    _case("svd_batch", _svd, _svd, ((2, 3, 3),), Op.SVD, rtol=1e-5),
]



def build(case_cls: type) -> list:
    """The cases, as op_cases.Case objects."""
    return [case_cls(**c) for c in EINSUM + SCAN_TRI + SORT + PAD + MESHGRID + NORM + LINALG]
