"""tracegrad: MXNet's autograd experience on a tracing JIT that fuses forward and backward.

    from tracegrad import np, npx, autograd
"""

from __future__ import annotations

from . import ir  # noqa: F401  (fills the op table)
from . import np  # noqa: F401
from .ndarray import ndarray  # noqa: F401  (installs the array class)
from . import autograd, npx  # noqa: E402
from .jit import jit  # noqa: E402  (the compiled step; the function shadows the subpackage name)
from .errors import (  # noqa: F401
    ArgumentError,
    ArgumentTypeError,
    GradReqError,
    IndexOutOfRangeError,
    CompileError,
    DTypeError,
    GraphError,
    InPlaceError,
    NoGradientError,
    ShapeError,
    TracegradError,
    UnsupportedError,
)

__version__ = "0.1.0"


def show(x: "ndarray") -> str:
    """The printed trace that computes `x` (with guards), in the grammar of tracegrad.ir.printer."""
    return str(autograd.get_symbol(x))


def explain_compile(x: "ndarray | ir.Trace") -> str:
    """The trace that computes `x` (a lazy array or an `ir.Trace`), its fusion plan and the
    generated Numba source, as text (see tracegrad.codegen; counters: codegen.stats())."""
    from . import codegen

    return codegen.explain(x if isinstance(x, ir.Trace) else autograd.get_symbol(x))


__all__ = ["np", "npx", "autograd", "ndarray", "jit", "show", "explain_compile", "__version__"]


def __getattr__(name: str):
    """Submodules that `import tracegrad` does not load (they import numba): on first use."""
    if name in ("cache", "codegen", "test_utils", "device"):
        import importlib

        return importlib.import_module(f"tracegrad.{name}")
    raise AttributeError(f"module 'tracegrad' has no attribute {name!r}")
