"""The compile cache, as users see it: where it is, how big, and how to clear it.

    import tracegrad.cache
    tracegrad.cache.info()    # {'dir': ..., 'modules': n, 'bytes': b, 'programs_in_memory': m}
    tracegrad.cache.clear()   # forget compiled programs and delete the disk cache files

From a shell: `python -m tracegrad.cache` (prints info), `python -m tracegrad.cache clear`.
The cache's files live in its own folder, `tracegrad-cache/`, inside `TRACEGRAD_CACHE_DIR`,
else `$XDG_CACHE_HOME/tracegrad`, else `~/.cache/tracegrad`; `clear` deletes only the cache's
own files there (see tracegrad.codegen.cache).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def directory() -> str:
    """The cache's own folder (not created)."""
    from .codegen.cache import cache_dir

    return str(cache_dir(create=False))


def size() -> int:
    """Bytes on disk used by the cache (generated modules and Numba's machine code)."""
    from .codegen.cache import disk_size

    return disk_size()[1]


def info() -> dict[str, Any]:
    """Folder, number of generated modules, bytes on disk, programs held in memory."""
    from .codegen.cache import disk_size
    from .runtime import execute

    n, b = disk_size()
    progs = execute._programs
    return {"dir": directory(), "modules": n, "bytes": b, "programs_in_memory": 0 if progs is None else len(progs)}


def clear(memory: bool = True, disk: bool = True) -> int:
    """Forget in-memory programs and/or delete the disk cache files; returns files removed."""
    from .codegen.cache import clear_disk
    from .runtime import execute

    if memory:
        execute.clear_programs()
    return clear_disk() if disk else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tracegrad.cache", description="tracegrad's compile cache")
    p.add_argument("command", nargs="?", default="info", choices=["info", "clear", "dir"])
    a = p.parse_args(argv)
    if a.command == "dir":
        print(directory())
    elif a.command == "clear":
        print(f"removed {clear()} file(s) from {directory()}")
    else:
        i = info()
        print(f"{i['dir']}: {i['modules']} module(s), {i['bytes'] / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
