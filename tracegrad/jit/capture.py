"""The capture context: observes one real run of a step and writes it down as ONE trace.

`Capture` implements the tracer's declared hooks (`tracer.hooks.CaptureHooks`). While
`STATE.capture` holds one, every op goes lazy and is reported here
(`on_apply`), every sync point becomes a GUARD eqn with the outcome Python saw
(`on_guard`), and every write into a buffer is reported (`on_inplace`, `on_setitem`,
`on_grad_write`). The body still runs for real: sync points, in-place updates and
backward compute their values as usual, so the first call returns exactly what Python
gives.

Arrays map to trace variables by identity; a write gives the written array a new
variable, so later reads in the body see the new value (a version per write). The inputs
of the trace are the external arrays the step read, each with a *binding* that says where
a replay finds it:

    ("arg", path)       an Array argument          (its ._data)
    ("argnp", path)     a numpy argument           (the array itself)
    ("grad", binding)   the .grad buffer of a bound array
    ("obj", array)      an array held by identity  (closure, global, attribute)
    ("npobj", ndarray)  a numpy array the step reaches (global, closure, attribute), by identity
    ("const", data)     an array created inside the step (a snapshot of its value)
    ("scalar", path, dtype)  a float argument used directly by array ops (0-d input)

A random draw arrives as a `RandomRecipe` and is drawn again before each replay.
Constructs a replay cannot reproduce (custom Functions, values read by
Python, attach_grad on outside arrays of another kind...) make the capture *unjittable*
with a reason naming the user's line; the caller then runs the function as plain Python.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Optional

import numpy

from .. import device as _device
from ..errors import ShapeError
from ..ir.core import Eqn, Lit, Trace, Var, freeze_params
from ..ir.ops import TABLE, Kind, Op
from ..tracer.array import Array
from ..tracer.hooks import CaptureHooks, RandomRecipe
from ..tracer.lazy import apply, make_lit
from ..tracer.recording import TraceRecorder
from ..tracer.state import STATE
from ..where import user_line
from .scalars import TaggedFloat, plain_value

EXTERNAL = ("arg", "argnp", "grad", "obj", "npobj")


def external(b: tuple) -> bool:
    """Whether a binding names a buffer the caller can see (not one made inside the step)."""
    if b[0] == "grad":
        return external(b[1])
    return b[0] in EXTERNAL


class Capture(CaptureHooks, TraceRecorder):
    """Records one run of a step; `finish()` turns the record into a `Captured` step.

    Recorded ops become eqns through the tracer's `TraceRecorder`; operands are the
    capture's own variables (inputs with bindings, scalar arguments).
    """

    def __init__(self, arg_arrays: dict[int, tuple], arg_np: dict[int, tuple], arg_objects: list) -> None:
        TraceRecorder.__init__(self)
        self.active = True
        self.quiet = 0  # >0 while the capture itself reads values (not a Python read)
        self.arg_arrays = arg_arrays
        self.arg_np = arg_np
        self.env: dict[int, Var] = {}
        self.keep: list[Any] = []  # strong references: ids stay unique while capturing
        self.inputs: list[tuple[Var, tuple]] = []
        self.bound: dict[int, tuple] = {}
        self.eqns: list[Eqn] = []
        self.guards: list[tuple[str, Any]] = []
        self.writes: dict[int, Array] = {}
        self.born: set[int] = set()
        self.produced: set[int] = set()
        self.grad_owner: dict[int, Array] = {}
        self.scalar_lits: dict[int, tuple] = {}
        self.scalar_vars: dict[tuple, Var] = {}
        self.scalar_used: dict[Any, tuple[str, str]] = {}
        self.attach: list[tuple[tuple, str]] = []  # attach_grad on outside arrays, replayed
        self.unjittable: Optional[str] = None
        self.pending_random: Optional[tuple] = None
        self.randoms: list[tuple[Callable, str]] = []  # (recipe, what) per draw, in draw order
        self.consts: set[Var] = set()  # variables computed from constants only (folded by outcome)
        self.np_objects: dict[int, numpy.ndarray] = {}  # numpy arrays the step reaches (set by the jit)
        self.t0 = time.perf_counter()
        for a in arg_objects:
            self.keep.append(a)
            if a._grad is not None:
                self.grad_owner[id(a._grad)] = a

    # ---- failure ----------------------------------------------------------------------
    def fail(self, reason: str) -> None:
        """Mark the step un-jittable (the run itself goes on as plain Python)."""
        if self.unjittable is None:
            self.unjittable = reason

    # ---- variables and bindings -------------------------------------------------------
    def var_of(self, x: Array) -> Var:
        v = self.env.get(id(x))
        if v is not None:
            return v
        if x._data is None:  # lazy from before the capture: its value is fixed by now
            self.quiet += 1
            try:
                x._value()
            finally:
                self.quiet -= 1
        b = self.bind(x)
        v = Var(x.shape, x._dtype)
        self.env[id(x)] = v
        self.inputs.append((v, b))
        self.keep.append(x)
        if b[0] == "const":
            self.consts.add(v)
        return v

    def bind(self, x: Array) -> tuple:
        """Where a replay finds `x` (see the module docstring)."""
        b = self.bound.get(id(x))
        if b is not None:
            return b
        path = self.arg_arrays.get(id(x))
        if path is not None:
            b = ("arg", path)
        elif x._data is not None and id(x._data) in self.arg_np:
            b = ("argnp", self.arg_np[id(x._data)])
        elif x._data is not None and id(x._data) in self.np_objects:
            b = ("npobj", x._data)
        elif id(x) in self.grad_owner:
            b = ("grad", self.bind(self.grad_owner[id(x)]))
        elif id(x) in self.produced:
            b = ("internal",)
        elif id(x) in self.born:
            d = x._data  # device constants are held as they are (no host round trip)
            b = ("const", d if _device.is_device_array(d) else numpy.array(d, copy=True))
        else:
            b = ("obj", x)
        if x._grad is not None and id(x._grad) not in self.grad_owner:
            self.grad_owner[id(x._grad)] = x
        self.bound[id(x)] = b
        self.keep.append(x)
        return b

    def _emit(self, op: Op, ins: tuple, outs: tuple, params: dict) -> None:
        self.eqns.append(Eqn(op, ins, outs, freeze_params(params)))

    def _scalar_var(self, path: Any, dtype: numpy.dtype) -> Var:
        key = (path, dtype.str)
        v = self.scalar_vars.get(key)
        if v is None:
            v = Var((), dtype)
            self.scalar_vars[key] = v
            self.inputs.append((v, ("scalar", path, dtype)))
        return v

    # ---- hooks called by the tracer ---------------------------------------------------
    def on_new(self, a: Array) -> None:
        """An array created inside the step (np.zeros, np.array, a wrapped numpy arg...)."""
        self.keep.append(a)
        if self.pending_random is not None:  # the sample of the draw just announced
            recipe, what = self.pending_random
            self.pending_random = None
            self.bound[id(a)] = ("random", len(self.randoms))
            self.randoms.append((recipe, what))
            return
        self.born.add(id(a))

    def on_apply(self, prod: Any, outs: list) -> None:
        row = TABLE[prod.op]
        if row.kind is Kind.HOST and "fn" in prod.params:  # a host row that calls user code back
            self.fail(f"a custom autograd.Function ({prod.params.get('fn')!r}) at {user_line()} runs "
                      "host code that a compiled step cannot replay")
        ovars = self.add(prod, outs)
        if all(type(a) is Lit or a in self.consts for a in self.eqns[-1].ins):
            self.consts.update(ovars)

    def operand(self, x: Any, p: Any) -> Any:
        if type(x) is Lit:
            s = self.scalar_lits.get(id(x))
            return x if s is None else self._scalar_atom(x, s, p)
        return self.var_of(x)

    def bind_output(self, o: Any, v: Var) -> None:
        self.env[id(o)] = v
        self.produced.add(id(o))
        self.keep.append(o)

    def _scalar_atom(self, lit: Lit, path: Any, prod: Any) -> Any:
        row = TABLE[prod.op]
        v = self._scalar_var(path, lit.dtype)
        if prod.op is Op.BROADCAST_TO:
            return v
        if row.kind is not Kind.ELEMENTWISE:
            self.on_scalar_used(path, f"operand of {prod.op.value}", user_line())
            return lit
        shape = tuple(prod.avals[0][0])
        if shape == ():
            return v
        b = Var(shape, lit.dtype)
        self._emit(Op.BROADCAST_TO, (v,), (b,), {"shape": shape})
        return b

    def on_scalar_lit(self, value: TaggedFloat, dtype: numpy.dtype) -> Lit:
        """make_lit of a tagged float argument: a Lit the trace turns into a runtime input."""
        lit = Lit(dtype.type(plain_value(value)).item(), dtype)
        self.scalar_lits[id(lit)] = value._tg.path
        self.keep.append(lit)
        return lit

    def on_scalar_used(self, path: Any, how: str, where: str) -> None:
        self.scalar_used.setdefault(path, (how, where))

    def on_guard(self, g: Any) -> None:
        x, expect = g.array, g.expect
        if id(x) in self.born and id(x) not in self.env or self.env.get(id(x)) in self.consts:
            return  # computed from constants made inside the step: the outcome cannot change
        if type(expect) is float:
            self.fail(
                f"float()/item() at {g.where} hands a computed float to Python; a compiled step "
                "cannot know what Python does with it (return the array instead)"
            )
            return
        v = self.var_of(x)
        if type(expect) is bool and x._dtype != numpy.bool_:
            b = Var(v.shape, numpy.dtype(numpy.bool_))
            self._emit(Op.NE, (v, make_lit(0, x._dtype)), (b,), {})
            v = b
        elif type(expect) is int and x._dtype.kind == "f":
            b = Var(v.shape, numpy.dtype(numpy.int64))
            self._emit(Op.CAST, (v,), (b,), {"dtype": numpy.dtype(numpy.int64)})
            v = b
        self._emit(Op.GUARD, (v,), (), {"expect": expect, "where": g.where})
        self.guards.append((g.where, expect))

    def on_host_read(self, x: Array) -> None:
        """Python reads an array's value outside a sync point (asnumpy, print, np.array...)."""
        if self.quiet:
            return
        if id(x) in self.born and id(x) not in self.writes and id(x) not in self.produced:
            return
        if self.env.get(id(x)) in self.consts:
            return
        self.fail(
            f"the value of an array of shape {x.shape} is read by Python at {user_line()} "
            "(asnumpy/print/numpy conversion/boolean mask); a replay would not see it change"
        )

    def on_random(self, recipe: RandomRecipe) -> None:
        """A random draw: the sample becomes a runtime input, drawn again on every replay.

        Replays draw with the recipe (its arguments made plain values) before the program,
        in the capture's order, all of them (used or not), so the generator's stream
        advances exactly as in Python.
        """
        where = user_line()
        if recipe.op == "shuffle" or _has_array(list(recipe.params.values())):
            self.fail(f"np.random.{recipe.op} at {where} with array arguments (or in place) inside a compiled "
                      "step: its samples depend on traced values")
            return
        params = {k: plain_value(v) for k, v in recipe.params.items()}
        self.pending_random = (_redraw(recipe, params), f"{recipe.op} at {where}")

    def on_persistent(self, a: Array) -> None:
        """`a`, made inside the step, is state that outlives it (an optimizer's moments):
        bound by identity like an outside array, so replays read and write it."""
        if id(a) in self.born and id(a) not in self.bound:
            self.born.discard(id(a))

    def on_attach_grad(self, x: Array) -> None:
        """attach_grad inside the step: replayed for outside arrays (a fresh zero buffer)."""
        g = x._grad
        self.born.discard(id(g))
        self.grad_owner[id(g)] = x
        self.env.pop(id(g), None)
        if id(x) in self.produced or id(x) in self.born:
            return
        b = self.bind(x)
        if b[0] not in ("arg", "obj"):
            self.fail(f"attach_grad at {user_line()} on an array a replay cannot find")
            return
        self.attach.append((b, x._grad_req))

    def on_detach(self, x: Array) -> Array:
        saved = STATE.recording
        STATE.recording = False
        try:
            return apply(Op.STOP_GRADIENT, [x], {})[0]
        finally:
            STATE.recording = saved

    def on_copy(self, x: Array) -> Array:
        return apply(Op.CAST, [x], {"dtype": x._dtype})[0]

    # ---- writes -----------------------------------------------------------------------
    def on_inplace(self, arr: Array, fn: Any, other: Any) -> Array:
        """`arr op= other`: computed as a new version of `arr`, written for real too."""
        result = fn(arr, other)
        if tuple(result.shape) != tuple(arr.shape):
            raise ShapeError(
                f"in-place op: the result of shape {result.shape} does not fit the array of "
                f"shape {arr.shape}\n  (at {user_line()})"
            )
        if result._dtype != arr._dtype:
            result = apply(Op.CAST, [result], {"dtype": arr._dtype})[0]
        self.write(arr, result)
        return arr

    def write(self, arr: Array, value: Array) -> None:
        """Write `value` into `arr`, both for real and in the trace."""
        self.quiet += 1
        try:
            val = value._value()
            arr._prepare_write()
            arr._data[...] = val
        finally:
            self.quiet -= 1
        v = self.var_of(value)
        self.bind(arr)
        self.env[id(arr)] = v
        self.writes[id(arr)] = arr

    def on_setitem(self, x: Array, key: Any, value: Any, eager: Any) -> None:
        """`x[key] = value` with a basic key; other keys run eagerly and stop the jit."""
        from ..np import indexing as ix
        from ..np._core import as_array

        k = ix._expand(key, x.ndim)
        if any(ix._is_advanced(i) for i in k) or any(isinstance(i, Array) for i in k):
            self.fail(f"x[key] = value with an array index at {user_line()}")
            self.quiet += 1
            try:
                return eager(x, key, value)
            finally:
                self.quiet -= 1
        index = ix._basic_param(k, x.shape)
        sub = TABLE[Op.SLICE].infer(x, index=index)[0][0]
        if isinstance(value, Array) or not isinstance(value, (bool, int, float, numpy.generic)):
            val = as_array(value)
            if val._dtype != x._dtype:
                val = apply(Op.CAST, [val], {"dtype": x._dtype})[0]
            if val.ndim > len(sub):
                extra = val.shape[: val.ndim - len(sub)]
                if any(d != 1 for d in extra):
                    raise ShapeError(f"setitem: could not broadcast {val.shape} into {sub}\n  (at {user_line()})")
                val = apply(Op.RESHAPE, [val], {"shape": tuple(val.shape[len(extra):])})[0]
            if tuple(val.shape) != tuple(sub):
                try:
                    numpy.broadcast_shapes(val.shape, sub)
                except ValueError:
                    raise ShapeError(f"setitem: could not broadcast {val.shape} into {sub}\n  (at {user_line()})") from None
                val = apply(Op.BROADCAST_TO, [val], {"shape": tuple(sub)})[0]
        else:
            val = apply(Op.BROADCAST_TO, [make_lit(value, x._dtype)], {"shape": tuple(sub)})[0]
        full = len(index) == x.ndim and all(
            isinstance(i, tuple) and i == (0, n, 1) for i, n in zip(index, x.shape)
        )
        if full:
            new = val
        else:
            true = apply(Op.BROADCAST_TO, [make_lit(True, numpy.dtype(numpy.bool_))], {"shape": tuple(sub)})[0]
            mask = apply(Op.SLICE_VJP, [true], {"index": index, "shape": tuple(x.shape)})[0]
            placed = apply(Op.SLICE_VJP, [val], {"index": index, "shape": tuple(x.shape)})[0]
            new = apply(Op.SELECT, [mask, placed, x], {})[0]
        self.write(x, new)

    def on_grad_write(self, owner: Array, target: Array) -> None:
        """backward wrote `target` into `owner.grad` (grad_req write/add already applied)."""
        buf = owner._grad
        self.grad_owner[id(buf)] = owner
        self.born.discard(id(buf))
        v = self.var_of(target)
        self.bind(buf)
        self.env[id(buf)] = v
        self.writes[id(buf)] = buf

    # ---- the result -------------------------------------------------------------------
    def finish(self, result: Any) -> "Captured":
        """The captured step: its trace, input bindings, written buffers and return layout."""
        outputs: list[Var] = []
        dests: list[tuple] = []
        input_of = {v: b for v, b in self.inputs}
        for i, arr in self.writes.items():
            b = self.bound[i]
            if not external(b):
                continue
            v = self.env[i]
            if v in input_of:
                if input_of[v] is b:
                    continue  # wrote its own value back
                c = Var(v.shape, v.dtype)
                self._emit(Op.CAST, (v,), (c,), {"dtype": v.dtype})
                v = c
            outputs.append(v)
            dests.append(b)
        n_dests = len(outputs)
        spec = self._spec(result, outputs)
        trace, inputs = _prune(self.inputs, self.eqns, outputs)
        out = Captured(trace, inputs, dests, n_dests, spec, list(self.guards), list(self.attach))
        out.randoms = list(self.randoms)
        out.on_device = any(
            _device.is_device_array(getattr(x, "_data", None)) for x in self.keep if isinstance(x, Array)
        )
        return out

    def _spec(self, obj: Any, outputs: list) -> tuple:
        t = type(obj)
        if t is tuple or t is list:
            return (t.__name__, tuple(self._spec(o, outputs) for o in obj))
        if t is dict:
            return ("dict", tuple(obj.keys()), tuple(self._spec(o, outputs) for o in obj.values()))
        if isinstance(obj, Array):
            if obj._in_graph and not obj._freed and obj._prod is not None:
                self.fail(
                    f"the step returns an array that is still in a recorded graph (shape {obj.shape}); "
                    "call backward inside the step, or return it detached"
                )
            b = self.bound.get(id(obj))
            if b is not None and external(b):
                return ("ref", b)
            if id(obj) not in self.env:
                if id(obj) in self.born or b is not None and b[0] == "const":
                    return ("copy", numpy.array(obj._value(), copy=True))
                return ("ref", self.bind(obj))
            outputs.append(self.env[id(obj)])
            return ("out", len(outputs) - 1)
        if t is TaggedFloat:
            return ("sarg", obj._tg.path)
        return ("py", obj)


class Captured:
    """What a capture produced: the trace and everything a replay needs around it."""

    def __init__(self, trace: Trace, inputs: list, dests: list, n_dests: int, spec: tuple,
                 guards: list, attach: list) -> None:
        self.trace = trace
        self.inputs = inputs  # bindings, one per trace input
        self.dests = dests  # bindings of the written buffers (the first n_dests outputs)
        self.n_dests = n_dests
        self.spec = spec
        self.guards = guards
        self.attach = attach


def _prune(inputs: list, eqns: list, outputs: list) -> tuple[Trace, list]:
    """Drop eqns that feed neither an output nor a guard, and inputs nobody reads."""
    live = set(outputs)
    kept = []
    for e in reversed(eqns):
        if e.op is Op.GUARD or any(o in live for o in e.outs):
            kept.append(e)
            for a in e.ins:
                if type(a) is Var:
                    live.add(a)
    kept.reverse()
    used = [(v, b) for v, b in inputs if v in live]
    trace = Trace(tuple(v for v, _ in used), tuple(kept), tuple(outputs))
    return trace, [b for _, b in used]



def _has_array(v: Any) -> bool:
    if isinstance(v, Array):
        return True
    if isinstance(v, (list, tuple)):
        return any(_has_array(x) for x in v)
    return False


def _redraw(recipe: RandomRecipe, params: dict) -> Callable[[], Any]:
    """Draw again: the recipe's sampling function with `params`, as its data."""
    def draw() -> Any:
        return recipe.draw(params)

    draw.__qualname__ = f"redraw_{recipe.op}"
    return draw
