"""Releasing the recorded graph after a backward (plain or cached)."""

from __future__ import annotations

from typing import Any, Sequence

from .lazy import next_serial


def free_graph(prods: Sequence[Any], heads: Sequence[Any]) -> None:
    """Take the arrays that `prods` made (gradient buffers aside) and `heads` out of the
    graph; `_freed` keeps the serial at which they left it."""
    freed_at = next_serial()  # truthy: the first producer took serial 0
    for p in prods:
        for r in p.outs:
            o = r() if r is not None else None
            if o is not None and o._grad is None:
                o._in_graph = False
                o._freed = freed_at
                if o._data is not None:
                    o._prod = None
    for h in heads:
        if h._grad is None and h._prod is not None:
            h._in_graph = False
            h._freed = freed_at
            if h._data is not None:  # a computed head (the loss) lets the freed graph go
                h._prod = None
