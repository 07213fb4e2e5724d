"""The thread count of numpy's OpenBLAS, held at one while pool threads call BLAS.

Kernels that split GEMMs over the thread pool (`pool.run`) call BLAS from every pool thread
at once; an OpenBLAS that also threads each call then runs threads x BLAS threads on the
cores and its waiting threads spin (measured on the 2-core benchmark machine under load: a
W9-shaped convolution forward 740 ms against 48 ms with BLAS held at one thread).
`single()` holds OpenBLAS at one thread for a block and restores the previous count.

OpenBLAS is found among the shared libraries this process has loaded (numpy's wheel
bundles it; the symbols are prefixed and suffixed by how it was built). Where numpy uses
another BLAS, or none is loaded, `single()` does nothing and says so once on the
`fallback` log channel. OpenBLAS's GEMM results differ bitwise between thread counts
(measured: a 3x3 convolution's forward GEMMs at 1 and 2 threads), so kernels that promise
results independent of the thread count hold it at one on every path.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from typing import Any, Iterator, Optional

from ..log import channel

_NAMES = (  # (set, get) as numpy's OpenBLAS builds export them
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)
_api: Optional[tuple[Any, Any]] = None
_found = False
_lock = threading.Lock()
_depth = 0  # nested or concurrent holders: the first sets one thread, the last restores
_saved = 1


def _loaded_blas_paths() -> list[str]:
    try:
        with open("/proc/self/maps") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    return sorted({ln.split()[-1] for ln in lines if "blas" in ln.rsplit("/", 1)[-1].lower() and "/" in ln})


def _find() -> Optional[tuple[Any, Any]]:
    global _api, _found
    if _found:
        return _api
    import numpy  # noqa: F401  (loads numpy's BLAS before the search)

    for path in _loaded_blas_paths():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _NAMES:
            if hasattr(lib, set_name) and hasattr(lib, get_name):
                setter, getter = getattr(lib, set_name), getattr(lib, get_name)
                setter.argtypes, setter.restype = [ctypes.c_int], None
                getter.argtypes, getter.restype = [], ctypes.c_int
                _api = (setter, getter)
                break
        if _api is not None:
            break
    if _api is None:
        channel("fallback").info(
            "blas_threads: no OpenBLAS thread control among the loaded libraries; BLAS calls "
            "from pool threads run with the BLAS library's own threading")
    _found = True
    return _api


def threads() -> Optional[int]:
    """OpenBLAS's thread count now (None where no OpenBLAS thread control was found)."""
    api = _find()
    return None if api is None else int(api[1]())


def set_threads(n: int) -> None:
    """Set OpenBLAS's thread count (no effect where no OpenBLAS thread control was found)."""
    api = _find()
    if api is not None:
        api[0](max(1, int(n)))


@contextlib.contextmanager
def single() -> Iterator[None]:
    """Hold OpenBLAS at one thread inside the block (re-entrant; thread-safe)."""
    global _depth, _saved
    api = _find()
    if api is None:
        yield
        return
    setter, getter = api
    with _lock:
        if _depth == 0:
            _saved = getter()
            if _saved != 1:
                setter(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved != 1:
                setter(_saved)
