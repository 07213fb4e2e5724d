"""Shared test set-up: every test starts from MXNet's default state (not recording,
predict mode, float32 default, seeded generators) and leaves it that way."""

from __future__ import annotations

import os

import numpy
import pytest

# Native warm-start libraries are built at a process's exit (seconds per entry): not for the
# suite's processes and subprocesses; tests/codegen/test_native_cache.py turns them on.
os.environ.setdefault("TRACEGRAD_NATIVE", "0")
# Cold compiles run synchronously (deterministic counts); tests/codegen/test_background.py
# turns background compiles on.
os.environ.setdefault("TRACEGRAD_BACKGROUND", "0")

from tracegrad import autograd, npx
from tracegrad.tracer import eager
from tracegrad import np as tnp


@pytest.fixture(autouse=True)
def _fresh_autograd_state():
    npx.set_np()
    autograd.set_recording(False)
    autograd.set_training(False)
    tnp.random.seed(0)
    numpy.random.seed(0)
    eager.MODE.active, eager.MODE.syncs = False, 0  # the small-value path's history (tracer/eager.py)
    yield
    leaked = (autograd.is_recording(), autograd.is_training())
    autograd.set_recording(False)
    autograd.set_training(False)
    npx.set_np()
    assert leaked == (False, False), f"test left recording/training on: {leaked}"
