"""Random traces (hypothesis): chains of 1-30 ops with broadcasting, reductions over axes,
layout ops, matmul, gather, fan-out; compiled vs the reference interpreter."""

from __future__ import annotations

import os

import numpy
import pytest
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


# ---- a few hundred seeded programs per run, forward and gradients, batched -------------------
# each batch of programs is one Numba module (~0.15 s of compiling per kernel function):
# 160 programs of 1-8 ops per default run; TG_RANDOM_PROGRAMS=2000 runs a deeper search
N_PROGRAMS = int(os.environ.get("TG_RANDOM_PROGRAMS", 160))
PER_TRACE = 20
F64 = numpy.dtype("float64")


def _program(seed):
    rs = numpy.random.RandomState(seed)
    ops = [(STEPS[rs.randint(len(STEPS))], *rs.randint(0, 41, 3)) for _ in range(rs.randint(1, 9))]
    return ops, int(rs.randint(1, 6)), int(rs.randint(1, 7)), F32 if seed % 2 else F64


def _batch(seeds, dtype_of):
    """One trace running the programs `seeds` side by side: (their inputs, one cotangent per
    floating output) -> (their outputs, the gradients w.r.t. their floating inputs)."""
    from tracegrad.ir import Builder, Trace, Var
    from tracegrad.ir.trace_builder import TraceEmitter, vjp_trace

    em = TraceEmitter()
    b = Builder(em)
    ins, outs, args = [], [], []
    for s in seeds:
        ops, m, n, dt = _program(s)
        dt = dtype_of(dt)
        x, v, idx = Var((m, n), dt), Var((n,), dt), Var((3,), numpy.dtype("int64"))
        ins += [x, v, idx]
        rs = numpy.random.RandomState(1000 + s)
        args += [rs.uniform(-1, 1, (m, n)).astype(dt), rs.uniform(-1, 1, (n,)).astype(dt),
                 numpy.array([0, m - 1, 0], numpy.int64)]
        outs += [o for o in _build(ops, m, n)(b, x, v, idx) if o.dtype.kind == "f"]
    fwd = Trace(tuple(ins), tuple(em.eqns), tuple(outs))
    wrt = [i for i, v in enumerate(ins) if v.dtype.kind == "f"]
    t = vjp_trace(fwd, wrt=wrt)
    rs = numpy.random.RandomState(seeds[0])
    cts = [rs.normal(size=o.shape).astype(o.dtype) for o in outs]
    return t, args + cts, len(outs)


def _scale(a):
    a = numpy.abs(a[numpy.isfinite(a)])
    return max(1.0, float(a.max()) if a.size else 1.0)


@pytest.mark.parametrize("first", range(0, N_PROGRAMS, PER_TRACE))
def test_seeded_programs_forward_and_gradients(first):
    """Compiled (threaded kernels from 2^14 elements on) vs the interpreter on the same trace,
    and the float32 programs vs the same programs run in float64 by the interpreter
    (half the programs are float32, half float64)."""
    from tracegrad.codegen import compile_trace
    from tracegrad.runtime.interpret import eval_trace

    seeds = list(range(first, first + PER_TRACE))
    t, args, n_out = _batch(seeds, lambda dt: dt)
    got = compile_trace(t, par_min=1 << 14)([a.copy() for a in args])
    want = eval_trace(t, [a.copy() for a in args])
    t64, _, _ = _batch(seeds, lambda dt: F64)
    ref = eval_trace(t64, [a.astype(F64) if a.dtype.kind == "f" else a for a in args])
    for j, (g, w, r) in enumerate(zip(got, want, ref)):
        assert g.shape == w.shape and g.dtype == w.dtype, (j, g.dtype, w.dtype)
        if g.dtype == F64:
            # the same float64 trace: libm vs numpy transcendental results (an ulp or two)
            # and summation order, through at most 8 ops
            numpy.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-10 * _scale(w), err_msg=f"output {j}")
        else:
            # float32 vs float32: a few ulps per op through at most 8 ops; vs float64: the
            # float32 rounding of the inputs and every intermediate (same bound, looser scale)
            numpy.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * _scale(w), err_msg=f"output {j}")
            if j < n_out:  # the forward values (gradients may differ at float32 ties of max/min)
                numpy.testing.assert_allclose(g, r, rtol=1e-3, atol=1e-3 * _scale(r), err_msg=f"output {j} vs float64")
