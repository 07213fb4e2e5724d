"""The printed trace is a contract: golden strings for the tutorial traces and a backward.

Grammar: tracegrad/ir/printer.py. Public ways to see a trace: `tracegrad.show(y)` (a str)
or `autograd.get_symbol(y)` (an `ir.Trace`); `ir.grad_trace(trace)` / `ir.vjp_trace(trace)`
give the backward as a trace.
"""

from __future__ import annotations

import inspect

import numpy

import tracegrad
from tracegrad import autograd, ir
from tracegrad import np
from tracegrad.ir import Eqn, Op, Trace, Var, freeze_params
from tracegrad.runtime.interpret import eval_trace


def f(a):
    b = a * 2
    while np.abs(b).sum() < 1000:  # WHILE
        b = b * 2
    if b.sum() >= 0:  # IF
        c = b[0]
    else:
        c = b[1]
    return c


def _where(marker: str) -> str:
    src, first = inspect.getsourcelines(f)
    for i, line in enumerate(src):
        if marker in line:
            return f"test_printer.py:{first + i}"
    raise AssertionError(marker)


TUTORIAL_Y = """\
{ lambda a:f32[2,2] . let
    b:f32[2,2] = mul 2.0 a
    c:f32[2,2] = mul b a
  in (c) }"""

TUTORIAL_Y_GRAD = """\
{ lambda a:f32[2,2] . let
    b:f32[2,2] = mul 2.0 a
    c:f32[2,2] = mul b a
    d:f32[2,2] = broadcast_to[shape=(2,2)] 1.0
    e:f32[2,2] = mul d a
    f:f32[2,2] = mul d b
    g:f32[2,2] = mul e 2.0
    h:f32[2,2] = add f g
  in (c h) }"""

TUTORIAL_F = """\
{{ lambda a:f32[2] . let
    b:f32[2] = mul a 2.0
    c:f32[2] = abs b
    d:f32[] = sum[axes=(0,), keepdims=False] c
    e:bool[] = lt d 1000.0
    guard[expect=True, where={W}] e
    f:f32[2] = mul b 2.0
    g:f32[2] = abs f
    h:f32[] = sum[axes=(0,), keepdims=False] g
    i:bool[] = lt h 1000.0
    guard[expect=False, where={W}] i
    j:f32[] = sum[axes=(0,), keepdims=False] f
    k:bool[] = ge j 0.0
    guard[expect=False, where={I}] k
    l:f32[] = slice[index=(1,)] f
  in (l) }}"""

TUTORIAL_F_GRAD_TAIL = """\
    l:f32[] = slice[index=(1,)] f
    m:f32[] = broadcast_to[shape=()] 1.0
    n:f32[2] = slice_vjp[index=(1,), shape=(2,)] m
    o:f32[2] = mul n 2.0
    p:f32[2] = mul o 2.0
  in (l p) }"""

SMALL = """\
{ lambda a:f32[3] b:f32[3] . let
    c:f32[3] = tanh a
    d:f32[3] = mul c b
    e:f32[] = sum[axes=(0,), keepdims=False] d
  in (e) }"""

SMALL_VJP = """\
{ lambda a:f32[3] b:f32[3] c:f32[] . let
    d:f32[3] = tanh a
    e:f32[3] = mul d b
    f:f32[] = sum[axes=(0,), keepdims=False] e
    g:f32[1] = reshape[shape=(1,)] c
    h:f32[3] = broadcast_to[shape=(3,)] g
    i:f32[3] = mul h b
    j:f32[3] = mul h d
    k:f32[3] = mul d d
    l:f32[3] = sub 1.0 k
    m:f32[3] = mul i l
  in (f m j) }"""


def test_tutorial_y_trace_and_its_backward() -> None:
    x = np.array([[1, 2], [3, 4]])
    x.attach_grad()
    with autograd.record():
        y = 2 * x * x
    assert tracegrad.show(y) == TUTORIAL_Y
    assert str(autograd.get_symbol(y)) == TUTORIAL_Y
    g = ir.grad_trace(autograd.get_symbol(y))
    assert str(g) == TUTORIAL_Y_GRAD
    out, dx = eval_trace(g, [x.asnumpy()])
    numpy.testing.assert_array_equal(dx, [[4, 8], [12, 16]])


def test_tutorial_f_trace_has_one_guard_per_iteration() -> None:
    a = np.array([100.0, -150.0])
    a.attach_grad()
    with autograd.record():
        c = f(a)
    text = tracegrad.show(c)
    assert text == TUTORIAL_F.format(W=_where("# WHILE"), I=_where("# IF"))
    g = ir.grad_trace(autograd.get_symbol(c))
    assert str(g).endswith(TUTORIAL_F_GRAD_TAIL)
    assert sum(e.op is Op.GUARD for e in g.eqns) == 3  # guards stay in the backward program
    out, da = eval_trace(g, [a.asnumpy()])
    numpy.testing.assert_array_equal(da, [0.0, 4.0])
    c.backward()
    numpy.testing.assert_array_equal(a.grad.asnumpy(), [0.0, 4.0])


def test_a_trace_built_by_hand_and_its_vjp() -> None:
    f32 = numpy.dtype("float32")
    x, y, t, p, s = Var((3,), f32), Var((3,), f32), Var((3,), f32), Var((3,), f32), Var((), f32)
    trace = Trace(
        (x, y),
        (
            Eqn(Op.TANH, (x,), (t,)),
            Eqn(Op.MUL, (t, y), (p,)),
            Eqn(Op.REDUCE_SUM, (p,), (s,), freeze_params({"axes": (0,), "keepdims": False})),
        ),
        (s,),
    )
    assert str(trace) == SMALL
    vjp = ir.vjp_trace(trace)
    assert str(vjp) == SMALL_VJP
    xv, yv = numpy.array([0.1, 0.2, 0.3], f32), numpy.array([1.0, 2.0, 3.0], f32)
    out, gx, gy = eval_trace(vjp, [xv, yv, numpy.array(2.0, f32)])
    numpy.testing.assert_allclose(gx, 2 * yv * (1 - numpy.tanh(xv) ** 2), rtol=1e-6)
    numpy.testing.assert_allclose(gy, 2 * numpy.tanh(xv), rtol=1e-6)
    assert trace.key() == Trace(trace.inputs, trace.eqns, trace.outputs).key()


def test_names_continue_past_z() -> None:
    f32 = numpy.dtype("float32")
    x = Var((), f32)
    eqns, cur = [], x
    for _ in range(30):
        nxt = Var((), f32)
        eqns.append(Eqn(Op.NEG, (cur,), (nxt,)))
        cur = nxt
    lines = str(Trace((x,), tuple(eqns), (cur,))).splitlines()
    assert lines[25].strip().startswith("z:f32[] = neg y")
    assert lines[26].strip().startswith("aa:f32[] = neg z")
    assert lines[-1].strip() == "in (ae) }"


def test_literal_and_param_forms() -> None:
    x = np.array([1.0, 2.0, 3.0])
    x.attach_grad()
    with autograd.record():
        y = (x > 1.5) * 1 + x.astype("float64")[::2].sum(keepdims=True) + np.clip(x, 0, 2)
    text = tracegrad.show(y)
    assert "gt a 1.5" in text
    assert "cast[dtype=float64]" in text and "cast[dtype=bool]" not in text
    assert "slice[index=((0,3,2),)]" in text
    assert "clip[hi=2.0, lo=0.0]" in text
