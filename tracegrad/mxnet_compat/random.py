"""`mxnet.random`: seeding and sampling (MXNet 2.x names, tracegrad.np.random underneath)."""

from __future__ import annotations

from typing import Any

from ..np import random as _r

uniform = _r.uniform
normal = _r.normal
randint = _r.randint
randn = _r.randn
shuffle = _r.shuffle


def seed(seed_state: int, device: Any = "all", ctx: Any = None) -> None:
    """Make later sampling (initializers, dropout, np.random) reproducible."""
    _r.seed(seed_state)


__all__ = ["seed", "uniform", "normal", "randint", "randn", "shuffle"]
