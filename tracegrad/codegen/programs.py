"""Generated modules kept in memory: a bounded LRU that releases what falls out, and the
warning for a user line whose traces keep generating new modules.

A module is named by its source's hash (`cache.module_name`); with sizes passed as
arguments (generic plans, see cpu.Sizes) one module serves every size of a trace, so new
modules come from new trace structures, ranks, broadcast patterns or literal values. At
most `TRACEGRAD_MAX_MODULES` (default 64) modules are held; the least recently used one
that falls out is removed from `sys.modules` and from Numba's registry of user functions,
so its Numba dispatchers (and their compiled code) go with the last program that uses them (a later use loads it again from the disk
cache). A user line (the first frame outside tracegrad) whose traces have built more than
`WARN_AFTER` modules is warned about once (`TRACEGRAD_LOG=compile` logs every compile).
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections import OrderedDict
from types import ModuleType
from typing import Callable, Optional

MAX_MODULES = max(1, int(os.environ.get("TRACEGRAD_MAX_MODULES", "64") or 64))
WARN_AFTER = 16
_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep

_lock = threading.RLock()
_modules: "OrderedDict[str, ModuleType]" = OrderedDict()
_per_line: dict[tuple[str, int], int] = {}
_warned: set = set()
_released = 0


def get_module(name: str, load: Callable[[], ModuleType]) -> tuple[ModuleType, bool]:
    """(the module called `name`, whether it was built or loaded now): from memory, else
    `load()` (the disk cache or a compile), kept in the LRU."""
    with _lock:
        mod = _modules.get(name)
        if mod is not None:
            _modules.move_to_end(name)
            return mod, False
    mod = load()
    with _lock:
        _modules[name] = mod
        _modules.move_to_end(name)
        while len(_modules) > MAX_MODULES:
            _release(*_modules.popitem(last=False))
    _count_new()
    return mod, True


def is_held(source: str) -> bool:
    """Whether the module of `source` is held in memory."""
    from .cache import module_name

    return module_name(source)[0] in _modules


def _release(name: str, mod: ModuleType) -> None:
    """Forget module `name`: out of `sys.modules`, and its Numba functions out of Numba's
    registry of user functions (what a dispatcher's own finalizer would do; that registry
    otherwise keeps every dispatcher, its module and its code alive for good), and its
    globals emptied. Programs that still hold its functions keep working: they call the
    dispatchers directly, with the types they were compiled for."""
    global _released
    if sys.modules.get(name) is mod:
        del sys.modules[name]
    for obj in list(vars(mod).values()):
        overloads = getattr(obj, "overloads", None)
        ctx = getattr(obj, "targetctx", None)
        if not isinstance(overloads, dict) or ctx is None or not hasattr(ctx, "remove_user_function"):
            continue
        for cres in list(overloads.values()):
            try:
                ctx.remove_user_function(cres.entry_point)
            except KeyError:
                pass
    # the compiled code's environment holds the module's globals, which hold the
    # dispatchers, which hold the code: a cycle through Numba's C objects that the
    # garbage collector cannot see. Compiled functions no longer read their globals.
    vars(mod).clear()
    _released += 1


def held() -> int:
    """Modules held in memory now."""
    return len(_modules)


def released() -> int:
    """Modules released so far (fell out of the LRU)."""
    return _released


def clear() -> None:
    """Release every held module and forget the per-line counts."""
    with _lock:
        while _modules:
            _release(*_modules.popitem(last=False))
        _per_line.clear()
        _warned.clear()


def _user_frame() -> Optional[tuple[str, int, dict]]:
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename.startswith(_PKG):
        f = f.f_back
    return None if f is None else (f.f_code.co_filename, f.f_lineno, f.f_globals)


def _count_new() -> None:
    where = _user_frame()
    if where is None:
        return
    path, line, g = where
    key = (path, line)
    with _lock:
        n = _per_line[key] = _per_line.get(key, 0) + 1
        if n <= WARN_AFTER or key in _warned:
            return
        _warned.add(key)
    warnings.warn_explicit(
        f"tracegrad: the traces run from this line have generated {n} compiled modules (each a "
        f"compile, or a load from the disk cache): their structure, a literal value or a size "
        f"pattern (rank, broadcast dims, size-1 dims) keeps changing. Sizes alone do not "
        f"recompile; TRACEGRAD_LOG=compile lists the compiles.",
        RuntimeWarning, path, line, module=g.get("__name__"), registry=g.setdefault("__warningregistry__", {}))


__all__ = ["MAX_MODULES", "WARN_AFTER", "clear", "get_module", "held", "released"]
