"""Variants of a compiled step and the tree that picks one by guard outcomes.

A `Variant` is one captured path through the step: its trace (guards included), the
program that runs it, and a generated replay function that binds the inputs, names the
destination buffers and rebuilds the Python return value. Everything is prepared at
compile time, so a replay is: bind, one program call, wrap the outputs.

An `Entry` holds the variants of one signature as a tree. The first variant is the root;
when its program stops at guard k having seen outcome s, the child keyed (k, s) is tried
next; a miss is a side exit (the caller captures a new variant and hangs it there).
Programs raise GuardFailure before writing any destination, so a side exit leaves
parameters, .grad buffers and outputs untouched.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable

import numpy

from ..errors import CompileError, GuardFailure
from ..ir.ops import TABLE, Kind, Op
from ..log import channel
from ..tracer import array as _array
from ..runtime.execute import step_program
from .capture import Captured
from .signature import arg_path_expr

log = channel("compile")
_ALIASING = (Kind.LAYOUT,)
_numbers = itertools.count(1)


def _copy(r: numpy.ndarray) -> numpy.ndarray:
    return numpy.array(r, copy=True)


class _Source:
    """Collects constants for generated code and names them."""

    def __init__(self) -> None:
        self.env: dict[str, Any] = {}

    def const(self, obj: Any, prefix: str = "K") -> str:
        name = f"{prefix}{len(self.env)}"
        self.env[name] = obj
        return name

    def obj(self, b: tuple) -> str:
        """Source for the object a binding names (Array, numpy array, or float argument)."""
        kind = b[0]
        if kind in ("arg", "argnp"):
            return arg_path_expr(b[1])
        if kind == "grad":
            return f"{self.obj(b[1])}._grad"
        if kind in ("obj", "const", "npobj"):
            return self.const(b[1])
        raise AssertionError(f"binding {kind} names no object")

    def value(self, b: tuple) -> str:
        """Source for the numpy value a binding feeds into the program."""
        kind = b[0]
        if kind in ("arg", "grad", "obj"):
            return f"{self.obj(b)}._data"
        if kind in ("argnp", "const", "npobj"):
            return self.obj(b)
        if kind == "scalar":
            return f"_array({arg_path_expr(b[1])}, {self.const(b[2], 'D')})"
        if kind == "random":
            return f"r{b[1]}"
        raise AssertionError(f"binding {kind} has no value")


class Variant:
    """One compiled path of a step (see the module docstring)."""

    def __init__(self, captured: Captured, backend: str = "auto") -> None:
        self.number = next(_numbers)
        self.captured = captured
        self.trace = captured.trace
        self.guards = captured.guards
        self.children: dict[tuple[int, Any], "Variant"] = {}
        self.compile_seconds = 0.0
        self.replays = 0
        self.program, self.backend = self._program(backend)
        self.run, self.source = self._generate()

    def _program(self, backend: str) -> tuple[Callable, str]:
        """The program that runs this variant, as the runtime chooses it."""
        return step_program(self.trace, f"variant {self.number}", backend,
                            on_device=getattr(self.captured, "on_device", False))

    @property
    def generated_source(self) -> str:
        """The codegen module source of this variant (empty when it runs interpreted)."""
        prog = getattr(self.program, "program", None)
        return getattr(prog, "source", "") if prog is not None else ""

    def _generate(self) -> tuple[Callable[[tuple, dict], Any], str]:
        c = self.captured
        s = _Source()
        prog = getattr(self.program, "program", None)
        s.env.update(_array=numpy.array, _copy=_copy, WRAP=_array.ARRAY_CLS._wrap,
                     RUN=self.program, PROG=prog, CompileError=CompileError)
        lines = ["def replay(args, kwargs):"]
        for b, req in c.attach:
            lines.append(f"    {s.obj(b)}.attach_grad({req!r})")
        for i, (recipe, what) in enumerate(getattr(c, "randoms", ())):
            lines.append(f"    r{i} = {s.const(recipe, 'RND')}()  # {what}")
        lines.append(f"    ins = [{', '.join(s.value(b) for b in c.inputs)}]")
        dests = []
        for i, b in enumerate(c.dests):
            if b[0] in ("argnp", "npobj"):
                dests.append(s.obj(b))
                continue
            lines.append(f"    w{i} = {s.obj(b)}")
            lines.append(f"    if w{i}._users is not None or w{i}._root is not None:")
            lines.append(f"        w{i}._prepare_write()")
            dests.append(f"w{i}._data")
        n_out = len(c.trace.outputs)
        dlist = dests + ["None"] * (n_out - len(dests))
        if prog is not None:  # call the compiled program directly; its argument checks fall back
            lines.append("    try:")
            lines.append(f"        res = PROG(ins, [{', '.join(dlist)}])")
            lines.append("    except CompileError:")
            lines.append(f"        res = RUN(ins, [{', '.join(dlist)}])")
        else:
            lines.append(f"    res = RUN(ins, [{', '.join(dlist)}])")
        producer = {o: e.op for e in c.trace.eqns for o in e.outs}
        inputs = set(c.trace.inputs)

        def ret(spec: tuple) -> str:
            kind = spec[0]
            if kind == "tuple":
                return "(" + "".join(ret(x) + ", " for x in spec[1]) + ")"
            if kind == "list":
                return "[" + ", ".join(ret(x) for x in spec[1]) + "]"
            if kind == "dict":
                return "{" + ", ".join(f"{s.const(k)}: {ret(x)}" for k, x in zip(spec[1], spec[2])) + "}"
            if kind == "ref":
                if spec[1][0] == "random":  # a sample returned as drawn: this replay's draw
                    return f"WRAP(r{spec[1][1]})"
                if spec[1][0] in ("argnp", "npobj"):  # an array over a numpy buffer, as in Python
                    return f"WRAP({s.obj(spec[1])})"
                return s.obj(spec[1])
            if kind == "copy":
                return f"WRAP(_copy({s.const(spec[1])}))"
            if kind == "out":
                j = spec[1]  # index into the trace outputs (written buffers come first)
                v = c.trace.outputs[j]
                op = producer.get(v)
                alias = v in inputs or op is None or op is Op.STOP_GRADIENT or TABLE[op].kind in _ALIASING
                # non-layout results are fresh buffers in the interpreter and in codegen Programs
                return f"WRAP(_copy(res[{j}]))" if alias else f"WRAP(res[{j}])"
            if kind == "sarg":
                return arg_path_expr(spec[1])
            if kind == "py":
                v = spec[1]
                return repr(v) if v is None or type(v) in (bool, int, str) else s.const(v)
            raise AssertionError(kind)

        lines.append(f"    return {ret(c.spec)}")
        src = "\n".join(lines)
        exec(compile(src, f"<tracegrad.jit replay {self.number}>", "exec"), s.env)
        return s.env["replay"], src

    def describe_guard(self, k: int) -> tuple[str, Any]:
        """(file:line, expected outcome) of guard k."""
        return self.guards[k] if 0 <= k < len(self.guards) else ("<unknown>", None)


class SideExit(Exception):
    """No variant covers this call's path: (variant, guard index, seen outcome)."""

    def __init__(self, variant: Variant, index: int, seen: Any, count: int = 0) -> None:
        super().__init__(f"guard {index} of variant {variant.number} saw {seen!r}")
        self.variant, self.index, self.seen = variant, index, seen
        self.count = count  # how many variants the entry held when this replay began


class Entry:
    """The variants of one signature, as a tree keyed by guard outcomes.

    Dispatch starts at the variant that replayed most often (`first`), not at the root:
    with fresh data every call, the most common path is the best first guess. A variant
    that stops at guard k having seen s hands over to any variant whose first k+1 outcomes
    are its own first k plus s (`by_prefix`): all variants agree on the eqns before guard k,
    so that variant's path is the one this call takes, as far as the guards know.
    """

    def __init__(self, key: tuple, check: Callable, deps: Any, root: Variant, fast: Callable,
                 counters: Any) -> None:
        self.counters = counters
        self.key = key
        self.check = check
        self.fast = fast
        self.deps = deps
        self.root = root
        self.first = root
        self.count = 1
        self.by_prefix: dict[tuple, Variant] = {}
        self._index(root)

    def _index(self, v: Variant) -> None:
        outcomes = tuple(e for _, e in v.guards)
        v.outcomes = outcomes
        for k in range(1, len(outcomes) + 1):
            self.by_prefix.setdefault(outcomes[:k], v)

    def _promote(self, v: Variant) -> None:
        """Make `v` the first choice of every prefix it shares with a less used variant."""
        o = v.outcomes
        for k in range(1, len(o) + 1):
            cur = self.by_prefix.get(o[:k])
            if cur is not v and (cur is None or cur.replays < v.replays):
                self.by_prefix[o[:k]] = v

    def replay(self, args: tuple, kwargs: dict) -> Any:
        """Run the variant whose guards pass; raises SideExit when none does."""
        node = self.first
        count = self.count
        while True:
            try:
                out = node.run(args, kwargs)
            except GuardFailure as exc:
                k = exc.index
                nxt = self.by_prefix.get(node.outcomes[:k] + (exc.seen,))
                if nxt is None or nxt is node:
                    raise SideExit(node, k, exc.seen, count) from None
                self.counters.switches += 1
                node = nxt
                continue
            node.replays += 1
            if node.replays > self.first.replays:
                self.first = node
            if node.replays & 63 == 0:  # now and then: the busiest variant answers each prefix
                self._promote(node)
            return out

    def add(self, parent: Variant, index: int, seen: Any, variant: Variant) -> None:
        parent.children[(index, seen)] = variant
        self.count += 1
        self._index(variant)

    def variants(self) -> list[Variant]:
        out, stack = [], [self.root]
        while stack:
            v = stack.pop()
            out.append(v)
            stack.extend(reversed(list(v.children.values())))
        return out

