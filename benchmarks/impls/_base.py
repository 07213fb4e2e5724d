"""The step object every implementation returns."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np


class Step:
    """`step()` runs one synchronous step; `fetch()` returns its results as numpy arrays (copies:
    a training step's fetch must not change when the next step runs). `notes` and `backend`
    (strings or callables returning one, read after the run) go into the record."""

    def __init__(self, step: Callable[[], Any], fetch: Callable[[], dict[str, np.ndarray]],
                 notes: Any = "", backend: Any = "") -> None:
        self.step = step
        self.fetch = fetch
        self.notes = notes
        self.backend = backend


class Pool:
    """Cycles through W5's pre-drawn inputs: each call gets a fresh `a` (a new array)."""

    def __init__(self, pool: np.ndarray) -> None:
        self.pool = pool
        self.i = 0

    def next(self) -> np.ndarray:
        a = self.pool[self.i % len(self.pool)].copy()
        self.i += 1
        return a
