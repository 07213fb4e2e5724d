"""The printed form of a trace. Grammar (whitespace is free):

    trace    := "{ lambda" binders "." "let" eqn* "in" "(" atoms ")" "}"
    binders  := (var ":" aval)*
    eqn      := [var ":" aval ("," var ":" aval)* "="] opname ["[" params "]"] atoms
    aval     := dtype "[" dims "]"        e.g. f32[4,3], bool[], i64[256]
    atom     := var | literal             literals print as 2.0, 3, True
    params   := name "=" value ("," name "=" value)*

Variables are named a, b, ..., z, aa, ab, ... in order of first appearance. A guard is an
eqn with no outputs: `guard[expect=True, where=file.py:12] d` means the program is valid
only where d == True.
"""

from __future__ import annotations

import string
from typing import TYPE_CHECKING, Any

import numpy

if TYPE_CHECKING:  # core imports this module to print traces
    from .core import Eqn, Trace, Var


def _name(i: int) -> str:
    letters = string.ascii_lowercase
    s = ""
    while True:
        s = letters[i % 26] + s
        i //= 26
        if i == 0:
            return s
        i -= 1 if len(s) == 1 else 0


def _fmt_param(v: Any) -> str:
    if isinstance(v, numpy.dtype):
        return v.name
    if hasattr(v, "__name__"):
        return v.__name__
    if isinstance(v, tuple):
        if len(v) == 1:
            return f"({_fmt_param(v[0])},)"
        return "(" + ",".join(_fmt_param(x) for x in v) + ")"
    return str(v)


def format_trace(trace: Trace) -> str:
    """The trace in the grammar above, one eqn per line."""
    names: dict[Var, str] = {}

    def bind(v: Var) -> str:
        names[v] = _name(len(names))
        return f"{names[v]}:{v.aval()}"

    def atom(a: Any) -> str:
        name = names.get(a)
        if name is not None:
            return name
        return str(a) if hasattr(a, "value") else "?"  # a literal prints itself

    head = " ".join(bind(v) for v in trace.inputs)
    lines = ["{ lambda " + head + " . let"]
    for e in trace.eqns:
        lines.append("    " + format_eqn(e, bind, atom))
    outs = " ".join(atom(v) for v in trace.outputs)
    lines.append(f"  in ({outs}) }}")
    return "\n".join(lines)


def format_eqn(e: Eqn, bind, atom) -> str:
    args = " ".join(atom(a) for a in e.ins)
    params = ", ".join(f"{k}={_fmt_param(v)}" for k, v in e.params if k not in ("avals",))
    lhs = ", ".join(bind(o) for o in e.outs)
    op = e.op.value + (f"[{params}]" if params else "")
    return (f"{lhs} = " if lhs else "") + f"{op} {args}".rstrip()
