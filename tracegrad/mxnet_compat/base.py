"""`mxnet.base`: MXNetError (every error tracegrad raises on purpose is one)."""

from __future__ import annotations

from ..errors import TracegradError

MXNetError = TracegradError
NotImplementedForSymbol = TracegradError

__all__ = ["MXNetError"]
