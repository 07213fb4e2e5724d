"""Compile caches: generated modules on disk (across processes) and programs in memory.

Disk: the cache keeps its files in a folder of its own, `tracegrad-cache/`, inside the
configured folder (`TRACEGRAD_CACHE_DIR`, else `$XDG_CACHE_HOME/tracegrad`, else
`~/.cache/tracegrad`). A configured folder that does not exist is created private (0o700);
an existing one is used as it is (its mode is never changed). The own folder is created 0o700
and marked with a `CACHEDIR.TAG`; a folder of that name without the tag, owned by another
user, or writable by group/others is not used (logged; a private temporary folder serves the
process). Only files the cache writes are ever deleted there (`clear`, pruning): `tg_*` and
`.tmp-*` files inside its own folder, never anything in the configured folder itself.

An entry is `tg_<hash>.py` (the generated source; the hash covers it and the tracegrad,
renderer, numba, llvmlite, numpy and Python versions and the CPU), Numba's index/data files
for its functions (`tg_<hash>.<function>-<line>.pyXY.nbi/.nbc`), and `tg_<hash>.manifest`
(JSON: the SHA-256 of the source and of every Numba file), written last. Nothing is loaded
unverified: the source must equal the source asked for, every Numba file must match the
manifest, and then the verified bytes (not the files) are what runs: the source is compiled
from memory (no `.pyc` is read or written) and the Numba files are copied into a per-process
staging folder (0o700) where Numba reads them, through a Numba cache locator that points
every generated function there. An entry that does not verify (tampered, corrupt, from an
older layout, half written) is rebuilt with a logged reason. After a build the staged files
and the manifest are stored (atomically: temporary file, then `os.replace`).

An entry may also have a native library (`tg_<hash>.native.so` and its manifest
`tg_<hash>.native.json`, built at the exit of the process that compiled it): when that
verifies (source, versions, CPU, ABI, SHA-256; see tracegrad.codegen.native) the entry loads
from it without importing Numba; one that does not is refused with a logged reason and
rebuilt at exit.

A read-only cache folder (or `TRACEGRAD_CACHE_READONLY=1`) is read as usual; what it lacks
is built in the staging folder and not stored (one logged reason per process). The folder is
bounded: past `TRACEGRAD_CACHE_MAX` entries (default 4000) the least recently written quarter
is pruned. The cache trusts its own user (who can change tracegrad itself): the manifest
guards against corruption, stale and foreign files, not against that user.

Memory: `LRU` maps trace keys to programs (or to a fallback marker).
"""

from __future__ import annotations

import atexit
import hashlib
import json
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
from typing import Any, Hashable, Optional

from ..errors import CompileError
from ..log import channel

LOG = channel("cache")
_lock = threading.RLock()
_PREFIX = "tg_"
OWN_FOLDER = "tracegrad-cache"
_TAG = "CACHEDIR.TAG"
_TAG_TEXT = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This folder is tracegrad's compile cache; `python -m tracegrad.cache clear` empties it.\n"
)
_FORMAT = 1

_fallback_dir: Optional[Path] = None
_stage: Optional[Path] = None
_logged: set = set()  # reasons logged once per process


def _once(key: str, msg: str, *args: Any) -> None:
    if key not in _logged:
        _logged.add(key)
        LOG.warning(msg, *args)


def cache_dir(create: bool = True) -> Path:
    """The cache's own folder (created when `create`; a private temporary folder serves the
    process when the configured one cannot be used, logged once)."""
    if not create:
        return _configured_dir() / OWN_FOLDER
    return _open_folder()[0]


def _configured_dir() -> Path:
    env = os.environ.get("TRACEGRAD_CACHE_DIR")
    if env:
        d = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        d = Path(base) / "tracegrad"
    return d


def _open_folder() -> tuple[Path, Optional[str]]:
    """(the own folder, why entries may not be stored there or None)."""
    global _fallback_dir
    base = _configured_dir()
    try:
        own = _own_folder(base)
    except (OSError, CompileError) as exc:
        if _fallback_dir is None:
            _fallback_dir = Path(tempfile.mkdtemp(prefix="tracegrad-cache-"))
            atexit.register(shutil.rmtree, str(_fallback_dir), True)
        _once(f"fb:{base}", "cache folder %s is unusable (%s); using %s for this process", base, exc, _fallback_dir)
        return _fallback_dir, None
    if os.environ.get("TRACEGRAD_CACHE_READONLY", "") not in ("", "0"):
        return own, "TRACEGRAD_CACHE_READONLY is set"
    return own, None if os.access(own, os.W_OK) else "the folder is not writable"


def _own_folder(base: Path) -> Path:
    if not base.exists():
        base.mkdir(mode=0o700, parents=True, exist_ok=True)  # ours: private from the start
    own = base / OWN_FOLDER
    try:
        own.mkdir(mode=0o700)
        _write_atomic(own / _TAG, _TAG_TEXT.encode())
    except FileExistsError:
        for _ in range(20):  # another process may have just created it: its tag follows
            if (own / _TAG).is_file():
                break
            time.sleep(0.05)
    st = own.lstat()
    if not stat.S_ISDIR(st.st_mode):
        raise CompileError(f"{own} is not a folder")
    if hasattr(os, "getuid") and st.st_uid not in (os.getuid(), 0):
        raise CompileError(f"{own} belongs to another user; set TRACEGRAD_CACHE_DIR")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CompileError(f"{own} is writable by other users")
    if not (own / _TAG).is_file():
        raise CompileError(f"{own} is not marked as tracegrad's ({_TAG} missing)")
    return own


def _dist_version(pkg: str) -> str:
    """An installed package's version without importing it (its dist-info folder's name;
    importlib.metadata when that is ambiguous)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(pkg)
        site = os.path.dirname(os.path.dirname(spec.origin))  # type: ignore[union-attr,arg-type]
        found = [f[len(pkg) + 1:-len(".dist-info")] for f in os.listdir(site)
                 if f.startswith(pkg + "-") and f.endswith(".dist-info")]
        if len(found) == 1:
            return found[0]
    except (OSError, AttributeError, TypeError, ValueError):
        pass
    import importlib.metadata

    return importlib.metadata.version(pkg)


_VERSIONS: Optional[str] = None


def _versions() -> str:
    """tracegrad, renderer, numba, llvmlite, numpy and Python versions and the machine, read
    without importing numba or llvmlite."""
    global _VERSIONS
    if _VERSIONS is None:
        import numpy

        from .. import __version__ as tg_version
        from .cpu import RENDERER_VERSION

        _VERSIONS = "|".join(
            [tg_version, RENDERER_VERSION, _dist_version("numba"), _dist_version("llvmlite"), numpy.__version__,
             sys.version.split()[0], platform.machine()]
        )
    return _VERSIONS


def module_name(source: str) -> tuple[str, str]:
    """(module name, full hash) of a generated source."""
    h = hashlib.sha256((_versions() + "\n" + source).encode()).hexdigest()
    return _PREFIX + h[:32], h


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ---- verification -------------------------------------------------------------------------
def _verify(d: Path, name: str, text: bytes) -> tuple[Optional[dict], Optional[str]]:
    """(verified Numba files {name: bytes} or None, why the entry is not used or None)."""
    try:
        existing = (d / f"{name}.py").read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"source unreadable ({exc})"
    if existing != text:
        return None, "source does not match its name (corrupt or foreign)"
    try:
        m = json.loads((d / f"{name}.manifest").read_bytes())
    except FileNotFoundError:
        return None, "no manifest (older layout or interrupted write): unverifiable"
    except (OSError, ValueError) as exc:
        return None, f"manifest unreadable ({type(exc).__name__})"
    if not isinstance(m, dict) or m.get("format") != _FORMAT or m.get("source") != _sha(text) \
            or not isinstance(m.get("files"), dict):
        return None, "manifest does not match the source"
    out = {}
    for fn, h in m["files"].items():
        if not (isinstance(fn, str) and fn.startswith(name + ".") and os.sep not in fn and "/" not in fn
                and fn.endswith((".nbi", ".nbc"))):
            return None, f"manifest names a file the cache does not write ({fn!r})"
        try:
            data = (d / fn).read_bytes()
        except OSError:
            return None, f"{fn} is missing"
        if _sha(data) != h:
            return None, f"{fn} does not match its manifest hash (tampered or corrupt)"
        out[fn] = data
    return out, None


# ---- the staging folder and Numba's locator -----------------------------------------------
_STAGED: dict[str, str] = {}  # staged source path -> Numba source stamp (the full hash)


_locator_installed = False


def _stage_dir(locator: bool = True) -> Path:
    """This process's private folder, where Numba reads and writes generated functions' files
    (`locator`: Numba's cache locator points there; False: Numba is not imported)."""
    global _stage, _locator_installed
    if _stage is None:
        _stage = Path(tempfile.mkdtemp(prefix="tracegrad-stage-"))
        atexit.register(shutil.rmtree, str(_stage), True)
    if locator and not _locator_installed:
        _install_locator()
        _locator_installed = True
    return _stage


def _install_locator() -> None:
    from numba.core import caching

    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl")

    class StagedLocator(caching._CacheLocator):
        """Numba's cache for generated modules: the staging folder, stamped with the hash."""

        def __init__(self, stamp: str, lineno: int, py_file: str) -> None:
            # _py_file: Numba names it in its "cannot cache" warning
            self._stamp, self._lineno, self._py_file = stamp, lineno, py_file

        def ensure_cache_path(self) -> None:
            os.makedirs(self.get_cache_path(), exist_ok=True)

        def get_cache_path(self) -> str:
            return str(_stage)

        def get_source_stamp(self) -> str:
            return self._stamp

        def get_disambiguator(self) -> str:
            return str(self._lineno)

        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> Any:
            stamp = _STAGED.get(py_file)
            return None if stamp is None else cls(stamp, py_func.__code__.co_firstlineno, py_file)

    if not any(getattr(c, "__name__", "") == "StagedLocator" for c in impl._locator_classes):
        impl._locator_classes.insert(0, StagedLocator)


def _staged_files(stage: Path, name: str) -> dict[str, bytes]:
    out = {}
    for f in stage.iterdir():
        if f.name.startswith(name + ".") and f.name.endswith((".nbi", ".nbc")):
            out[f.name] = f.read_bytes()
    return out


def _unstage(stage: Path, name: str) -> None:
    for f in list(stage.iterdir()):
        if f.name.startswith(name + "."):
            f.unlink()


def _exec(name: str, path: Path, text: bytes) -> ModuleType:
    """Run the verified source as module `name` (compiled from memory: no .pyc involved)."""
    code = compile(text, str(path), "exec", dont_inherit=True)
    mod = ModuleType(name)
    mod.__file__ = str(path)
    sys.modules[name] = mod
    exec(code, mod.__dict__)
    return mod


def load_module(source: str, stats: dict) -> ModuleType:
    """The module for `source`: from the disk cache when its entry verifies, else built (and
    stored when the folder is writable)."""
    name, full = module_name(source)
    with _lock:
        mod = sys.modules.get(name)
        if mod is not None:
            return mod
        d, read_only = _open_folder()
        text = f"# tracegrad-hash: {full}\n{source}".encode()
        mod, why = _load_native(d, name, text)
        if mod is not None:
            stats["disk_hits"] += 1
            stats["native_hits"] = stats.get("native_hits", 0) + 1
            LOG.info("disk hit %s (native)", name)
            sys.modules[name] = mod
            return mod
        if why:
            LOG.warning("native library of %s refused: %s (rebuilt)", name, why)
        verified, reason = _verify(d, name, text)
        if reason:
            LOG.warning("cache entry %s rebuilt: %s", name, reason)
        hit = bool(verified)
        stats["disk_hits" if hit else "disk_misses"] += 1
        LOG.info("disk %s %s", "hit" if hit else "miss", name)
        stage = _stage_dir()
        _unstage(stage, name)
        for fn, data in (verified or {}).items():
            (stage / fn).write_bytes(data)
        path = stage / f"{name}.py"
        path.write_bytes(text)  # for tracebacks; what runs is `text` itself
        _STAGED[str(path)] = full
        for attempt in range(2):
            try:
                mod = _exec(name, path, text)
                break
            except Exception as exc:  # e.g. a verified but unusable Numba file: rebuild once
                sys.modules.pop(name, None)
                if attempt:
                    raise CompileError(f"generated module {name} failed to build: {type(exc).__name__}: {exc}") from exc
                LOG.warning("cache entry %s failed to load (%s: %s): rebuilt", name, type(exc).__name__,
                            str(exc).splitlines()[0] if str(exc) else "")
                _unstage(stage, name)
                path.write_bytes(text)
                verified = None
        produced = _staged_files(stage, name)
        if read_only is not None:
            if produced != verified:
                _once(f"skip:{d}", "cache folder %s is read-only (%s): entries it lacks are built, not stored",
                      d, read_only)
            return mod
        if produced != verified:
            _store(d, name, text, produced)
        _want_native(d, name, text, mod)
        return mod
    raise AssertionError("unreachable")


def has_entry(source: str) -> bool:
    """Whether the disk cache has an entry for `source` (not verified: loading it does that),
    or the module is loaded in this process."""
    name = module_name(source)[0]
    if name in sys.modules:
        return True
    d = _open_folder()[0]
    return (d / f"{name}.manifest").is_file() or (d / f"{name}.native.json").is_file()


# ---- native libraries (warm start without Numba; tracegrad.codegen.native) ----------------
_pending: list[tuple[Path, str, bytes, ModuleType]] = []  # entries to build at exit, in load order
_atexit_set = False


def _native_expect(text: bytes) -> dict[str, Any]:
    """What a native manifest must say for this process: source, versions, CPU, ABI."""
    from . import native

    return native.expected(_sha(text), _versions())


def _load_native(d: Path, name: str, text: bytes) -> tuple[Optional[ModuleType], Optional[str]]:
    """(the entry's native module, or None and why its library was refused; None when there
    is none); see tracegrad.codegen.native.load_entry."""
    from . import native

    if native.supported():
        return None, None
    return native.load_entry(d, name, _native_expect(text), _stage_dir(locator=False))


def _want_native(d: Path, name: str, text: bytes, mod: ModuleType) -> None:
    """Queue entry `name` for a native library at exit unless it has a valid one."""
    global _atexit_set
    from . import native

    if native.supported() or native.is_current(d, name, _native_expect(text)):
        return
    _pending.append((d, name, text, mod))
    if not _atexit_set:
        _atexit_set = True
        atexit.register(build_pending)


def build_native(d: Path, name: str, text: bytes, mod: ModuleType) -> bool:
    """Build and store entry `name`'s native library; True when stored."""
    from . import native

    try:
        return native.store_entry(d, name, mod, _native_expect(text), _write_atomic)
    except OSError as exc:
        _once(f"store:{d}", "native library %s not stored in %s: %s", name, d, exc)
        return False


def build_pending(budget_s: Optional[float] = None, max_entries: Optional[int] = None) -> int:
    """Build native libraries for the entries this process compiled (at exit: the first
    `TRACEGRAD_NATIVE_MAX` (default 8) in load order, starting none after
    `TRACEGRAD_NATIVE_BUDGET` seconds (default 10)); returns how many were stored."""
    if budget_s is None:
        budget_s = float(os.environ.get("TRACEGRAD_NATIVE_BUDGET", "10"))
    if max_entries is None:
        max_entries = int(os.environ.get("TRACEGRAD_NATIVE_MAX", "8"))
    t0 = time.perf_counter()
    done = 0
    with _lock:
        todo, _pending[:] = _pending[:max_entries], []
    for d, name, text, mod in todo:
        if time.perf_counter() - t0 > budget_s:
            LOG.info("native builds stopped after %.1f s (TRACEGRAD_NATIVE_BUDGET)", budget_s)
            break
        done += build_native(d, name, text, mod)
    return done


def _store(d: Path, name: str, text: bytes, files: dict[str, bytes]) -> None:
    """Write an entry: Numba's files, the source, then the manifest that vouches for them."""
    try:
        for f in _entry_files(d, name):
            if f.name.endswith((".nbi", ".nbc")) and f.name not in files:
                f.unlink()
        for fn, data in files.items():
            _write_atomic(d / fn, data)
        src = d / f"{name}.py"
        if not src.is_file() or src.read_bytes() != text:
            _write_atomic(src, text)
        manifest = {"format": _FORMAT, "source": _sha(text), "files": {fn: _sha(b) for fn, b in sorted(files.items())}}
        _write_atomic(d / f"{name}.manifest", json.dumps(manifest, indent=1).encode())
    except OSError as exc:
        _once(f"store:{d}", "cache entry %s not stored in %s: %s", name, d, exc)
        return
    _maybe_prune(d, keep=name)


def _entry_files(d: Path, name: str) -> list[Path]:
    return [f for f in d.iterdir() if f.name == f"{name}.py" or f.name.startswith(name + ".")]


_writes = 0


def _maybe_prune(d: Path, keep: str) -> None:
    """Bound the folder: past `TRACEGRAD_CACHE_MAX` entries (default 4000), the least
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
        drop = {f.stem for f in mods[: len(mods) - cap * 3 // 4] if f.stem != keep and f.stem not in sys.modules}
        n = 0
        for f in d.iterdir():
            stem = f.name.split(".", 1)[0]
            if stem in drop and f.is_file():
                f.unlink()
                n += 1
        LOG.info("pruned %d old entries (%d files) from %s", len(drop), n, d)
    except (OSError, ValueError) as exc:
        LOG.info("cache prune skipped: %s", exc)


def disk_size(d: Path | None = None) -> tuple[int, int]:
    """(number of generated modules, total bytes including Numba's cache files)."""
    d = d or cache_dir(create=False)
    if not d.is_dir():
        return 0, 0
    n, total = 0, 0
    for f in d.iterdir():
        try:
            if f.is_file():
                total += f.stat().st_size
        except OSError:
            pass
        if f.name.startswith(_PREFIX) and f.suffix == ".py":
            n += 1
    return n, total


def clear_disk(d: Path | None = None) -> int:
    """Delete the cache's entries (only files it writes, only in its own marked folder);
    returns files removed."""
    d = d or cache_dir(create=False)
    if not d.is_dir() or not (d / _TAG).is_file():
        return 0
    removed = 0
    for f in d.iterdir():
        if (f.name.startswith(_PREFIX) or f.name.startswith(".tmp-")) and f.is_file() and not f.is_symlink():
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


__all__ = ["LRU", "OWN_FOLDER", "cache_dir", "clear_disk", "disk_size", "load_module", "module_name"]
