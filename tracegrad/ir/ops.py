"""The op table: every op's identity (an `Op` enum member) and its one row of rules.

A row (`OpDef`) holds the shape/dtype rule, the numpy reference, the gradient rule (which
emits eqns through a `Builder`, so backward is itself a trace), the render rule (how each
code generator writes the op, `Render`) and the properties the fusion planners read (cost,
index map, reduction combine, ...). The rows live in the `rules_*` modules, one family each;
code outside the table never branches on a single op (tests/codegen/test_table_discipline.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Protocol, Union

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


class RenderContext(Protocol):
    """What a code generator tells a render function besides the operands and params."""

    target: str  # "cpu" (Numba njit loops) or "cuda" (numba-cuda kernels)
    dtype: numpy.dtype  # the result's dtype
    in_dtype: numpy.dtype  # the first operand's dtype (the result's when there is none)
    tname: str  # the source name of the result dtype's scalar constructor

    def const(self, value: Any, dtype: Any) -> str:
        """A typed literal in the generated source."""

    def local(self) -> str:
        """A fresh prefix for names of statements the rule emits."""

    def emit(self, line: str) -> None:
        """A statement to run before the value's expression (loop-body targets)."""


RenderFn = Callable[..., str]  # (ctx, *operand sources, **params) -> expression source


@dataclass(frozen=True)
class Render:
    """How the code generators write an elementwise op as a scalar expression.

    `rules` maps a target ("cpu", "cuda"; "*" for every target) to a template string (`{0}`,
    `{1}` the operands, `{name}` a param: the shorthand for an expression both targets spell
    alike) or a function `(ctx: RenderContext, *operands, **params) -> str`. The generator
    casts the result to the eqn's dtype, except where `keeps_dtype` says the expression of
    float operands of that dtype already has it (plain arithmetic).
    """

    rules: Mapping[str, Union[str, RenderFn]]
    keeps_dtype: bool = False

    def rule(self, target: str) -> Union[str, RenderFn, None]:
        return self.rules.get(target, self.rules.get("*"))

    def __contains__(self, text: str) -> bool:
        """Whether a template string of the rule contains `text` (functions are opaque)."""
        return any(isinstance(r, str) and text in r for r in self.rules.values())

    def expr(self, ctx: RenderContext, args: list[str], params: Mapping[str, Any]) -> str:
        """The expression source for operands `args` (KeyError: no rule for the target)."""
        r = self.rule(ctx.target)
        if r is None:
            raise KeyError(ctx.target)
        if isinstance(r, str):
            return r.format(*args, **params)
        return r(ctx, *args, **params)


EXPENSIVE = 8  # `OpDef.cost` of a transcendental (a libm call or a polynomial)

# An index map: for an op whose result reads its operand at affine positions (layout views),
# `index_map(in_shape, out_shape, **params)` gives, per operand dim, (result dim or None,
# step, start): the operand coordinate is start + step * result[dim] (start alone for None).
# None instead of the list: the op keeps the C-order linear index (reshape).
IndexMap = Callable[..., Optional[list[tuple[Optional[int], int, int]]]]

# An assembly: an op whose result is built by writing operands into basic-index regions of
# a fresh buffer. `assemble(in_shapes, **params) -> (zero_fill, [(operand, index), ...])`,
# an index as SLICE's param (ints, (start, stop, step) triples, None).
Assemble = Callable[..., tuple[bool, list[tuple[int, tuple]]]]


@dataclass(frozen=True)
class OpDef:
    """One op's row: everything tracegrad knows about it.

    Codegen properties (read by codegen/fusion.py and codegen/cuda/plan.py, never an op's
    identity): `render` (elementwise: `Render`, or a template string for both targets),
    `cost` (relative cost of recomputing the value inline), `index_map` (a layout view, see
    `IndexMap`), `assemble` (see `Assemble`), `combine` (a loop reduction over its param
    `axes`: add/max/min/mul), `index_form` ("gather": operand 0 read at the positions its
    param `key` and the index-array operands give; "scatter_add": operand 0 accumulated
    there into zeros of param `shape`), `effects` (a host callback: may have effects or draw
    random numbers, never folded or pooled). A row with none of these runs as a host step
    (its numpy rule between kernels); `Kind.MATMUL` rows are contractions (BLAS on the CPU,
    a tiled kernel on CUDA); `Kind.GUARD` rows are checks.
    """

    op: Op
    kind: Kind
    infer: Callable[..., list[tuple[tuple[int, ...], Any]]]
    impl: Callable[..., Any]
    vjp: Optional[Callable[..., tuple]] = None
    render: Union[Render, str, None] = None
    differentiable: bool = True
    doc: str = ""
    cost: int = 1
    index_map: Optional[IndexMap] = None
    assemble: Optional[Assemble] = None
    combine: Optional[str] = None
    index_form: Optional[str] = None
    effects: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.render, str):
            object.__setattr__(self, "render", Render({"*": self.render}))

    @property
    def name(self) -> str:
        return self.op.value


TABLE: dict[Op, OpDef] = {}


# ---- floating-point warnings policy (issue 8, defects) ----
try:  # numpy's error state is a context variable: setting a prebuilt "ignore" state costs
    # a fifth of entering `numpy.errstate` (which builds it per call); same effect
    from numpy._core._ufunc_config import _extobj_contextvar as _FP_VAR
    from numpy._core._multiarray_umath import _make_extobj

    _FP_IGNORE = _make_extobj(all="ignore")
except ImportError:  # another numpy layout: the public context manager
    _FP_VAR = None


def fp_quiet(f: Callable[..., Any]) -> Callable[..., Any]:
    """`f` without numpy's floating-point RuntimeWarnings (the policy, README "Special values"):
    results are IEEE (inf, NaN) and no op warns, interpreted or compiled, as in MXNet."""
    if _FP_VAR is None:

        def run(*args: Any, **params: Any) -> Any:
            with numpy.errstate(all="ignore"):
                return f(*args, **params)

        return run
    var, quiet = _FP_VAR, _FP_IGNORE

    def run_quiet(*args: Any, **params: Any) -> Any:
        token = var.set(quiet)
        try:
            return f(*args, **params)
        finally:
            var.reset(token)

    return run_quiet
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
