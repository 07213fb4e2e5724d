"""`tracegrad.gluon`: MXNet 2.x Gluon (Parameter, Block, layers, ...) on tracegrad.

    from tracegrad import gluon
    net = gluon.nn.Sequential(); net.add(gluon.nn.Dense(10)); net.initialize()
"""

from __future__ import annotations

import importlib
from typing import Any

from .parameter import Constant, DeferredInitializationError, Parameter  # noqa: F401

# ---- gluon-core: Block and the layer packages -------------------------------------------
from .block import Block, HybridBlock, SymbolBlock  # noqa: F401,E402

# Submodules loaded on first use: gluon.nn, gluon.rnn (gluon-core); gluon.loss, gluon.data,
# gluon.utils, gluon.metric, gluon.trainer (gluon-train). A module that is not there yet
# raises an ImportError that says so.
_LAZY_MODULES = ("nn", "rnn", "loss", "data", "utils", "metric", "trainer", "model_zoo", "contrib")
_LAZY_NAMES = {"Trainer": "trainer"}


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES or name in _LAZY_NAMES:
        mod_name = _LAZY_NAMES.get(name, name)
        try:
            mod = importlib.import_module(f"{__name__}.{mod_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{mod_name}":
                raise
            raise ImportError(
                f"tracegrad.gluon.{mod_name} is not available in this build of tracegrad "
                f"(gluon.{name} is not implemented yet)"
            ) from None
        return getattr(mod, name) if name in _LAZY_NAMES else mod
    raise AttributeError(f"module 'tracegrad.gluon' has no attribute {name!r}")
