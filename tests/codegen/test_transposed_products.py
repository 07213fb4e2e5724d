"""The `transposed_products` pass: `swap(a @ b)` becomes `swap(b) @ swap(a)` (a double swap
reads the original), so a product consumed transposed leaves BLAS in its consumer's layout.
Values equal the unrewritten trace's (interpreter) and the compiled program's; the cases it
must leave alone are left alone."""

from __future__ import annotations

import numpy

from tracegrad.ir.core import Trace
from tracegrad.ir.ops import Op
from tracegrad.ir.passes import dce, optimize, transposed_products

from cg_helpers import check, make

F32 = numpy.float32


def _swap(b, x):
    n = len(x.shape)
    return b.transpose(x, perm=tuple(range(n - 2)) + (n - 1, n - 2))


def _ops(t):
    return [e.op for e in t.eqns]


def _args(rs, *shapes):
    out = [rs.standard_normal(s).astype(F32) for s in shapes]
    out[0].flat[:3] = (0.0, -0.0, -2.5)  # zeros and negatives
    return out


def test_weight_gradient_form_becomes_a_product_in_the_weight_layout():
    # dW = swap(swap(x) @ g): x (n, k), g (n, m) -> (m, k); after the pass: swap(g) @ x
    t = make(lambda b, x, g: b.mul(_swap(b, b.matmul(_swap(b, x), g)), 2.0), ((300, 70), F32), ((300, 40), F32))
    r = dce(transposed_products(t))  # the unrewritten product is left for dead code
    mm = [e for e in r.eqns if e.op is Op.MATMUL]
    assert len(mm) == 1 and mm[0].out.shape == (40, 70)
    assert mm[0].ins[1] is t.inputs[0]  # swap(swap(x)) reads x itself
    assert r.outputs == t.outputs and r.inputs == t.inputs
    o = optimize(t)
    assert [e.out.shape for e in o.eqns if e.op is Op.MATMUL] == [(40, 70)]
    assert Op.TRANSPOSE in _ops(o)  # swap(g) stays: BLAS reads it in place
    args = _args(numpy.random.default_rng(0), (300, 70), (300, 40))
    # the products sum 300 terms in another order: float32 rounding of the terms' magnitudes
    bound = 8 * numpy.finfo(F32).eps * (2 * numpy.abs(args[1]).T @ numpy.abs(args[0])).max()
    prog = check(t, args, rtol=0, atol=bound)
    truth = 2 * (args[1].astype("float64").T @ args[0].astype("float64"))
    numpy.testing.assert_allclose(prog([a.copy() for a in args])[0], truth, rtol=0, atol=bound)


def test_batched_product_and_nan_inf_values():
    t = make(lambda b, a, c: _swap(b, b.matmul(a, c)), ((3, 5, 6), F32), ((3, 6, 4), F32))
    r = dce(transposed_products(t))
    assert [e.out.shape for e in r.eqns if e.op is Op.MATMUL] == [(3, 4, 5)]
    args = _args(numpy.random.default_rng(1), (3, 5, 6), (3, 6, 4))
    args[0][1, 2, 3] = numpy.inf
    args[1][2, 0, 1] = numpy.nan
    check(t, args)


def test_left_alone_when_the_product_has_another_consumer_or_broadcasts():
    shared = make(lambda b, a, c: [(p := b.matmul(a, c)), _swap(b, p)], ((5, 6), F32), ((6, 4), F32))
    assert transposed_products(shared) is shared
    bcast = make(lambda b, a, c: _swap(b, b.matmul(a, c)), ((3, 5, 6), F32), ((6, 4), F32))
    assert transposed_products(bcast) is bcast
    other_perm = make(lambda b, a, c: b.transpose(b.matmul(a, c), perm=(2, 0, 1)), ((3, 5, 6), F32), ((3, 6, 4), F32))
    assert transposed_products(other_perm) is other_perm
    check(bcast, _args(numpy.random.default_rng(2), (3, 5, 6), (6, 4)))


def test_product_that_is_an_output_is_left_alone():
    t = make(lambda b, a, c: [(p := b.matmul(a, c)), b.neg(p)], ((5, 6), F32), ((6, 4), F32))
    t2 = make(lambda b, a, c: _swap(b, b.matmul(a, c)), ((5, 6), F32), ((6, 4), F32))
    t2 = Trace(t2.inputs, t2.eqns, t2.outputs + (t2.eqns[0].out,))  # the product itself is returned too
    assert transposed_products(t2) is t2
    check(t2, _args(numpy.random.default_rng(3), (5, 6), (6, 4)))
    assert transposed_products(t) is t
