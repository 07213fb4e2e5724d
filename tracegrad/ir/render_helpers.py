"""Building blocks of the rows' render functions (see `ops.Render`).

The CPU target's generated module provides `_maximum`, `_minimum`, `_sign`,
`_sigmoid_float64`, `_ZERO`, `_ONE` and the tanh fit's constants `_TK`, `_P0..5`, `_Q0..5`
(codegen/cpu.py PRELUDE); the CUDA target's kernel globals provide `math`, `max`, `min` and
the dtype constructors.

float32 `tanh` (a [5/5] rational fit, 0.501 ulp), `exp` and `sigmoid` (Taylor of
exp(x/256), then 8 squarings, in float64) are written out on the CPU target as
straight-line float64 statements before the value: they vectorize (llvmlite has no SVML, so
`math.tanh` would be a scalar libm call per element), and typing a few statements costs
less compile time than inlining a helper.
"""

from __future__ import annotations

from typing import Any

import numpy

from .ops import RenderContext

_POLY_TANH = """\
{o}y = np.float64({x})
{o}t = {o}y * {o}y * _TK - 1.0
{o}v = {o}y * (_P0 + {o}t * (_P1 + {o}t * (_P2 + {o}t * (_P3 + {o}t * (_P4 + {o}t * _P5))))) / (_Q0 + {o}t * (_Q1 + {o}t * (_Q2 + {o}t * (_Q3 + {o}t * (_Q4 + {o}t * _Q5)))))
{o}v = ((1.0 if {o}y > 0.0 else -1.0) if abs({o}y) > 9.02 else {o}v)"""

_POLY_EXP = """\
{o}e = np.float64({x}) * {k}
{o}e = 120.0 if {o}e > 120.0 else {o}e
{o}e = -120.0 if {o}e < -120.0 else {o}e
{o}e = {o}e * 0.00390625
{o}p = 1.0 + {o}e * (1.0 + {o}e * (0.5 + {o}e * (1.0 / 6.0 + {o}e * (1.0 / 24.0 + {o}e * (1.0 / 120.0 + {o}e * (1.0 / 720.0 + {o}e * (1.0 / 5040.0 + {o}e * (1.0 / 40320.0 + {o}e * (1.0 / 362880.0 + {o}e * (1.0 / 3628800.0 + {o}e * (1.0 / 39916800.0)))))))))))
{o}p = {o}p * {o}p
{o}p = {o}p * {o}p
{o}p = {o}p * {o}p
{o}p = {o}p * {o}p
{o}p = {o}p * {o}p
{o}p = {o}p * {o}p
{o}p = {o}p * {o}p
{o}p = {o}p * {o}p"""


def _is_f32(ctx: RenderContext) -> bool:
    return numpy.dtype(ctx.in_dtype) == numpy.dtype("float32")


def _emit_all(ctx: RenderContext, text: str) -> None:
    for line in text.splitlines():
        ctx.emit(line)


def _atomic(s: str) -> bool:
    return bool(s) and all(ch.isalnum() or ch == "_" for ch in s)


def cpu_minmax(kind: str, a: str, b: str) -> str:
    """NaN-propagating max/min ("maximum"/"minimum"): over plain names the helper's own
    expression (typing a call to an inlined helper costs compile time), else the call."""
    if _atomic(a) and _atomic(b):
        op = ">" if kind == "maximum" else "<"
        return f"({a} if ({a} {op} {b} or {a} != {a}) else {b})"
    return f"_{kind}({a}, {b})"


def cpu_cast(x: str, dtype: Any) -> str:
    """`x` converted to `dtype` in the CPU target's source."""
    dt = numpy.dtype(dtype)
    if dt == numpy.dtype(bool):
        return f"bool({x})"
    return f"np.{dt.name}({x})"


def cpu_exp(ctx: RenderContext, x: str) -> str:
    if not _is_f32(ctx):
        return f"math.exp({x})"
    o = ctx.local()
    _emit_all(ctx, _POLY_EXP.format(o=o, x=x, k="1.0"))
    return f"np.float32({o}p)"


def cpu_tanh(ctx: RenderContext, x: str) -> str:
    if not _is_f32(ctx):
        return f"math.tanh({x})"
    o = ctx.local()
    _emit_all(ctx, _POLY_TANH.format(o=o, x=x))
    return f"np.float32({o}v)"


def cpu_sigmoid(ctx: RenderContext, x: str) -> str:
    if not _is_f32(ctx):
        return f"_sigmoid_float64({x})"
    o = ctx.local()
    _emit_all(ctx, _POLY_EXP.format(o=o, x=x, k="-1.0"))
    return f"np.float32(1.0 / (1.0 + {o}p))"


def cpu_ipow(ctx: RenderContext, x: str, n: int) -> str:
    n = int(n)
    if n == 0:
        return "_ONE"
    if 1 <= n <= 4:
        return "(" + " * ".join([x] * n) + ")"
    return f"({x} ** {n})"


def cuda_ipow(ctx: RenderContext, x: str, n: int) -> str:
    n, t = int(n), ctx.tname
    if n == 0:
        return f"{t}(1)"
    prod = " * ".join([x] * abs(n))
    return f"({prod})" if n > 0 else f"({t}(1) / ({prod}))"


def cpu_clip(ctx: RenderContext, x: str, lo: Any, hi: Any) -> str:
    if lo is not None:
        x = cpu_minmax("maximum", x, ctx.const(lo, ctx.dtype))
    if hi is not None:
        x = cpu_minmax("minimum", x, ctx.const(hi, ctx.dtype))
    return x


def cuda_clip(ctx: RenderContext, x: str, lo: Any, hi: Any) -> str:
    t = ctx.tname
    if lo is not None:
        x = f"max({x}, {t}({lo!r}))"
    if hi is not None:
        x = f"min({x}, {t}({hi!r}))"
    return x
