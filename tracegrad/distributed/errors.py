"""Errors of the distributed layer. Each one says which rank, which collective, what to do."""

from __future__ import annotations

from ..errors import TracegradError


class DistributedError(TracegradError, RuntimeError):
    """A collective could not run as asked (not initialized, bad arguments, MPI missing)."""


class MismatchError(DistributedError, ValueError):
    """Ranks called the same collective with different names, shapes, dtypes or ops."""


class RankFailedError(DistributedError):
    """Another rank raised an exception; this rank stops instead of waiting for it."""

    def __init__(self, failed_rank: int, message: str) -> None:
        super().__init__(message)
        self.failed_rank = failed_rank


class CollectiveTimeoutError(DistributedError, TimeoutError):
    """A collective did not complete within the timeout (a rank is stuck or diverged)."""
