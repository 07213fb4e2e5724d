"""`tracegrad.install_as_mxnet()`: `import mxnet` (and every `mxnet.*` submodule) gives tracegrad.

An import hook (a meta path finder) answers every `mxnet` / `mxnet.*` import: names that
tracegrad implements map to its modules (the same module objects, so classes compare
equal: `mxnet.gluon.nn.Dense is tracegrad.gluon.nn.Dense`); MXNet modules tracegrad does
not implement (the legacy `mx.nd` / `mx.sym` interfaces, `mx.io`, `mx.kv`, ...) import as
stubs whose attributes raise `UnsupportedError` saying what to use instead. Modules another
part of tracegrad provides (optimizer, lr_scheduler, gluon.loss/data/metric/trainer) resolve
when they exist; until then their use raises an error naming them.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from typing import Any, Optional

from ..errors import UnsupportedError

__all__ = ["install", "uninstall", "is_installed", "TARGETS", "UNSUPPORTED"]

# mxnet name -> tracegrad module ("mxnet.gluon.x.y" maps to "tracegrad.gluon.x.y" unless listed)
TARGETS = {
    "mxnet.np": "tracegrad.np", "mxnet.numpy": "tracegrad.np",
    "mxnet.npx": "tracegrad.npx", "mxnet.numpy_extension": "tracegrad.npx",
    "mxnet.autograd": "tracegrad.autograd",
    "mxnet.gluon": "tracegrad.gluon",
    "mxnet.init": "tracegrad.initializer", "mxnet.initializer": "tracegrad.initializer",
    "mxnet.context": "tracegrad.mxnet_compat.context", "mxnet.device": "tracegrad.mxnet_compat.context",
    "mxnet.random": "tracegrad.mxnet_compat.random", "mxnet.rnd": "tracegrad.mxnet_compat.random",
    "mxnet.test_utils": "tracegrad.mxnet_compat.test_utils",
    "mxnet.util": "tracegrad.mxnet_compat.util",
    "mxnet.base": "tracegrad.mxnet_compat.base", "mxnet.error": "tracegrad.mxnet_compat.base",
    "mxnet.optimizer": "tracegrad.optimizer",
    "mxnet.lr_scheduler": "tracegrad.lr_scheduler",
    "mxnet.metric": "tracegrad.gluon.metric",
    "mxnet.engine": "tracegrad.mxnet_compat.engine",
}  # fmt: skip

_NP_INSTEAD = "use mxnet.np / mxnet.npx (MXNet's numpy interface), which tracegrad implements"
UNSUPPORTED = {
    "mxnet.nd": f"the legacy NDArray interface (mx.nd) is not provided by tracegrad; {_NP_INSTEAD}",
    "mxnet.ndarray": f"the legacy NDArray interface (mx.ndarray) is not provided by tracegrad; {_NP_INSTEAD}",
    "mxnet.sym": "symbols (mx.sym) are not provided by tracegrad; write the network as a gluon HybridBlock and "
                 "hybridize() it (the forward compiles with tracegrad.jit)",
    "mxnet.symbol": "symbols (mx.symbol) are not provided by tracegrad; write the network as a gluon HybridBlock",
    "mxnet.io": "mx.io data iterators are not provided; use mxnet.gluon.data (Dataset, DataLoader)",
    "mxnet.recordio": "RecordIO files are not supported; use mxnet.gluon.data with numpy or image files",
    "mxnet.kvstore": "kvstore is not provided; use gluon.Trainer (kvstore='horovod' for multi-process training "
                     "through tracegrad.distributed)",
    "mxnet.kv": "kvstore is not provided; use gluon.Trainer (kvstore='horovod' through tracegrad.distributed)",
    "mxnet.model": "mx.model (the pre-Gluon training API) is not provided; use gluon.Trainer",
    "mxnet.module": "mx.module is not provided; use gluon Blocks and gluon.Trainer",
    "mxnet.mod": "mx.mod is not provided; use gluon Blocks and gluon.Trainer",
    "mxnet.callback": "mx.callback is not provided; write the training loop with gluon.Trainer",
    "mxnet.image": "mx.image is not provided; use mxnet.gluon.data.vision.transforms",
    "mxnet.img": "mx.img is not provided; use mxnet.gluon.data.vision.transforms",
    "mxnet.contrib": "mx.contrib is not provided by tracegrad",
    "mxnet.operator": "custom operators (mx.operator) are not provided; use tracegrad.autograd.Function",
    "mxnet.profiler": "mx.profiler is not provided; use TRACEGRAD_LOG=compile and jit explain()",
    "mxnet.visualization": "mx.visualization is not provided; use Block.summary()",
    "mxnet.viz": "mx.viz is not provided; use Block.summary()",
    "mxnet.rtc": "runtime CUDA compilation (mx.rtc) is not provided",
    "mxnet.library": "loading MXNet extension libraries is not supported",
    "mxnet.onnx": "ONNX export is not provided",
    "mxnet.amp": "mx.amp (automatic mixed precision) is not provided; cast blocks with net.cast('float16')",
    "mxnet.name": "mx.name (symbol naming) is not provided",
    "mxnet.attribute": "mx.attribute (symbol attributes) is not provided",
    "mxnet.notebook": "mx.notebook is not provided",
    "mxnet.executor": "executors belong to symbols, which tracegrad does not provide",
    "mxnet.tvmop": "TVM operators are not provided",
    "mxnet.runtime": "mx.runtime (libmxnet feature flags) is not provided",
    "mxnet.dlpack": "DLPack conversion through mxnet.dlpack is not provided",
    "mxnet.log": "mx.log is not provided; use Python's logging (TRACEGRAD_LOG channels)",
    "mxnet.gluon.model_zoo": "gluon.model_zoo (pretrained networks) is not provided; define the network and "
                             "load_parameters() its weights",
    "mxnet.gluon.contrib": "gluon.contrib is not provided by tracegrad",
    "mxnet.gluon.probability": "gluon.probability is not provided by tracegrad",
}  # fmt: skip

# the rest of MXNet 2.x's package: importable, clear errors on use
for _name in ("symbol_doc", "ndarray_doc", "numpy_op_signature", "numpy_dispatch_protocol", "numpy_op_fallback",
              "_global_var", "_api_internal", "api", "container", "libinfo", "misc", "registry", "space", "cuda",
              "_deferred_compute", "kvstore_server", "np_symbol", "tools", "cython", "_ctypes", "_ffi", "_cy3",
              "_numpy_op_doc"):
    UNSUPPORTED.setdefault(f"mxnet.{_name}", f"mxnet.{_name} is an MXNet internal that tracegrad does not provide")

# what `mx.<name>` gives without importing a submodule
_TOP_LEVEL = {
    "cpu": ("tracegrad.mxnet_compat.context", "cpu"), "gpu": ("tracegrad.mxnet_compat.context", "gpu"),
    "cpu_pinned": ("tracegrad.mxnet_compat.context", "cpu_pinned"),
    "Context": ("tracegrad.mxnet_compat.context", "Context"), "Device": ("tracegrad.mxnet_compat.context", "Device"),
    "current_context": ("tracegrad.mxnet_compat.context", "current_context"),
    "current_device": ("tracegrad.mxnet_compat.context", "current_device"),
    "MXNetError": ("tracegrad.mxnet_compat.base", "MXNetError"),
    "is_np_array": ("tracegrad.mxnet_compat.util", "is_np_array"),
    "is_np_shape": ("tracegrad.mxnet_compat.util", "is_np_shape"),
    "set_np_shape": ("tracegrad.mxnet_compat.util", "set_np_shape"),
    "np_shape": ("tracegrad.mxnet_compat.util", "np_shape"), "np_array": ("tracegrad.mxnet_compat.util", "np_array"),
    "use_np": ("tracegrad.mxnet_compat.util", "use_np"), "use_np_shape": ("tracegrad.mxnet_compat.util", "use_np_shape"),
    "use_np_array": ("tracegrad.mxnet_compat.util", "use_np_array"),
    "is_np_default_dtype": ("tracegrad.mxnet_compat.util", "is_np_default_dtype"),
    "np_default_dtype": ("tracegrad.mxnet_compat.util", "np_default_dtype"),
    "use_np_default_dtype": ("tracegrad.mxnet_compat.util", "use_np_default_dtype"),
}  # fmt: skip


def _target(fullname: str) -> Optional[str]:
    if fullname in TARGETS:
        return TARGETS[fullname]
    for prefix in sorted(TARGETS, key=len, reverse=True):
        if fullname.startswith(prefix + ".") and TARGETS[prefix] in ("tracegrad.gluon", "tracegrad.optimizer"):
            return TARGETS[prefix] + fullname[len(prefix):]
    return None


class StubModule(types.ModuleType):
    """An MXNet module tracegrad does not implement: importable, every attribute raises."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(name, f"Not provided by tracegrad: {why}")
        self.__path__: list = []  # submodules are stubs as well
        self._why = why

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        raise UnsupportedError(f"{self.__name__}.{attr}: {self._why}")


class MissingModule(StubModule):
    """An mxnet module whose tracegrad counterpart is not in this build (yet)."""


def _missing(fullname: str, target: str) -> MissingModule:
    return MissingModule(fullname, f"it maps to {target}, which this build of tracegrad does not include")


class MxnetModule(types.ModuleType):
    """The `mxnet` package: attributes resolve to tracegrad's modules on first use."""

    def __init__(self) -> None:
        super().__init__("mxnet", "tracegrad installed as mxnet (tracegrad.install_as_mxnet)")
        self.__path__: list = []
        from .. import __version__

        self.__version__ = f"2.0.0+tracegrad.{__version__}"

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        if attr in _TOP_LEVEL:
            mod, name = _TOP_LEVEL[attr]
            return getattr(importlib.import_module(mod), name)
        full = f"mxnet.{attr}"
        if full in TARGETS or full in UNSUPPORTED:
            return importlib.import_module(full)
        raise AttributeError(f"module 'mxnet' (tracegrad) has no attribute {attr!r}")


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, fullname: str) -> None:
        self.fullname = fullname

    def create_module(self, spec: Any) -> types.ModuleType:
        return types.ModuleType(spec.name)  # replaced in exec_module (see _load_unlocked)

    def exec_module(self, module: types.ModuleType) -> None:
        sys.modules[self.fullname] = _resolve(self.fullname)


def _resolve(fullname: str) -> types.ModuleType:
    if fullname == "mxnet":
        return MxnetModule()
    if fullname in UNSUPPORTED:
        return StubModule(fullname, UNSUPPORTED[fullname])
    parent = fullname.rpartition(".")[0]
    if parent in UNSUPPORTED:
        return StubModule(fullname, UNSUPPORTED[parent])
    target = _target(fullname)
    if target is None:
        raise ModuleNotFoundError(f"No module named {fullname!r}: tracegrad's mxnet alias does not provide it",
                                  name=fullname)
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (target == exc.name or target.startswith(exc.name + ".")):
            return _missing(fullname, target)
        raise


class MxnetFinder(importlib.abc.MetaPathFinder):
    """Answers `mxnet` and `mxnet.*` imports with tracegrad modules (see module doc)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "mxnet" and not fullname.startswith("mxnet."):
            return None
        is_pkg = True
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(fullname), is_package=is_pkg)


_FINDER = MxnetFinder()


def install() -> None:
    """Make `import mxnet` give tracegrad (idempotent). A real MXNet already imported is
    replaced in sys.modules for later imports."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    for name in [n for n in sys.modules if n == "mxnet" or n.startswith("mxnet.")]:
        if not isinstance(sys.modules[name], (MxnetModule, StubModule)) and not sys.modules[name].__name__.startswith(
                "tracegrad"):
            del sys.modules[name]


def uninstall() -> None:
    """Undo install(): forget the hook and every `mxnet` module it gave."""
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
    for name in [n for n in sys.modules if n == "mxnet" or n.startswith("mxnet.")]:
        del sys.modules[name]


def is_installed() -> bool:
    return _FINDER in sys.meta_path
