"""The IR's data: typed variables, literals, equations, and linear traces (frozen, hashable)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Union

import numpy

from . import dtypes
from .ops import Op

_ids = itertools.count()


@dataclass(frozen=True, slots=True, eq=False)
class Var:
    """A typed SSA variable. Identity is the object itself; `id` orders and names it."""

    shape: tuple[int, ...]
    dtype: numpy.dtype
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(numpy.prod(self.shape, dtype=numpy.int64))

    def aval(self) -> str:
        return f"{dtypes.short(self.dtype)}[{','.join(map(str, self.shape))}]"


@dataclass(frozen=True, slots=True)
class Lit:
    """A scalar constant operand; it broadcasts against any shape."""

    value: Union[int, float, bool]
    dtype: numpy.dtype
    shape: tuple[int, ...] = ()

    def __str__(self) -> str:
        if self.dtype == dtypes.bool_:
            return str(bool(self.value))
        if dtypes.is_float(self.dtype):
            return repr(float(self.value))
        return str(int(self.value))


Atom = Union[Var, Lit]


@dataclass(frozen=True, slots=True)
class Eqn:
    """One operation: `outs = op[params](*ins)`. Params are a sorted tuple of (name, value)."""

    op: Op
    ins: tuple[Atom, ...]
    outs: tuple[Var, ...]
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def p(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def out(self) -> Var:
        return self.outs[0]


def freeze_params(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Params as the hashable, order-independent tuple eqns hold."""
    if not params:
        return ()
    return tuple(sorted(params.items()))


@dataclass(frozen=True, slots=True)
class Trace:
    """A linear program: inputs, eqns in program order (guards included), outputs."""

    inputs: tuple[Var, ...]
    eqns: tuple[Eqn, ...]
    outputs: tuple[Var, ...]

    def __str__(self) -> str:
        from .printer import format_trace

        return format_trace(self)

    def key(self) -> tuple:
        """A structural key: equal for traces that differ only in variable identities."""
        names: dict[Var, int] = {}

        def ref(a: Atom) -> Any:
            if isinstance(a, Lit):
                return ("L", a.value, a.dtype.str)
            return names[a]

        for v in self.inputs:
            names[v] = len(names)
        parts: list[Any] = [tuple((v.shape, v.dtype.str) for v in self.inputs)]
        for e in self.eqns:
            ins = tuple(ref(a) for a in e.ins)
            for o in e.outs:
                names[o] = len(names)
            parts.append((e.op, ins, e.params, tuple((o.shape, o.dtype.str) for o in e.outs)))
        parts.append(tuple(names[o] for o in self.outputs))
        return tuple(parts)
