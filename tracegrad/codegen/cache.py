"""Compile caches: generated modules on disk (across processes) and programs in memory.

Disk: each generated module is a file `tg_<hash>.py` in a private folder (default
`~/.cache/tracegrad` or `$XDG_CACHE_HOME/tracegrad`, `TRACEGRAD_CACHE_DIR` to move it; created
with mode 0o700). The hash covers the source, the renderer, tracegrad, numba, llvmlite,
numpy and Python versions and the CPU. Files are written atomically (a temporary file, then
`os.replace`) and imported by name, so Numba's own cache (`cache=True`, in `__pycache__`
next to the file) stores the machine code. The cache is untrusted input: a file whose
content does not match its name is rewritten, and a module that fails to import is purged
(with its Numba cache files) and rebuilt once. The folder is bounded: past
`TRACEGRAD_CACHE_MAX` modules (default 4000) the least recently written quarter is pruned.

Memory: `LRU` maps trace keys to programs (or to a fallback marker).
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import os
import platform
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from types import ModuleType
from typing import Any, Hashable

from ..errors import CompileError
from ..log import channel

LOG = channel("cache")
_lock = threading.RLock()
_PREFIX = "tg_"


_fallback_dir: Path | None = None


def cache_dir(create: bool = True) -> Path:
    """The disk cache folder (created private to the user when `create`).

    When the configured folder cannot be created or used, a private temporary folder
    serves this process (logged once)."""
    global _fallback_dir
    d = _configured_dir()
    if not create:
        return d
    try:
        return _ensure_private(d)
    except (OSError, CompileError) as exc:
        if _fallback_dir is None:
            _fallback_dir = Path(tempfile.mkdtemp(prefix="tracegrad-cache-"))
            atexit.register(shutil.rmtree, str(_fallback_dir), True)
            LOG.warning("cache folder %s is unusable (%s); using %s for this process", d, exc, _fallback_dir)
        return _fallback_dir


def _configured_dir() -> Path:
    env = os.environ.get("TRACEGRAD_CACHE_DIR")
    if env:
        d = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        d = Path(base) / "tracegrad"
    return d


def _ensure_private(d: Path) -> Path:
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = d.stat()
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise CompileError(f"cache folder {d} belongs to another user; set TRACEGRAD_CACHE_DIR")
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        os.chmod(d, 0o700)
    if not os.access(d, os.W_OK):
        raise CompileError(f"cache folder {d} is not writable")
    return d


def _versions() -> str:
    import llvmlite
    import numba
    import numpy

    from .. import __version__ as tg_version
    from .cpu import RENDERER_VERSION

    return "|".join(
        [tg_version, RENDERER_VERSION, numba.__version__, llvmlite.__version__, numpy.__version__,
         sys.version.split()[0], platform.machine()]
    )


def module_name(source: str) -> tuple[str, str]:
    """(module name, full hash) of a generated source."""
    h = hashlib.sha256((_versions() + "\n" + source).encode()).hexdigest()
    return _PREFIX + h[:32], h


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".py", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _purge(d: Path, name: str) -> None:
    pyc = d / "__pycache__"
    if pyc.is_dir():
        for f in pyc.iterdir():
            if f.name.startswith(name + ".") or f.name.startswith(name + "-"):
                try:
                    f.unlink()
                except OSError:
                    pass


def _has_machine_code(d: Path, name: str) -> bool:
    pyc = d / "__pycache__"
    try:
        return any(f.name.startswith(name + ".") and f.name.endswith(".nbi") for f in pyc.iterdir())
    except OSError:
        return False


def load_module(source: str, stats: dict) -> ModuleType:
    """Import the module for `source` from the disk cache, writing (or rewriting) it first."""
    name, full = module_name(source)
    with _lock:
        mod = sys.modules.get(name)
        if mod is not None:
            return mod
        d = cache_dir()
        path = d / f"{name}.py"
        text = f"# tracegrad-hash: {full}\n{source}"
        try:
            existing = path.read_text(encoding="utf-8") if path.exists() else None
        except (OSError, UnicodeDecodeError):
            existing = ""
        fresh = existing != text
        if existing is not None and fresh:
            LOG.warning("cache entry %s does not match its name (corrupt or foreign): rebuilt", path.name)
            _purge(d, name)
        if fresh:
            _write_atomic(path, text)
            _maybe_prune(d, keep=name)
        hit = not fresh and _has_machine_code(d, name)
        stats["disk_hits" if hit else "disk_misses"] += 1
        LOG.info("disk %s %s", "hit" if hit else "miss", path.name)
        for attempt in range(2):
            try:
                return _import(name, path)
            except Exception as exc:  # a poisoned Numba cache or a damaged file: rebuild once
                sys.modules.pop(name, None)
                if attempt:
                    raise CompileError(f"generated module {path.name} failed to build: {type(exc).__name__}: {exc}") from exc
                LOG.warning("cache entry %s failed to load (%s: %s): rebuilt", path.name, type(exc).__name__,
                            str(exc).splitlines()[0] if str(exc) else "")
                _purge(d, name)
                _write_atomic(path, text)
    raise AssertionError("unreachable")


_writes = 0


def _maybe_prune(d: Path, keep: str) -> None:
    """Bound the folder: past `TRACEGRAD_CACHE_MAX` modules (default 4000), the least
    recently written quarter goes (checked on the first and every 64th write)."""
    global _writes
    _writes += 1
    if _writes % 64 != 1:
        return
    try:
        cap = int(os.environ.get("TRACEGRAD_CACHE_MAX", "4000"))
        mods = [f for f in d.iterdir() if f.name.startswith(_PREFIX) and f.suffix == ".py"]
        if len(mods) <= cap:
            return
        mods.sort(key=lambda f: f.stat().st_mtime)
        drop = [f for f in mods[: len(mods) - cap * 3 // 4] if f.stem != keep and f.stem not in sys.modules]
        for f in drop:
            f.unlink()
            _purge(d, f.stem)
        LOG.info("pruned %d old module(s) from %s", len(drop), d)
    except (OSError, ValueError) as exc:
        LOG.info("cache prune skipped: %s", exc)


def _import(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CompileError(f"cannot import {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def disk_size(d: Path | None = None) -> tuple[int, int]:
    """(number of generated modules, total bytes including Numba's cache files)."""
    d = d or cache_dir(create=False)
    if not d.is_dir():
        return 0, 0
    n, total = 0, 0
    for root, _, files in os.walk(d):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
            if f.startswith(_PREFIX) and f.endswith(".py") and root == str(d):
                n += 1
    return n, total


def clear_disk(d: Path | None = None) -> int:
    """Delete the generated modules and their Numba cache files; returns files removed."""
    d = d or cache_dir(create=False)
    removed = 0
    if not d.is_dir():
        return 0
    for sub in (d / "__pycache__", d):
        if not sub.is_dir():
            continue
        for f in sub.iterdir():
            if f.is_file() and (f.name.startswith(_PREFIX) or f.name.startswith(".tmp-")):
                try:
                    f.unlink()
                    removed += 1
                except OSError:
                    pass
    return removed


class LRU:
    """A small thread-safe LRU map (programs by trace key)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.d: OrderedDict = OrderedDict()

    def get(self, k: Hashable) -> Any:
        v = self.d.get(k)
        if v is not None:
            try:
                self.d.move_to_end(k)
            except KeyError:  # evicted meanwhile by another thread
                pass
        return v

    def put(self, k: Hashable, v: Any) -> None:
        with _lock:
            self.d[k] = v
            self.d.move_to_end(k)
            while len(self.d) > self.cap:
                self.d.popitem(last=False)

    def clear(self) -> None:
        self.d.clear()

    def __len__(self) -> int:
        return len(self.d)


def now() -> float:
    return time.perf_counter()


__all__ = ["LRU", "cache_dir", "clear_disk", "disk_size", "load_module", "module_name"]
