"""The op table: every op's identity (an `Op` enum member) and its one row of rules.

A row (`OpDef`) holds the shape/dtype rule, the numpy reference, the gradient rule (which
emits eqns through a `Builder`, so backward is itself a trace) and the codegen render rule.
The rows live in the `rules_*` modules, one family each; code outside the table never
branches on a single op.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy


class Op(enum.Enum):
    # elementwise, unary
    NEG = "neg"
    ABS = "abs"
    SIGN = "sign"
    EXP = "exp"
    LOG = "log"
    LOG1P = "log1p"
    EXPM1 = "expm1"
    SQRT = "sqrt"
    SIN = "sin"
    COS = "cos"
    TAN = "tan"
    TANH = "tanh"
    SINH = "sinh"
    COSH = "cosh"
    ARCSIN = "arcsin"
    ARCCOS = "arccos"
    ARCTAN = "arctan"
    SIGMOID = "sigmoid"
    RELU = "relu"
    FLOOR = "floor"
    CEIL = "ceil"
    LOGICAL_NOT = "logical_not"
    INTEGER_POW = "integer_pow"
    CAST = "cast"
    STOP_GRADIENT = "stop_gradient"
    CLIP = "clip"
    # elementwise, binary
    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    DIV = "div"
    POW = "pow"
    MAXIMUM = "maximum"
    MINIMUM = "minimum"
    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    LOGICAL_AND = "logical_and"
    LOGICAL_OR = "logical_or"
    LOGICAL_XOR = "logical_xor"
    # elementwise, ternary
    SELECT = "select"
    # reductions
    REDUCE_SUM = "sum"
    REDUCE_MAX = "max"
    REDUCE_MIN = "min"
    REDUCE_PROD = "prod"
    PROD_OTHERS = "prod_others"
    ARGMAX = "argmax"
    ARGMIN = "argmin"
    # products
    MATMUL = "matmul"
    # layout
    RESHAPE = "reshape"
    TRANSPOSE = "transpose"
    BROADCAST_TO = "broadcast_to"
    SLICE = "slice"
    SLICE_VJP = "slice_vjp"
    CONCATENATE = "concatenate"
    # indexing with integer arrays
    GATHER = "gather"
    SCATTER_ADD = "scatter_add"
    # host code
    CUSTOM = "custom"
    CUSTOM_VJP = "custom_vjp"
    # control
    GUARD = "guard"
    # numpy/linalg ops (issue 9)
    EINSUM = "einsum"
    CUMSUM = "cumsum"
    TRI = "tri"
    INV = "inv"
    DET = "det"
    ADJUGATE = "adjugate"
    SLOGDET = "slogdet"
    SOLVE = "solve"
    CHOLESKY = "cholesky"
    EIGH = "eigh"
    SVD = "svd"
    ARGSORT = "argsort"
    TAKE_ALONG = "take_along"
    PUT_ALONG = "put_along"
    PAD = "pad"
    PAD_VJP = "pad_vjp"
    # nn ops (issue 9)
    CONV = "convolution"
    CONV_BWD_DATA = "convolution_bwd_data"
    CONV_BWD_WEIGHT = "convolution_bwd_weight"
    POOL = "pooling"
    POOL_BWD = "pooling_bwd"
    POOL_MAX_BWD = "max_pooling_bwd"
    POOL_MAX_SELECT = "max_pooling_select"
    ERF = "erf"
    # collectives across ranks (issue 12): host code that calls MPI
    ALLREDUCE = "allreduce"

    def __repr__(self) -> str:
        return f"Op.{self.name}"

    # Members are singletons: identity hashing is valid and much cheaper than Enum's
    # Python-level hash of the name (ops are dictionary keys on every traced op).
    __hash__ = object.__hash__


class Kind(enum.Enum):
    """How the code generator treats an op."""

    ELEMENTWISE = "elementwise"
    REDUCTION = "reduction"
    MATMUL = "matmul"
    LAYOUT = "layout"
    INDEX = "index"
    HOST = "host"
    GUARD = "guard"
    # nn ops (issue 9): sliding-window ops (convolution, pooling) computed on the host
    # with numpy/BLAS between fused kernels
    WINDOW = "window"


@dataclass(frozen=True)
class OpDef:
    """One op's row: everything tracegrad knows about it."""

    op: Op
    kind: Kind
    infer: Callable[..., list[tuple[tuple[int, ...], Any]]]
    impl: Callable[..., Any]
    vjp: Optional[Callable[..., tuple]] = None
    render: Optional[str] = None
    differentiable: bool = True
    doc: str = ""

    @property
    def name(self) -> str:
        return self.op.value


TABLE: dict[Op, OpDef] = {}


# ---- floating-point warnings policy (issue 8, defects) ----
def fp_quiet(f: Callable[..., Any]) -> Callable[..., Any]:
    """`f` without numpy's floating-point RuntimeWarnings (the policy, README "Special values"):
    results are IEEE (inf, NaN) and no op warns, interpreted or compiled, as in MXNet."""

    def run(*args: Any, **params: Any) -> Any:
        with numpy.errstate(all="ignore"):
            return f(*args, **params)

    return run
# ---- end floating-point warnings policy ----


def register(row: OpDef) -> OpDef:
    """Add a row to the table (each op exactly once)."""
    if row.op in TABLE:
        raise RuntimeError(f"op {row.op} registered twice")
    TABLE[row.op] = row
    return row


def opdef(op: Op) -> OpDef:
    """The row of `op`."""
    return TABLE[op]
