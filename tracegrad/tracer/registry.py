"""The array classes, registered at import: the tracer's base class (`BASE`, set by
tracer/array.py) and the surface class whose instances ops return (`CLS`, set by
tracegrad.ndarray through `array.register_surface`). The modules array.py builds on
(lazy, backward, fastgrad) make and recognise arrays through them without importing it."""

from __future__ import annotations

BASE: type = None  # type: ignore[assignment]
CLS: type = None  # type: ignore[assignment]
