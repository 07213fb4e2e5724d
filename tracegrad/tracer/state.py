"""Per-thread recording and training flags, and the log of guards seen while recording."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from .hooks import CaptureHooks


class _State(threading.local):
    def __init__(self) -> None:
        self.recording = False
        self.training = False
        self.force_lazy = 0  # >0 while backward emits gradients: keep every op lazy
        self.record_depth = 0
        self.guards: list[Any] = []  # Guard records of the current record session
        self.capture: Optional["CaptureHooks"] = None  # the active capture (tracer/hooks.py)
        self.default_float = "float32"


STATE = _State()


def is_recording() -> bool:
    return STATE.recording


def is_training() -> bool:
    return STATE.training
