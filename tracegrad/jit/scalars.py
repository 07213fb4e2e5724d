"""Python float arguments seen by a capture: runtime inputs unless Python itself uses them.

While a step is captured, each `float` argument is passed to the body as a tagged
subclass. Where the tagged value goes straight into an array op (`w - lr * g`), the lazy
tracer's `make_lit` hands it to the capture, which turns the literal into a 0-d runtime
input of the trace: a new learning rate does not recompile. Any other use of the value by
Python (arithmetic on the scalar, comparisons, `range(n)`, formatting, numpy conversion)
marks the argument as *used by Python*: its value then becomes part of the signature, so
a new value retraces instead of replaying a stale constant.

`int` arguments are not tagged: CPython reads int subclasses without calling their methods
(`range(n)`, indexing, shapes), so a use could go unseen. Ints are keyed by value.
Known gap: C functions that read a float's value directly (`math.exp(lr)`) are not seen;
a value derived that way inside the step is baked into the trace.
"""

from __future__ import annotations

from typing import Any

from ..where import user_line


class _Tag:
    """What a tagged scalar knows: its argument path and the capture that made it."""

    __slots__ = ("path", "capture")

    def __init__(self, path: tuple, capture: Any) -> None:
        self.path, self.capture = path, capture


def _mark(x: Any, how: str) -> None:
    tag = x._tg
    cap = tag.capture
    if cap is not None and cap.active:
        cap.on_scalar_used(tag.path, how, user_line())


def _wrap_method(base: type, name: str) -> Any:
    impl = getattr(base, name)

    def method(self: Any, *args: Any) -> Any:
        out = impl(_plain(self), *[_plain(a) for a in args])
        if out is not NotImplemented:  # `lr * array` goes on to the array: not a Python use
            _mark(self, name)
        return out

    method.__name__ = name
    return method


def _plain(a: Any) -> Any:
    return float.__float__(a) if type(a) is TaggedFloat else a


_DUNDERS = (
    "__add__ __radd__ __sub__ __rsub__ __mul__ __rmul__ __truediv__ __rtruediv__ "
    "__floordiv__ __rfloordiv__ __mod__ __rmod__ __pow__ __rpow__ __neg__ __pos__ __abs__ "
    "__lt__ __le__ __gt__ __ge__ __eq__ __ne__ __bool__ __int__ __float__ __round__ "
    "__trunc__ __floor__ __ceil__ __format__ __str__ __repr__ __divmod__ __rdivmod__"
).split()


class TaggedFloat(float):
    """A float argument under capture (behaves as a float; reports how Python uses it)."""

    def __new__(cls, value: float, tag: _Tag) -> "TaggedFloat":
        obj = float.__new__(cls, value)
        obj._tg = tag
        return obj

    def __hash__(self) -> int:
        return float.__hash__(self)

    def __reduce__(self) -> Any:
        return (float, (float.__float__(self),))


for _name in _DUNDERS:
    if hasattr(float, _name):
        setattr(TaggedFloat, _name, _wrap_method(float, _name))


def tag_scalar(value: Any, path: tuple, capture: Any) -> Any:
    """`value` tagged for a capture when it is a plain float; else unchanged."""
    if type(value) is float:
        return TaggedFloat(value, _Tag(path, capture))
    return value


def plain_value(x: Any) -> Any:
    """The untagged Python value of a (possibly tagged) scalar, without marking a use."""
    return _plain(x)
