"""The op cases (tests/op_cases.py) at sizes that take the compiled, multi-threaded paths,
batched so that one compiled program runs many cases.

`big_inputs(case)` scales a case's input shapes until its largest input has more than
2^15 elements (the CPU renderer's work units are 2^14 elements, so a kernel over such an
input spans several units and, with `par_min=PAR_MIN`, several threads). A case whose
function only accepts its own shapes (fixed index lists, one_hot's depth) keeps them; the
`BIG_EXEMPT` list in the tests names those.

`batch_trace(cases, dtype)` records every case on fresh inputs and lays them out as one
trace `(inputs, cotangents) -> (outputs, gradients)`: the forward outputs of all cases,
then the gradient of `sum(w_i * out_i)` (fixed random `w_i`) for the differentiable ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy

from tracegrad import autograd
from tracegrad import np as tnp
from tracegrad.ir.core import Trace
from tracegrad.ir.trace_builder import vjp_trace
from tracegrad.tracer.lazy import build_trace

from op_cases import Case

BIG = (1 << 15) + 1  # elements of a case's largest input
PAR_MIN = 1 << 15  # kernels at least this large run on the thread pool (default 2^19)


def sample(case: Case, shapes: tuple, seed: int) -> list[numpy.ndarray]:
    """Inputs of `shapes` drawn as `case.inputs` draws them (range, gap around kinks)."""
    rs = numpy.random.RandomState(seed)
    out = []
    for s in shapes:
        v = rs.uniform(case.lo, case.hi, s)
        if case.positive_gap:
            v = numpy.where(numpy.abs(v) < case.positive_gap, numpy.sign(v + 1e-12) * case.positive_gap, v)
        out.append(v)
    return out


def _grow(shapes: tuple, mode: str, k: int) -> tuple:
    def one(s):
        if not s:
            return s
        if mode == "all":
            return tuple(d * k if d > 1 else d for d in s)
        if mode == "last":
            return s[:-1] + (s[-1] * k,)
        return (s[0] * k,) + s[1:]

    return tuple(one(s) for s in shapes)


def _out_size(case: Case, shapes: tuple, check_tg: bool) -> Optional[int]:
    """Elements of the case's output at `shapes` (None: the function rejects them)."""
    xs = [numpy.full(s, (case.lo + case.hi) / 2 + 0.01) for s in shapes]
    try:
        want = numpy.shape(case.ref(*xs)) if case.ref is not None else None
        if check_tg or want is None:
            xs = sample(case, shapes, 0)
            got = case.tg(*[tnp.array(x, dtype="float64") for x in xs]).asnumpy()
            if want is not None:  # the reference must hold at these shapes (values too)
                ref = numpy.asarray(case.ref(*xs))
                if got.shape != ref.shape or not numpy.allclose(got, ref, rtol=1e-9, atol=1e-9, equal_nan=True):
                    return None
            want = got.shape
    except Exception:  # noqa: BLE001  (a function that only takes its own shapes)
        return None
    return math.prod(want)


MAX_OUT = 1 << 20
_FACTORS = sorted({int(1.3**j) for j in range(3, 45)})  # 2 .. ~100000


def _scaled(case: Case) -> Optional[tuple]:
    """The least scaling (every dim, else the last, else the first) whose largest input or
    output reaches BIG elements with an output of at most MAX_OUT."""
    for mode in ("all", "last", "first"):
        prev = case.shapes
        for k in _FACTORS:
            new = _grow(case.shapes, mode, k)
            if new == prev:
                break
            prev = new
            if max(math.prod(s) for s in new) < BIG // 64:  # (an output can be larger)
                continue
            n = _out_size(case, new, check_tg=False)
            if n is None or n > MAX_OUT:
                break
            if max([n] + [math.prod(s) for s in new]) >= BIG:
                m = _out_size(case, new, check_tg=True)  # (values decide a mask's output size)
                if m is not None and m <= MAX_OUT:
                    return new
                break
    return None


_BIG_SHAPES: dict[str, Optional[tuple]] = {}


def big_shapes(case: Case) -> Optional[tuple]:
    """The scaled input shapes of `case`, or None when it only runs at its own shapes."""
    if case.name not in _BIG_SHAPES:
        _BIG_SHAPES[case.name] = _scaled(case)
    return _BIG_SHAPES[case.name]


def big_inputs(case: Case, seed: int = 0) -> list[numpy.ndarray]:
    return sample(case, big_shapes(case) or case.shapes, seed)


@dataclass
class Batch:
    """One trace over many cases (see the module docstring) and the values to run it on."""

    cases: list
    trace: Trace
    args: list  # numpy inputs (leaves in trace order, then cotangents)
    xs: list  # per case: its float64 inputs
    leaf_index: list  # per case: trace-input index of each of its inputs
    weights: list  # per differentiable case: its cotangent w_i (float64)
    n_fwd: int
    grad_cases: list  # indices into `cases` that have gradients (in output order)
    wrt: list  # trace-input indices differentiated (order of the gradient outputs)


def batch_trace(cases: list, dtype: str, seed: int = 0, big: bool = True, inputs: Optional[list] = None) -> Batch:
    """Record `cases` (inputs of `dtype`: `inputs[n]` for case n when given, else drawn,
    scaled when `big`) as one forward+gradient trace."""
    xs, leaves, outs = [], [], []
    with autograd.record():
        for n, case in enumerate(cases):
            if inputs is not None:
                x = inputs[n]
            else:
                x = big_inputs(case, seed + n) if big else case.inputs(seed + n)
            args = [tnp.array(v, dtype=dtype) for v in x]
            for a in args:
                a.attach_grad()
            xs.append(x)
            leaves.append(args)
            outs.append(case.tg(*args))
    fwd, inputs = build_trace(outs)
    pos = {id(a): i for i, a in enumerate(inputs)}
    leaf_index = [[pos.get(id(a)) for a in ls] for ls in leaves]
    grad_cases = [n for n, c in enumerate(cases) if c.grad]
    wrt = sorted({i for n in grad_cases for i in leaf_index[n] if i is not None})
    gout = [fwd.outputs[n] for n in grad_cases]
    vt = vjp_trace(Trace(fwd.inputs, fwd.eqns, tuple(gout)), wrt=wrt)
    rs = numpy.random.RandomState(seed + 999)
    weights = [rs.normal(size=v.shape) for v in gout]
    n_g = len(gout)
    # outputs: every case's forward value, then the gradients (vjp_trace's own outputs
    # repeat the differentiable forward values first: drop those)
    trace = Trace(vt.inputs, vt.eqns, tuple(fwd.outputs) + tuple(vt.outputs[n_g:]))
    args = [a._data for a in inputs] + [w.astype(v.dtype) for w, v in zip(weights, gout)]
    return Batch(cases, trace, args, xs, leaf_index, weights, len(outs), grad_cases, wrt)


def directional_fd(case: Case, xs: list, w: numpy.ndarray, vs: list, eps: float = 1e-6) -> float:
    """d/dt sum(w * ref(xs + t vs)) at 0, by float64 central differences of the numpy reference."""
    f = lambda t: float((w * numpy.asarray(case.ref(*[x + t * v for x, v in zip(xs, vs)]), numpy.float64)).sum())  # noqa: E731
    return (f(eps) - f(-eps)) / (2 * eps)
