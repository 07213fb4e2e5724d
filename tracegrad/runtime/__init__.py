"""Reference execution: the numpy interpreter (the oracle and the fallback)."""

from .interpret import eval_trace

__all__ = ["eval_trace"]
