"""Codegen tests compile into a private, per-session cache folder (never the user's)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tg-cache")
    old = os.environ.get("TRACEGRAD_CACHE_DIR")
    os.environ["TRACEGRAD_CACHE_DIR"] = str(d)
    yield d
    if old is None:
        os.environ.pop("TRACEGRAD_CACHE_DIR", None)
    else:
        os.environ["TRACEGRAD_CACHE_DIR"] = old
