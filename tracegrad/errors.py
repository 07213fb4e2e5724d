"""Exception classes users can catch. Every message says what happened and what to do next."""

from __future__ import annotations


class TracegradError(Exception):
    """Base class of every error tracegrad raises on purpose."""


class ShapeError(TracegradError, ValueError):
    """An op got operands whose shapes do not fit together."""


class DTypeError(TracegradError, TypeError):
    """An op got an operand of a dtype it cannot handle."""


class GraphError(TracegradError, RuntimeError):
    """Backward was asked of something that is not (or no longer) in a recorded graph."""


class NoGradientError(GraphError):
    """No input in the graph requires a gradient."""


class InPlaceError(TracegradError, RuntimeError):
    """An in-place write would corrupt a value that a recorded graph still needs."""


class UnsupportedError(TracegradError, NotImplementedError):
    """A feature or argument tracegrad does not support."""


class CompileError(TracegradError, RuntimeError):
    """The code generator could not compile a trace (the caller falls back and logs why)."""


# ---- argument and index errors (issue 8, defects) ----
class ArgumentError(TracegradError, ValueError):
    """An argument has a value the op cannot take (a negative size, an unknown grad_req)."""


class ArgumentTypeError(TracegradError, TypeError):
    """An argument has a type the op cannot take (a float where a size must be an integer)."""


class GradReqError(ArgumentError, KeyError):
    """An unknown grad_req (a KeyError, as MXNet's)."""

    def __str__(self) -> str:  # KeyError quotes its message; this is a sentence
        return str(self.args[0]) if self.args else ""


class IndexOutOfRangeError(TracegradError, IndexError):
    """An index is out of bounds for the axis it indexes."""
# ---- end argument and index errors ----


class GuardFailure(TracegradError):
    """A guard inside a compiled program saw another outcome than the one it was traced with."""

    def __init__(self, index: int, seen: object) -> None:
        super().__init__(f"guard {index} failed: saw {seen!r}")
        self.index = index
        self.seen = seen


NOT_IN_GRAPH = (
    "Cannot differentiate node because it is not in a computational graph. You need to set "
    "is_recording to true or use autograd.record() to save computational graphs for backward. "
    "If you want to differentiate the same graph twice, you need to pass retain_graph=True to "
    "backward."
)
NO_INPUTS = "There are no inputs in computation graph that require gradients."
IN_PLACE = (
    "Assigning to NDArrays that are already in a computational graph will cause undefined "
    "behavior when evaluating gradients. Please call backward first to clear the graph or do "
    "this out side of a record section. Also note that you cannot use inplace operations like "
    "+=, *=, relu(x, out=x), y[idx]=x, etc inside a record section."
)
