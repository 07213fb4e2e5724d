"""The MXNet tutorial's example functions, written as a user writes them.

The demo (`python -m tracegrad`), the tests and the benchmark all run these, so the
tutorial's code lives in one place.
"""

from __future__ import annotations

from typing import Any

from .. import np


def tutorial_f(a: Any) -> Any:
    """Double `a` until its absolute sum reaches 1000, then pick an element by the sign."""
    b = a * 2
    while np.abs(b).sum() < 1000:
        b = b * 2
    if b.sum() >= 0:
        c = b[0]
    else:
        c = b[1]
    return c
