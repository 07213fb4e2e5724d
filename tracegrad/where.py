"""The user's source line: the first frame outside the tracegrad package."""

from __future__ import annotations

import os
import sys
import warnings

_PKG = os.path.dirname(os.path.abspath(__file__)) + os.sep  # a folder, never a name prefix


def user_frame() -> tuple[str, int]:
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename.startswith(_PKG):
        f = f.f_back
    if f is None:
        return ("<unknown>", 0)
    return (f.f_code.co_filename, f.f_lineno)


def user_line() -> str:
    path, line = user_frame()
    return f"{os.path.basename(path)}:{line}"


def user_line_long() -> str:
    path, line = user_frame()
    return f"{path}:{line}"


def warn_user(message: str, category: type[Warning] = RuntimeWarning) -> None:
    """Issue a warning attributed to the user's line (shown once per line by default)."""
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename.startswith(_PKG):
        f = f.f_back
    if f is None:
        warnings.warn(message, category, stacklevel=2)
        return
    g = f.f_globals
    warnings.warn_explicit(message, category, f.f_code.co_filename, f.f_lineno, module=g.get("__name__"),
                           registry=g.setdefault("__warningregistry__", {}))
