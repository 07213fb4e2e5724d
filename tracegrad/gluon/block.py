"""Gluon `Block` and `HybridBlock` (MXNet 2.x semantics, with 1.x spellings where they fit).

Children and Parameters are registered by attribute assignment; `collect_params()` names
them structurally (`'0.weight'`, `'encoder.1.bias'`). A Block's own Parameters whose shape
is unknown are created on its first call: the Block's `infer_shape(*args)` fills their
shapes from the inputs (deferred initialization).

`HybridBlock.hybridize()` compiles the block's forward with `tracegrad.jit`: calls outside
`autograd.record()` replay one compiled program (guards, retrace, cap and `explain()` as any
jit function); inside a record scope the forward runs through the tracer (forward and
backward fuse at `backward()`); inside a user's `@tracegrad.jit` step it is part of that
step's single program.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

from .. import autograd, initializer
from ..errors import UnsupportedError
from .param_dict import ParameterDict
from .parameter import Parameter

__all__ = ["Block", "HybridBlock", "SymbolBlock", "HookHandle"]


# ---- MXNet 1.x names (dense0_, hybridsequential0_dense1_) ---------------------------------
class _NameScope(threading.local):
    def __init__(self) -> None:
        self.stack: list["Block"] = []
        self.counters: dict[str, int] = {}


_SCOPE = _NameScope()


def _new_prefix(hint: str) -> str:
    counters = _SCOPE.stack[-1]._name_counters if _SCOPE.stack else _SCOPE.counters
    n = counters.get(hint, 0)
    counters[hint] = n + 1
    parent = _SCOPE.stack[-1].prefix if _SCOPE.stack else ""
    return f"{parent}{hint}{n}_"


class HookHandle:
    """Removes a registered hook (`handle.detach()`, or use it as a `with` block)."""

    def __init__(self, hooks: "OrderedDict[int, Callable]", key: int) -> None:
        self._hooks = hooks
        self._key = key

    def detach(self) -> None:
        self._hooks.pop(self._key, None)

    def __enter__(self) -> "HookHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.detach()


_HOOK_IDS = iter(range(1 << 62))


class Block:
    """Base class of layers and models: subclasses define `forward(*args)`."""

    _alias_name: Optional[str] = None  # 1.x prefix hint; the lower-cased class name by default

    def __init__(self, prefix: Optional[str] = None, params: Any = None) -> None:
        d = self.__dict__
        d["_children"] = OrderedDict()
        d["_reg_params"] = OrderedDict()
        d["_forward_hooks"] = OrderedDict()
        d["_forward_pre_hooks"] = OrderedDict()
        d["_name_counters"] = {}
        d["_prefix"] = prefix if prefix is not None else _new_prefix(self._alias())
        d["_deferred_pending"] = True
        if params is not None:  # 1.x: share another block's ParameterDict
            d["_shared_from"] = params

    def _alias(self) -> str:
        return self._alias_name or type(self).__name__.lower()

    # ---- 1.x naming -----------------------------------------------------------------
    @property
    def prefix(self) -> str:
        """The MXNet 1.x prefix (`'dense0_'`)."""
        return self._prefix

    @property
    def name(self) -> str:
        """The MXNet 1.x name (`'dense0'`)."""
        return self._prefix[:-1] if self._prefix.endswith("_") else self._prefix

    @contextmanager
    def name_scope(self) -> Iterator[None]:
        """Blocks created inside get this block's prefix (1.x names; structure is unaffected)."""
        _SCOPE.stack.append(self)
        try:
            yield
        finally:
            _SCOPE.stack.pop()

    @property
    def params(self) -> ParameterDict:
        """This block's own Parameters (not its children's: use collect_params())."""
        return ParameterDict.of_block(self)

    # ---- registration -----------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        if isinstance(value, Block):
            if name in d.get("_reg_params", ()):
                raise TypeError(f"Changing attribute type for {name} from Parameter to Block is not allowed.")
            self.register_child(value, name)
        elif isinstance(value, Parameter):
            if name in d.get("_children", ()):
                raise TypeError(f"Changing attribute type for {name} from Block to Parameter is not allowed.")
            value = self._register_param(name, value)
        else:
            if name in d.get("_children", ()) and value is not None:
                raise TypeError(f"Changing attribute type for {name} from Block to {type(value).__name__} is not "
                                "allowed.")
            if name in d.get("_children", ()):
                del self._children[name]
            if name in d.get("_reg_params", ()):
                del self._reg_params[name]
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._children.pop(name, None)
        self._reg_params.pop(name, None)
        object.__delattr__(self, name)

    def _register_param(self, name: str, param: Parameter) -> Parameter:
        shared = self.__dict__.get("_shared_from")
        if shared is not None:  # 1.x `params=other.params`: reuse the Parameter of that name
            param = _shared_param(shared, name, param)
        self._reg_params[name] = param
        if param._structure is None:
            param._structure = self._prefix + name
        self.__dict__["_deferred_pending"] = True
        return param

    def register_child(self, block: "Block", name: Optional[str] = None) -> "Block":
        """Register a child (named by its attribute, or its position for containers)."""
        if name is None:
            name = str(len(self._children))
        self._children[name] = block
        self.__dict__["_deferred_pending"] = True
        return block

    def register_forward_pre_hook(self, hook: Callable) -> HookHandle:
        """`hook(block, inputs)` runs before each forward."""
        key = next(_HOOK_IDS)
        self._forward_pre_hooks[key] = hook
        return HookHandle(self._forward_pre_hooks, key)

    def register_forward_hook(self, hook: Callable) -> HookHandle:
        """`hook(block, inputs, outputs)` runs after each forward."""
        key = next(_HOOK_IDS)
        self._forward_hooks[key] = hook
        return HookHandle(self._forward_hooks, key)

    def apply(self, fn: Callable[["Block"], Any]) -> "Block":
        """Call `fn(block)` on every child (recursively), then on this block."""
        for child in self._children.values():
            child.apply(fn)
        fn(self)
        return self

    # ---- parameters ---------------------------------------------------------------------
    def collect_params(self, select: Optional[str] = None) -> ParameterDict:
        """Every Parameter of this block and its children, by structural name ('0.weight');
        `select` is a regex the names must match."""
        return ParameterDict(self._collect_params_with_prefix(select=select))

    def _collect_params_with_prefix(self, prefix: str = "", select: Optional[str] = None) -> dict:
        if prefix:
            prefix += "."
        pattern = re.compile(select) if select is not None else None
        ret = {prefix + k: v for k, v in self._reg_params.items() if pattern is None or pattern.match(prefix + k)}
        for name, child in self._children.items():
            ret.update(child._collect_params_with_prefix(prefix + name, select))
        return ret

    def initialize(self, init: Any = None, ctx: Any = None, verbose: bool = False,
                   force_reinit: bool = False, device: Any = None) -> None:
        """Initialize every Parameter (`init` is the default for those without their own;
        Uniform(-0.07, 0.07) when not given); unknown shapes wait for the first forward."""
        init = initializer.Uniform() if init is None else init
        if verbose:
            init = initializer.create(init).set_verbosity(True)
        device = ctx if device is None else device
        for p in self.collect_params().values():
            p.initialize(None, device, default_init=init, force_reinit=force_reinit)
        self._mark_pending()

    def _mark_pending(self) -> None:
        self.apply(lambda b: b.__dict__.__setitem__("_deferred_pending", True))

    def zero_grad(self) -> None:
        """Set every gradient to zero (needed with grad_req='add')."""
        for p in self.collect_params().values():
            p.zero_grad()

    def reset_ctx(self, ctx: Any) -> None:
        for p in self.collect_params().values():
            p.reset_ctx(ctx)

    reset_device = reset_ctx

    def cast(self, dtype: Any) -> None:
        """Cast every Parameter (and the dtype the block computes in) to `dtype`."""
        for child in self._children.values():
            child.cast(dtype)
        for p in self._reg_params.values():
            p.cast(dtype)

    def share_parameters(self, shared: Optional[dict]) -> "Block":
        """Use the Parameters of `shared` (a collect_params() dict) for the same structural names."""
        if shared is None:
            return self
        if not isinstance(shared, dict):
            raise ValueError(f"share_parameters: expected a dict from collect_params(), got {type(shared).__name__}")
        left = set(shared.keys())
        self._share(shared, left, "")
        if left:
            warnings.warn(f"Parameter name {sorted(left)} is not in the current model!", stacklevel=2)
        return self

    def _share(self, shared: dict, left: set, prefix: str) -> None:
        for name in list(self._reg_params):
            key = prefix + name
            if shared.get(key) is not None:
                setattr(self, name, shared[key])
                left.discard(key)
        for name, child in self._children.items():
            child._share(shared, left, prefix + name + ".")

    def save_parameters(self, filename: str, deduplicate: bool = False) -> None:
        """Write every Parameter as MXNet 2.x does: a zip of .npy arrays named structurally."""
        from . import param_io

        param_io.save_parameters(self, filename, deduplicate)

    def load_parameters(self, filename: str, ctx: Any = None, allow_missing: bool = False,
                        ignore_extra: bool = False, cast_dtype: bool = False, dtype_source: str = "current",
                        device: Any = None) -> None:
        """Read parameters MXNet 2.x or tracegrad saved (numpy zip), or an MXNet 1.x binary
        NDArray file (structural or 1.x prefixed names such as 'dense0_weight')."""
        from . import param_io

        param_io.load_parameters(self, filename, ctx if device is None else device, allow_missing, ignore_extra,
                                 cast_dtype, dtype_source)
        self._mark_pending()

    def load_dict(self, param_dict: dict, device: Any = None, allow_missing: bool = False,
                  ignore_extra: bool = False, cast_dtype: bool = False, dtype_source: str = "current") -> None:
        """Load from a {name: array} dict (structural or 1.x names)."""
        from . import param_io

        param_io.load_dict(self, param_dict, device, allow_missing, ignore_extra, cast_dtype, dtype_source)
        self._mark_pending()

    # 1.x names
    save_params = save_parameters
    load_params = load_parameters

    # ---- calling ------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        for hook in list(self._forward_pre_hooks.values()):
            hook(self, args)
        if self._deferred_pending:
            self._finish_deferred(args)
        out = self._call_forward(args, kwargs)
        for hook in list(self._forward_hooks.values()):
            hook(self, args, out)
        return out

    def _call_forward(self, args: tuple, kwargs: dict) -> Any:
        return self.forward(*args, **kwargs)

    def _finish_deferred(self, args: tuple) -> None:
        """Create this block's own deferred Parameters from the input shapes."""
        waiting = [p for p in self._reg_params.values() if p._data is None and p._deferred_init]
        if waiting:
            if any(p._shape is None or any(d <= 0 for d in p._shape) for p in waiting):
                self.infer_shape(*args)
            from ..jit import uncaptured

            with uncaptured():  # on a compiled step's first call: as if done before the step
                for p in waiting:
                    p._finish_deferred_init()
        if all(p._data is not None for p in self._reg_params.values()):
            self.__dict__["_deferred_pending"] = False

    def infer_shape(self, *args: Any) -> None:
        """Fill the unknown dims of this block's Parameters from the inputs (layers define it)."""
        unknown = [n for n, p in self._reg_params.items() if p._shape is None or any(d <= 0 for d in p._shape)]
        raise UnsupportedError(
            f"{type(self).__name__}: Parameters {unknown} have unknown shapes and this block does not define "
            "infer_shape(*args); give their full shape or define infer_shape to fill it from the inputs")

    def forward(self, *args: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward(self, *args)")

    def hybridize(self, active: bool = True, **kwargs: Any) -> None:
        """Hybridize the HybridBlocks among the children (a plain Block runs as Python)."""
        for child in self._children.values():
            child.hybridize(active, **kwargs)

    def summary(self, *inputs: Any) -> None:
        """Print each layer's output shape and parameter count for a forward on `inputs`."""
        from .summary import summary

        summary(self, inputs)

    # ---- printing ----------------------------------------------------------------------
    def __repr__(self) -> str:
        if not self._children or type(self)._repr_args is not Block._repr_args:
            return f"{type(self).__name__}({self._repr_args()})"
        body = "\n".join(f"  ({k}): " + _indent(repr(v), 2) for k, v in self._children.items())
        return f"{type(self).__name__}(\n{body}\n)"

    def _repr_args(self) -> str:
        return ""


def _shared_param(shared: Any, name: str, param: Parameter) -> Parameter:
    """The Parameter in a 1.x `params=` dict that `name` refers to (by structural or prefixed
    name: 'weight', '0.weight', 'dense0_weight'); `param` itself when none does."""
    items = dict(shared)
    if name in items:
        return items[name]
    hits = [p for k, p in items.items() if k.endswith("." + name) or k.endswith("_" + name)]
    hits = list({id(p): p for p in hits}.values())
    if len(hits) > 1:
        raise ValueError(f"params=: {len(hits)} shared Parameters match {name!r}; pass the block's own params")
    return hits[0] if hits else param


def _indent(s: str, n: int) -> str:
    lines = s.split("\n")
    return "\n".join([lines[0]] + [" " * n + ln for ln in lines[1:]])


class _LegacyF:
    """The `F` that 1.x `hybrid_forward(F, x, ...)` receives: F.np, F.npx, and npx/np ops."""

    def __getattr__(self, name: str) -> Any:
        from .. import np as tnp
        from .. import npx

        if name == "np":
            return tnp
        if name == "npx":
            return npx
        for mod in (npx, tnp):
            if hasattr(mod, name):
                return getattr(mod, name)
        raise UnsupportedError(f"F.{name}: the legacy ndarray/symbol operator {name!r} is not provided; "
                               "use F.np.* / F.npx.* (MXNet's numpy interface)")


_F = _LegacyF()


class HybridBlock(Block):
    """A Block whose forward can be compiled with `hybridize()` (see the module docstring)."""

    def __init__(self, prefix: Optional[str] = None, params: Any = None) -> None:
        super().__init__(prefix, params)
        d = self.__dict__
        d["_active"] = False
        d["_flags"] = {}
        d["_jit_fn"] = None

    def hybridize(self, active: bool = True, partition_if_dynamic: bool = True, static_alloc: bool = False,
                  static_shape: bool = False, inline_limit: int = 2, forward_bulk_size: Any = None,
                  backward_bulk_size: Any = None, **kwargs: Any) -> None:
        """Compile the forward with tracegrad.jit (the flags are MXNet's; they are accepted and
        have nothing to tune here: one fused program is always built)."""
        flags = dict(partition_if_dynamic=partition_if_dynamic, static_alloc=static_alloc,
                     static_shape=static_shape, inline_limit=inline_limit, forward_bulk_size=forward_bulk_size,
                     backward_bulk_size=backward_bulk_size, **kwargs)
        self.__dict__["_active"] = bool(active)
        self.__dict__["_flags"] = flags
        self.__dict__["_jit_fn"] = None
        for child in self._children.values():
            child.hybridize(active, **flags)

    def optimize_for(self, x: Any, *args: Any, backend: Any = None, clear: bool = False, **kwargs: Any) -> None:
        """MXNet's partitioning entry point: hybridizes (backends are not supported)."""
        if backend is not None:
            raise UnsupportedError(f"optimize_for(backend={backend!r}): graph partitioning backends are not "
                                   "supported; hybridize() compiles the whole forward")
        self.hybridize(True, **kwargs)
        self(x, *args)

    @property
    def jit_function(self) -> Any:
        """The tracegrad.jit function behind the hybridized forward (None until the first call):
        `.explain()`, `.counters`, `.show_variants()`."""
        return self._jit_fn

    def explain(self) -> str:
        """Why the hybridized forward compiled (see tracegrad.jit's explain)."""
        if self._jit_fn is None:
            return f"{type(self).__name__}: not hybridized or not called yet"
        return self._jit_fn.explain()

    def _call_forward(self, args: tuple, kwargs: dict) -> Any:
        # inside record() the tracer fuses the forward with the backward (the jit would fall back)
        if not self._active or kwargs or autograd.is_recording() or self._deferred_anywhere():
            return self.forward(*args, **kwargs)
        fn = self._jit_fn
        if fn is None:
            from ..jit import jit

            fn = jit(self._hybrid_forward_entry)
            self.__dict__["_jit_fn"] = fn
        return fn(*args)

    def _hybrid_forward_entry(self, *args: Any) -> Any:
        return self.forward(*args)

    def _deferred_anywhere(self) -> bool:
        stack = [self]
        while stack:
            b = stack.pop()
            if b._deferred_pending:
                if any(p._data is None for p in b._reg_params.values()):
                    return True
                b.__dict__["_deferred_pending"] = False
            stack.extend(b._children.values())
        return False

    def forward(self, *args: Any) -> Any:
        if type(self).hybrid_forward is not HybridBlock.hybrid_forward:  # a 1.x block
            params = {k: p.data() for k, p in self._reg_params.items()}
            return self.hybrid_forward(_F, *args, **params)
        raise NotImplementedError(f"{type(self).__name__} must define forward(self, *args)")

    def hybrid_forward(self, F: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward(self, *args)")

    def infer_type(self, *args: Any) -> None:
        pass

    def export(self, path: str, epoch: int = 0, remove_amp_cast: bool = True) -> None:
        raise UnsupportedError(
            "HybridBlock.export writes an MXNet symbol graph, which tracegrad does not produce; save the weights "
            "with save_parameters() and rebuild the network in Python")


class SymbolBlock(HybridBlock):
    """MXNet's block built from a symbol graph: not supported (there is no mx.sym)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise UnsupportedError(
            "SymbolBlock needs MXNet symbol graphs, which tracegrad does not provide; define the network as "
            "a HybridBlock in Python and load its weights with load_parameters()")

    @staticmethod
    def imports(*args: Any, **kwargs: Any) -> Any:
        raise UnsupportedError(
            "SymbolBlock.imports reads MXNet symbol JSON, which tracegrad does not provide; define the network as "
            "a HybridBlock and load the .params file with load_parameters() (1.x names are mapped)")

