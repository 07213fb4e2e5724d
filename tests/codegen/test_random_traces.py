"""Random traces (hypothesis): chains of 1-30 ops with broadcasting, reductions over axes,
layout ops, matmul, gather, fan-out; compiled vs the reference interpreter."""

from __future__ import annotations

import numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cg_helpers import check, make

F32 = numpy.dtype("float32")
UNARY = ["tanh", "sin", "sigmoid", "neg", "abs", "relu", "square", "scale", "shift", "exp_tanh"]
STEPS = ["unary", "unary", "binary", "binary", "reduce", "transpose", "reshape", "slice", "matmul", "gather"]


def _build(ops, m, n):
    def fn(b, x, v, idx):
        pool = [x, b.broadcast(v, (m, n)), b.tanh(x)]
        for kind, a, c, r in ops:
            u = pool[a % len(pool)]
            w = pool[c % len(pool)]
            if kind == "unary":
                name = UNARY[r % len(UNARY)]
                if name == "square":
                    u = b.integer_pow(u, n=2)
                elif name == "scale":
                    u = b.mul(u, 0.75)
                elif name == "shift":
                    u = b.add(u, -0.25)
                elif name == "exp_tanh":
                    u = b.exp(b.tanh(u))
                else:
                    u = getattr(b, name)(u)
            elif kind == "binary":
                op = ["add", "sub", "mul", "maximum", "minimum"][r % 5]
                if u.shape != w.shape:
                    try:
                        shape = numpy.broadcast_shapes(u.shape, w.shape)
                    except ValueError:
                        w = b.reduce_sum(w, axes=tuple(range(len(w.shape))), keepdims=False)
                        shape = u.shape
                    u, w = b.broadcast(u, shape), b.broadcast(w, shape)
                u = getattr(b, op)(u, w)
            elif kind == "reduce" and u.shape:
                nd = len(u.shape)
                axes = tuple(sorted({(r + k) % nd for k in range(1 + r % nd)}))
                u = b.op(b_ops[r % 3], u, axes=axes, keepdims=bool(r & 4))
            elif kind == "transpose" and len(u.shape) == 2:
                u = b.transpose(u, perm=(1, 0))
            elif kind == "reshape" and u.shape:
                u = b.reshape(u, shape=(int(numpy.prod(u.shape)),))
            elif kind == "slice" and u.shape and u.shape[0] > 1:
                u = b.slice(u, index=((r % 2, None, 1 + r % 2),))
            elif kind == "matmul" and len(u.shape) == 2:
                u = b.matmul(u, b.transpose(u, perm=(1, 0)))
            elif kind == "gather" and len(u.shape) == 2 and u.shape[0] == m:
                u = b.gather(u, idx, key=("@",))
            pool.append(u)
        outs = [pool[-1]] + [pool[j] for j in range(3, len(pool) - 1, 3)]
        return outs

    from tracegrad.ir import Op

    b_ops = [Op.REDUCE_SUM, Op.REDUCE_MAX, Op.REDUCE_MIN]
    return fn


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    ops=st.lists(st.tuples(st.sampled_from(STEPS), st.integers(0, 40), st.integers(0, 40), st.integers(0, 40)),
                 min_size=1, max_size=30),
    m=st.integers(1, 5),
    n=st.integers(1, 6),
)
def test_random_traces_match_the_interpreter(ops, m, n):
    t = make(_build(ops, m, n), ((m, n), F32), ((n,), F32), ((3,), numpy.dtype("int64")))
    rs = numpy.random.RandomState(len(ops))
    args = [rs.uniform(-1, 1, (m, n)).astype(F32), rs.uniform(-1, 1, (n,)).astype(F32),
            numpy.array([0, m - 1, 0], numpy.int64)]
    check(t, args, rtol=1e-4, atol=1e-5)
