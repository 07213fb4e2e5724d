"""`mxnet.engine`: bulk-execution settings are accepted (tracegrad fuses whole traces)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

_BULK = [15]


def set_bulk_size(size: int) -> int:
    """Accepted for compatibility; returns the previous value."""
    prev = _BULK[0]
    _BULK[0] = int(size)
    return prev


@contextmanager
def bulk(size: int) -> Iterator[None]:
    prev = set_bulk_size(size)
    try:
        yield
    finally:
        set_bulk_size(prev)


__all__ = ["set_bulk_size", "bulk"]
