"""Compiled vs interpreted, op by op: every elementwise row of the op table, reductions over
axes, layout index maps, matmul, indexing, fan-out, special values."""

from __future__ import annotations

import numpy
import pytest

from tracegrad.ir import TABLE, Kind, Op
from tracegrad.codegen import plan

from cg_helpers import check, make

F32, F64 = numpy.dtype("float32"), numpy.dtype("float64")
_PARAMS = {
    Op.INTEGER_POW: [{"n": 2}, {"n": 3}, {"n": 5}, {"n": 0}],
    Op.CLIP: [{"lo": 0.2, "hi": 0.7}, {"lo": None, "hi": 0.5}],
    Op.CAST: [{"dtype": numpy.dtype("float64")}, {"dtype": numpy.dtype("int32")}],
}
_BOOL_IN = {Op.LOGICAL_NOT, Op.LOGICAL_AND, Op.LOGICAL_OR, Op.LOGICAL_XOR}


def _elementwise_rows():
    return [r for r in TABLE.values() if r.kind is Kind.ELEMENTWISE and r.render is not None]


def _all_elementwise(dt):
    def fn(b, x, y, c):
        outs = []
        for r in _elementwise_rows():
            if r.op is Op.SELECT:
                outs.append(b.op(r.op, c, x, y))
                continue
            arity = 2 if "{1}" in r.render else 1
            ins = (c, b.logical_not(c)) if r.op in _BOOL_IN else (x, y)
            for params in _PARAMS.get(r.op, [{}]):
                outs.append(b.op(r.op, *ins[:arity], **params))
        return outs

    return fn


@pytest.mark.parametrize("dt", [F32, F64])
def test_every_elementwise_row(dt):
    rs = numpy.random.RandomState(1)
    shape = (3, 5)
    x = rs.uniform(0.1, 0.9, shape).astype(dt)
    y = rs.uniform(0.1, 0.9, shape).astype(dt)
    c = rs.uniform(size=shape) > 0.5
    t = make(_all_elementwise(dt), (shape, dt), (shape, dt), (shape, bool))
    check(t, [x, y, c], rtol=3e-6 if dt == F32 else 1e-12)


def test_special_values_propagate():
    v = numpy.array([numpy.nan, numpy.inf, -numpy.inf, 0.0, -0.0, 1e-30, 1e30, -3.5, 9.0, 20.0, -0.3, 0.7],
                    numpy.float32)

    def fn(b, x):
        return [b.tanh(x), b.exp(x), b.sigmoid(x), b.relu(x), b.maximum(x, b.neg(x)), b.minimum(x, 0.5),
                b.abs(x), b.clip(x, lo=-1.0, hi=1.0), b.div(x, 0.0), b.sign(x), b.log(x)]

    check(make(fn, (v.shape, v.dtype)), [v], rtol=1e-6, atol=0)


def test_fast_transcendentals_accuracy_ulp():
    """float32 tanh/exp/sigmoid (branch-free polynomials) are correctly rounded but for 0.001 ulp."""
    x = numpy.concatenate([numpy.linspace(-12, 12, 200001), numpy.logspace(-9, 1.2, 20001),
                           -numpy.logspace(-9, 1.2, 20001)]).astype(numpy.float32)
    xe = numpy.linspace(-80, 80, 100001).astype(numpy.float32)
    t = make(lambda b, a, e: [b.tanh(a), b.sigmoid(a), b.exp(e)], (x.shape, x.dtype), (xe.shape, xe.dtype))
    from tracegrad.codegen import compile_trace

    th, sg, ex = compile_trace(t)([x, xe])
    x64 = x.astype(numpy.float64)
    for got, ref in [(th, numpy.tanh(x64)), (sg, 1 / (1 + numpy.exp(-x64))), (ex, numpy.exp(xe.astype(numpy.float64)))]:
        ulp = numpy.spacing(numpy.abs(ref).astype(numpy.float32)).astype(numpy.float64)
        err = numpy.abs(got.astype(numpy.float64) - ref) / ulp
        assert err.max() <= 0.51, (err.max(), x[err.argmax()] if got is not ex else xe[err.argmax()])


REDUCE_OPS = [Op.REDUCE_SUM, Op.REDUCE_MAX, Op.REDUCE_MIN, Op.REDUCE_PROD]


def test_reductions_over_axes():
    shape = (3, 4, 5)
    axes_list = [(0,), (1,), (2,), (0, 1), (1, 2), (0, 2), (0, 1, 2)]

    def fn(b, x, i):
        outs = []
        for op in REDUCE_OPS:
            for axes in axes_list:
                for keep in (False, True):
                    outs.append(b.op(op, b.mul(x, 1.5), axes=axes, keepdims=keep))
        outs.append(b.reduce_sum(i, axes=(1,), keepdims=False))
        outs.append(b.reduce_max(i, axes=(0, 2), keepdims=False))
        outs.append(b.argmax(x, axis=1, keepdims=False))  # host steps (numpy rules)
        outs.append(b.argmin(b.neg(x), axis=None, keepdims=False))
        outs.append(b.prod_others(b.mul(x, 2.0), axes=(1,)))
        return outs

    rs = numpy.random.RandomState(2)
    x = rs.uniform(0.5, 1.5, shape).astype(numpy.float32)
    i = rs.randint(-50, 50, shape).astype(numpy.int64)
    check(make(fn, (shape, F32), (shape, numpy.int64)), [x, i], rtol=2e-6)


def test_layout_index_maps_and_fanout():
    def fn(b, x, v, m):
        xt = b.transpose(x, perm=(1, 0))  # [5, 4]
        s = b.slice(x, index=((None, None, 2), (1, 4, 1)))  # [2, 3]
        s2 = b.slice(x, index=(-1, None, (None, None, -1)))  # [1, 5]
        r = b.reshape(x, shape=(2, 10))
        vb = b.broadcast_to(v, shape=(4, 5))
        h = b.tanh(b.add(x, vb))  # fan-out: used by three consumers below
        y1 = b.mul(h, h)
        y2 = b.reduce_sum(b.mul(h, vb), axes=(1,), keepdims=True)
        y3 = b.transpose(b.sub(h, 1.0), perm=(1, 0))
        sv = b.slice_vjp(s, index=((None, None, 2), (1, 4, 1)), shape=(4, 5))
        cc = b.concatenate(x, m, axis=0)
        return [xt, b.exp(s), s2, b.add(r, 1.0), y1, y2, y3, sv, b.mul(cc, 2.0), b.reshape(y2, shape=(2, 2))]

    rs = numpy.random.RandomState(3)
    x = rs.randn(4, 5).astype(numpy.float32)
    v = rs.randn(5).astype(numpy.float32)
    m = rs.randn(2, 5).astype(numpy.float32)
    check(make(fn, ((4, 5), F32), ((5,), F32), ((2, 5), F32)), [x, v, m])


def test_matmul_gather_scatter_and_backward_trace():
    from tracegrad.ir.trace_builder import grad_trace

    def fwd(b, x, w, bias, idx):
        h = b.tanh(b.add(b.matmul(x, w), b.broadcast_to(bias, shape=(6, 3))))
        g = b.gather(h, idx, key=("@",))  # rows picked (repeats: scatter-add in the backward)
        return b.reduce_sum(b.mul(g, g), axes=(0, 1), keepdims=False)

    rs = numpy.random.RandomState(4)
    args = [rs.randn(6, 4).astype(numpy.float32), rs.randn(4, 3).astype(numpy.float32),
            rs.randn(3).astype(numpy.float32), numpy.array([0, 2, 2, 5, 0], numpy.int64)]
    t = make(fwd, ((6, 4), F32), ((4, 3), F32), ((3,), F32), ((5,), numpy.int64))
    gt = grad_trace(t, wrt=[0, 1, 2])
    check(gt, args, rtol=1e-5)


def test_w1_is_one_flat_loop():
    """y = 2*x*x; dy/dx with head gradient ones: one kernel reading x, writing the gradient."""
    from tracegrad.ir.trace_builder import grad_trace

    t = make(lambda b, x: b.reduce_sum(b.mul(b.mul(x, 2.0), x), axes=(0,), keepdims=False), (((1 << 20),), F32))
    gt = grad_trace(t, wrt=[0])
    gt = type(gt)(gt.inputs, gt.eqns, gt.outputs[-1:])  # only the gradient is read
    p = plan(gt)
    ks = p.kernels()
    assert len(p.steps) == 1 and len(ks) == 1 and not ks[0].nested and ks[0].parallel
    assert ks[0].reads == [gt.inputs[0]] and ks[0].writes == [gt.outputs[0]]
