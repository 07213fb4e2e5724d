"""What `collect_params()` returns: a plain dict (MXNet 2.x) with MXNet 1.x ParameterDict
methods on top (`get`, `setattr`, `initialize`, `zero_grad`, `reset_ctx`, `save`, `load`),
and lookup by 1.x prefixed names (`params['dense0_weight']`) as well as structural ones."""

from __future__ import annotations

from typing import Any, Optional

from .. import initializer
from .parameter import Parameter

__all__ = ["ParameterDict"]


class ParameterDict(dict):
    """{structural name: Parameter}; see the module docstring. `Block.params` gives one bound
    to its block, where 1.x `get(name, shape=..., init=...)` creates and registers a
    Parameter that does not exist yet."""

    _owner: Any = None

    @classmethod
    def of_block(cls, block: Any) -> "ParameterDict":
        d = cls(block._reg_params)
        d._owner = block
        return d

    @property
    def prefix(self) -> str:
        return ""

    def _by_old_name(self, key: Any) -> Optional[Parameter]:
        if not isinstance(key, str):
            return None
        for p in self.values():
            if p._structure == key:
                return p
        return None

    def __getitem__(self, key: Any) -> Parameter:
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        p = self._by_old_name(key)
        if p is None:
            raise KeyError(f"{key!r}: no such parameter; known: {', '.join(self.keys()) or '(none)'}")
        return p

    def __contains__(self, key: Any) -> bool:
        return dict.__contains__(self, key) or self._by_old_name(key) is not None

    def get(self, name: Any, default: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        """The Parameter by structural or 1.x name; when absent: on a block's `params`, a new
        Parameter(name, **kwargs) registered on that block (MXNet 1.x), else `default`."""
        try:
            return self[name]
        except KeyError:
            pass
        owner = self._owner
        if owner is None:
            return default
        if isinstance(name, str) and name.startswith(owner.prefix) and name != owner.prefix:
            name = name[len(owner.prefix):]
        kwargs.setdefault("allow_deferred_init", True)
        p = Parameter(name, **kwargs)
        p = owner._register_param(name, p)
        self[name] = p
        return p

    def get_constant(self, name: str, value: Any = None) -> Any:
        """MXNet 1.x: the block's Constant `name`, created from `value` when absent."""
        from .parameter import Constant

        try:
            return self[name]
        except KeyError:
            pass
        if self._owner is None or value is None:
            raise KeyError(f"no constant {name!r}; pass value= to create it")
        c = Constant(value)
        c = self._owner._register_param(name, c)
        self[name] = c
        return c

    def setattr(self, name: str, value: Any) -> None:
        """Set an attribute on every Parameter (e.g. `setattr('grad_req', 'null')`)."""
        for p in self.values():
            setattr(p, name, value)

    def initialize(self, init: Any = None, ctx: Any = None, verbose: bool = False,
                   force_reinit: bool = False, device: Any = None) -> None:
        init = initializer.Uniform() if init is None else init
        device = ctx if device is None else device
        for p in self.values():
            p.initialize(None, device, default_init=init, force_reinit=force_reinit)

    def zero_grad(self) -> None:
        for p in self.values():
            p.zero_grad()

    def reset_ctx(self, ctx: Any) -> None:
        for p in self.values():
            p.reset_ctx(ctx)

    reset_device = reset_ctx

    def list_ctx(self) -> list:
        out: list = []
        for p in self.values():
            for d in p.list_ctx():
                if d not in out:
                    out.append(d)
        return out

    def save(self, filename: str, strip_prefix: str = "") -> None:
        """Write {name: array} as a numpy zip (names with `strip_prefix` removed)."""
        from .. import serialization

        arrays = {}
        for k, p in self.items():
            if strip_prefix and k.startswith(strip_prefix):
                k = k[len(strip_prefix):]
            arrays[k] = p._reduce()
        serialization.savez(filename, **arrays)

    def load(self, filename: str, ctx: Any = None, allow_missing: bool = False, ignore_extra: bool = False,
             restore_prefix: str = "", cast_dtype: bool = False, dtype_source: str = "current") -> None:
        from . import param_io
        from .. import serialization

        loaded = serialization.load_dict(filename)
        loaded = {restore_prefix + k: v for k, v in loaded.items()}
        param_io.assign(dict(self), loaded, ctx, allow_missing, ignore_extra, cast_dtype, dtype_source, filename)
