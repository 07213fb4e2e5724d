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


# Tests that take tens of seconds each (subprocesses, compiled batches): they start first, so
# that in a parallel run (`-n auto --dist worksteal`, see README) the short tests fill in
# around them instead of one of them running alone at the end. Node-id prefixes; a stale
# entry only loses its place.
START_FIRST = (
    "tests/test_strict_run.py",
    "tests/test_cuda_sim.py::test_cuda_simulator_cases",
    "tests/codegen/test_compiled_cases.py",
    "tests/codegen/test_random_traces.py::test_seeded_programs",
    "tests/test_examples_digits.py",
    "tests/codegen/test_cache.py",
    "tests/test_benchmarks.py::test_run_all_table_json_png",
)


def pytest_collection_modifyitems(config, items) -> None:
    def rank(item) -> int:
        return next((i for i, p in enumerate(START_FIRST) if item.nodeid.startswith(p)), len(START_FIRST))

    items.sort(key=rank)  # stable: the rest keep their order
