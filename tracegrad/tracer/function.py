"""autograd.Function: a custom op with a user-written backward, run as host code."""

from __future__ import annotations

from typing import Any, Sequence

import numpy

from .. import device as _device
from ..ir.ops import Op
from . import array as _array
from .array import Array
from .lazy import apply
from .state import STATE


class _FnRef:
    """Hashable handle that a CUSTOM eqn's params hold."""

    __slots__ = ("fn", "__weakref__")

    def __init__(self, fn: "Function") -> None:
        self.fn = fn

    def __repr__(self) -> str:
        return type(self.fn).__name__

    @property
    def __name__(self) -> str:
        return type(self.fn).__name__

    def run_backward(self, gs: Sequence[numpy.ndarray], avals: Any) -> tuple:
        wrap = _array.ARRAY_CLS._wrap
        saved = STATE.recording
        STATE.recording = False
        try:
            out = self.fn.backward(*[_unplaced(wrap(numpy.array(g, copy=True))) for g in gs])
        finally:
            STATE.recording = saved
        out = out if isinstance(out, (tuple, list)) else (out,)
        if len(out) != len(avals) or not all(isinstance(o, Array) for o in out):
            raise AssertionError(
                f"{type(self.fn).__name__}.backward must return exactly the same number of "
                f"NDArrays as the number of NDArrays arguments to forward. Expecting {len(avals)} got {len(out)}"
            )
        return tuple(numpy.asarray(o._value(), dtype=dt).reshape(shape) for o, (shape, dt) in zip(out, avals))


def _unplaced(a: Array) -> Array:
    """Device hook (issue 5): a host gradient follows the device of what it meets (the
    saved tensors of a Function on the GPU)."""
    a._dev = _device.UNPLACED
    return a


class Function:
    """Subclass it and write `forward` and `backward`; call an instance once."""

    def __init__(self) -> None:
        self._used = False
        self.saved_tensors: tuple = ()

    def save_for_backward(self, *args: Any) -> None:
        self.saved_tensors = args

    def forward(self, *inputs: Any) -> Any:
        raise NotImplementedError("Function.forward must be defined by the subclass")

    def backward(self, *output_grads: Any) -> Any:
        raise NotImplementedError("Function.backward must be defined by the subclass")

    def __call__(self, *inputs: Any) -> Any:
        assert not self._used, "Each Function instance can only be called once. Please create another instance."
        self._used = True
        saved = STATE.recording
        STATE.recording = False
        try:
            outputs = self.forward(*inputs)
        finally:
            STATE.recording = saved
        single = not isinstance(outputs, (tuple, list))
        outs = (outputs,) if single else tuple(outputs)
        if not (saved and any(isinstance(x, Array) and x._in_graph for x in inputs)):
            return outputs
        avals = tuple((o.shape, o._dtype) for o in outs)
        recorded = apply(Op.CUSTOM, list(inputs), {"fn": _FnRef(self), "avals": avals})
        for r, o in zip(recorded, outs):
            r._data = o._value()
        return recorded[0] if single else tuple(recorded)
