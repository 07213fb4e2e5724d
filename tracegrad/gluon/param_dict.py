"""What `collect_params()` returns: a plain dict (MXNet 2.x) with MXNet 1.x ParameterDict
methods on top (`get`, `setattr`, `initialize`, `zero_grad`, `reset_ctx`, `save`, `load`),
and lookup by 1.x prefixed names (`params['dense0_weight']`) as well as structural ones."""

from __future__ import annotations

from typing import Any, Optional

from .. import initializer
from .parameter import Parameter

__all__ = ["ParameterDict"]


class ParameterDict(dict):
    """{structural name: Parameter}; see the module docstring."""

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
        """The Parameter by structural or 1.x name (default when absent, as dict.get)."""
        try:
            return self[name]
        except KeyError:
            return default

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
