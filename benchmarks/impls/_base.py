"""The step object every implementation returns."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np


class Step:
    """`step()` runs one synchronous step; `fetch()` returns its results as numpy arrays."""

    def __init__(self, step: Callable[[], Any], fetch: Callable[[], dict[str, np.ndarray]],
                 notes: Any = "") -> None:
        self.step = step
        self.fetch = fetch
        self.notes = notes


class Pool:
    """Cycles through W5's pre-drawn inputs: each call gets a fresh `a` (a new array)."""

    def __init__(self, pool: np.ndarray) -> None:
        self.pool = pool
        self.i = 0

    def next(self) -> np.ndarray:
        a = self.pool[self.i % len(self.pool)].copy()
        self.i += 1
        return a
