"""The IR: typed SSA traces, the op table, gradient rules as eqns, the printer."""

from . import rules_elementwise, rules_structural  # noqa: F401  (fill the table)
from . import rules_linalg, rules_scan_pad, rules_sort  # noqa: F401  (numpy/linalg ops, issue 9)
from . import rules_nn_act, rules_nn_conv, rules_nn_pool  # noqa: F401  (nn ops, issue 9)
from . import rules_dist  # noqa: F401  (collectives across ranks, issue 12)
from .builder import Builder
from .core import Eqn, Lit, Trace, Var, freeze_params
from .ops import TABLE, Kind, Op, OpDef, opdef
from .trace_builder import TraceEmitter, grad_trace, vjp_trace

__all__ = ["Builder", "Eqn", "Kind", "Lit", "Op", "OpDef", "TABLE", "Trace", "Var", "freeze_params", "opdef", "TraceEmitter", "grad_trace", "vjp_trace"]
