"""The closed set of guard kinds: every fact a replay relies on, each with its provenance.

A compiled step may replay only when the facts its capture relied on still hold. Each fact
is one of the kinds below, and each is made by `guard()` alone, which records where it came
from (the argument path, global name or attribute, and the user's file:line). Three places
test them:

* the *key* of a call (a dict lookup on every call, `signature.make_key`): the ARG_* and
  SCALAR_* kinds; a miss is told apart by `signature.describe_key_change`;
* the *checks* of one signature (one generated function run after the key matched), each
  a `Check` made by `guard()` (ARG_IDENTITY is also a check: the object itself is kept);
* the GUARD eqns inside a variant's program (TRACE_GUARD: a data-dependent branch).

A failed fact names its kind and provenance in the retrace event and in `explain()`.
"""

from __future__ import annotations

import enum
from typing import Any

_IMMUTABLE = (int, float, bool, str, bytes, complex, type(None))


class GuardKind(enum.Enum):
    """What a guard tests (the value is the text shown to the user)."""

    # the key of a call
    ARG_COUNT = "number, names or nesting of the arguments"
    ARG_TYPE = "type of an argument"
    ARG_SHAPE = "shape of an array argument"
    ARG_DTYPE = "dtype of an array argument"
    ARG_GRAD_REQ = "grad_req of an array argument"
    ARG_DEVICE = "device of an array argument"
    ARG_IDENTITY = "identity of an object argument"
    ARG_ALIAS = "which array arguments are the same object"
    SCALAR_TYPE = "a float argument stays a float (its value is a runtime input)"
    SCALAR_VALUE = "value of an int/bool/str argument, or of a float Python used"
    # the checks of a signature
    CODE_ID = "code object of the step function"
    GLOBAL_VALUE = "a global name the code reads"
    MODULE_ATTR = "an attribute of a user module the code reads"
    CLOSURE_CELL = "a closure variable the code reads"
    OBJECT_ATTR = "an attribute of an object the step reaches"
    METHOD = "a method of an object's class"
    CONTAINER_LEN = "length of a list, tuple or dict the step reaches"
    CONTAINER_ITEM = "an item of a list, tuple or dict the step reaches"
    CONTAINER_VALUES = "the values of a small list or dict of scalars the step reaches"
    NUMPY_VALUE = "contents of a small numpy array the step copies into an array"
    OUTSIDE_ALIAS = "an argument is (or is not) an array the step reaches another way"
    GRAD_REQ = "grad_req of an array the step reaches outside its arguments"
    TRAINING_MODE = "autograd training mode"
    DEFAULT_DTYPE = "default float dtype (npx.set_np)"
    # inside a variant's program
    TRACE_GUARD = "outcome of a data-dependent branch (a sync point)"


def is_value(v: Any) -> bool:
    """Whether `v` is compared by equality (immutable scalars and tuples of them), not identity."""
    t = type(v)
    return t in _IMMUTABLE or t is tuple and all(is_value(x) for x in v)


class Check:
    """One fact of a signature: `src` (Python over args, kwargs, F, G*, C*, O*) must give
    `value` (by equality for immutable scalars and tuples of them, else by identity). Made by `guard()` only."""

    __slots__ = ("kind", "what", "where", "src", "value", "by_eq")

    def __init__(self, kind: GuardKind, what: str, where: str, src: str, value: Any) -> None:
        self.kind, self.what, self.where, self.src, self.value = kind, what, where, src, value
        self.by_eq = is_value(value)

    def __repr__(self) -> str:
        return f"Check({self.kind.name}: {self.what} at {self.where or '?'})"


def guard(kind: GuardKind, what: str, where: str, src: str, value: Any) -> Check:
    """The one emitter of guards: a fact of kind `kind` about `what` (provenance: the
    argument path, global or attribute name) from the user's `where` (file:line)."""
    if type(kind) is not GuardKind:
        raise TypeError(f"guard kind must be a GuardKind, got {kind!r}")
    if kind is GuardKind.TRACE_GUARD:
        raise ValueError("TRACE_GUARD is a GUARD eqn of the captured trace (emitted by the capture), not a check")
    if not src:
        raise ValueError(f"{kind.name} needs the source of the value it checks")
    return Check(kind, what, where, src, value)
