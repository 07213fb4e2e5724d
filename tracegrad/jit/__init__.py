"""`tracegrad.jit`: capture a training step once, replay it compiled, guard its branches."""

from .api import DEFAULT_MAX_VARIANTS, Counters, JitFunction, JitWarning, RetraceError, jit, persistent, uncaptured

__all__ = ["jit", "JitFunction", "JitWarning", "RetraceError", "Counters", "DEFAULT_MAX_VARIANTS", "persistent", "uncaptured"]
