"""Running traces: the reference interpreter (the oracle and the fallback) and the one place
that chooses which program runs a trace (`execute` for the record scope, `step_program` for
a jit step: interpreted, compiled for the CPU by codegen, or on CUDA)."""

from .interpret import eval_trace

__all__ = ["eval_trace"]
