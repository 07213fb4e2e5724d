"""MXNet's autograd API: record/pause scopes, backward, grad, Function."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from .errors import DTypeError, ShapeError
from .ir.core import Trace
from .tracer.array import Array
from .tracer.backward import backward, grad
from .tracer.function import Function
from .tracer.state import STATE, is_recording, is_training

__all__ = [
    "record", "pause", "train_mode", "predict_mode", "is_recording", "is_training",
    "set_recording", "set_training", "mark_variables", "backward", "grad", "get_symbol",
    "Function",
]  # fmt: skip


@contextmanager
def _scope(recording: Any, training: Any) -> Iterator[None]:
    saved = (STATE.recording, STATE.training)
    if recording is not None:
        if recording and not STATE.recording and STATE.record_depth == 0:
            STATE.guards = []  # a new record session: guards of the last one are done
        STATE.recording = recording
    if training is not None:
        STATE.training = training
    STATE.record_depth += 1 if recording else 0
    try:
        yield
    finally:
        STATE.record_depth -= 1 if recording else 0
        STATE.recording, STATE.training = saved


def record(train_mode: bool = True):
    """Record the ops run inside (on arrays in a graph) so backward can differentiate them."""
    return _scope(True, train_mode)


def pause(train_mode: bool = False):
    """Stop recording inside; results computed here are constants."""
    return _scope(False, train_mode)


def train_mode():
    """Training mode (dropout active), recording left as it is."""
    return _scope(None, True)


def predict_mode():
    """Predict mode (dropout off), recording left as it is."""
    return _scope(None, False)


def set_recording(is_recording: bool) -> bool:
    """Set the recording flag; returns the previous value."""
    prev = STATE.recording
    STATE.recording = bool(is_recording)
    return prev


def set_training(train_mode: bool) -> bool:
    """Set the training flag; returns the previous value."""
    prev = STATE.training
    STATE.training = bool(train_mode)
    return prev


def mark_variables(variables: Any, gradients: Any, grad_reqs: Any = "write") -> None:
    """Make `variables` leaves whose gradients go into the given `gradients` buffers."""
    if isinstance(variables, Array):
        variables, gradients = [variables], [gradients]
    if isinstance(grad_reqs, str):
        grad_reqs = [grad_reqs] * len(variables)
    assert len(variables) == len(gradients) == len(grad_reqs), (
        f"mark_variables: variables, gradients and grad_reqs must have the same length: "
        f"{len(variables)}, {len(gradients)}, {len(grad_reqs)}"
    )
    for v, g, req in zip(variables, gradients, grad_reqs):
        if g.shape != v.shape:
            raise ShapeError(f"mark_variables: gradient buffer of shape {g.shape} for a variable of shape {v.shape}")
        if g._dtype != v._dtype:
            raise DTypeError(f"mark_variables: gradient buffer of dtype {g._dtype} for a variable of dtype {v._dtype}")
        v.attach_grad(req)
        v._grad = g


def get_symbol(x: Any) -> Trace:
    """The recorded trace that computes `x`, with the guards seen on its way (printable)."""
    assert isinstance(x, Array), f"get_symbol: Invalid argument type, expecting ndarray, got {type(x).__name__}"
    from .tracer.show import trace_of

    return trace_of(x)
