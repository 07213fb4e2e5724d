"""Optimizer states files in MXNet 2.x's format (`Trainer.save_states`, `Updater.get_states`).

MXNet writes `pickle.dumps((states, optimizer))`: `states` maps a parameter index to its
state (an `mxnet.ndarray.ndarray.NDArray`, a tuple of them, or None), each array pickled
as the raw bytes of one NDArray; `optimizer` is the `mxnet.optimizer.<module>.<Class>`
object (its `__dict__`: hyperparameters, update counts, an `mxnet.lr_scheduler` object).

A file is untrusted, so it is never unpickled with Python's class lookup: `read` runs a
restricted unpickler that knows only those MXNet names (and `bytearray`), builds inert
records from them and raises on any other global. `write` emits the same pickle opcodes
by hand (no MXNet needed), so real MXNet 2.x loads what tracegrad saves and vice versa.
"""

from __future__ import annotations

import io
import pickle
import struct
from typing import Any

from .. import serialization
from ..errors import UnsupportedError

__all__ = ["read", "write", "Record", "Array", "Global", "mx_array", "MX_OPTIMIZERS", "MX_SCHEDULERS"]

# our registry name -> (MXNet module, class, the attributes its class adds to the base's,
# its use_fused_step and aggregate_num defaults)
MX_OPTIMIZERS = {
    "sgd": ("mxnet.optimizer.sgd", "SGD", ("momentum", "lazy_update"), True, 1),
    "nag": ("mxnet.optimizer.nag", "NAG", ("momentum",), True, 1),
    "adam": ("mxnet.optimizer.adam", "Adam", ("lazy_update", "beta1", "beta2", "epsilon"), True, 1),
    "adamw": ("mxnet.optimizer.adamW", "AdamW", ("beta1", "beta2", "epsilon", "correct_bias"), True, 4),
    "rmsprop": ("mxnet.optimizer.rmsprop", "RMSProp", ("rho", "momentum", "centered", "epsilon", "clip_weights"),
                True, 1),
    "adagrad": ("mxnet.optimizer.adagrad", "AdaGrad", ("epsilon",), True, 1),
    "adadelta": ("mxnet.optimizer.adadelta", "AdaDelta", ("rho", "epsilon"), False, 1),
    "lamb": ("mxnet.optimizer.lamb", "LAMB", ("beta1", "beta2", "epsilon", "lower_bound", "upper_bound",
                                              "bias_correction"), True, 4),
}
MX_SCHEDULERS = ("FactorScheduler", "MultiFactorScheduler", "PolyScheduler", "CosineScheduler")
_ARRAY_GLOBALS = {("mxnet.ndarray.ndarray", "NDArray"), ("mxnet.numpy", "ndarray"),
                  ("mxnet.numpy.multiarray", "ndarray")}
_NDARRAY = ("mxnet.ndarray.ndarray", "NDArray")


class Record:
    """An MXNet object read from a file: its class path and attribute dict (inert)."""

    path: tuple = ("", "")

    def __init__(self, *args: Any) -> None:
        self.state: dict = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"{'.'.join(self.path)}: expected an attribute dict, got "
                                         f"{type(state).__name__}")
        self.state = state


class Array:
    """An MXNet NDArray read from a file (its value as numpy in `.value`)."""

    def __init__(self, handle: Any = None) -> None:
        self.value = None

    def __setstate__(self, state: Any) -> None:
        raw = state.get("handle") if isinstance(state, dict) else None
        if not isinstance(raw, (bytes, bytearray)):
            raise pickle.UnpicklingError("an MXNet NDArray without its raw bytes")
        self.value = serialization.read_raw_array(bytes(raw), "an MXNet NDArray in the states file")


class _Unpickler(pickle.Unpickler):
    def __init__(self, raw: bytes, source: str) -> None:
        super().__init__(io.BytesIO(raw))
        self._source = source
        self._records: dict[tuple, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("builtins", "bytearray"):
            return bytearray
        if (module, name) in _ARRAY_GLOBALS:
            return Array
        known = (module.startswith("mxnet.optimizer") and any(row[1] == name for row in MX_OPTIMIZERS.values())) \
            or (module == "mxnet.lr_scheduler" and name in MX_SCHEDULERS)
        if not known:
            raise pickle.UnpicklingError(
                f"{self._source}: refers to {module}.{name}, which an MXNet Trainer states file does not hold; "
                "it is not loaded (files are untrusted and only MXNet's optimizer, scheduler and array records "
                "are read)")
        rec = self._records.get((module, name))
        if rec is None:
            rec = self._records[(module, name)] = type(name, (Record,), {"path": (module, name)})
        return rec


def read(raw: bytes, source: str = "<bytes>") -> tuple[dict, Any]:
    """(states, optimizer record or None): states maps index -> numpy array, tuple or None."""
    try:
        obj = _Unpickler(raw, source).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            struct.error) as exc:
        raise serialization.FormatError(f"{source}: not an MXNet Trainer states file ({exc})") from None
    opt = None
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], dict):
        obj, opt = obj
        if not isinstance(opt, Record):
            raise serialization.FormatError(f"{source}: not an MXNet Trainer states file (the optimizer is a "
                                            f"{type(opt).__name__})")
    if not isinstance(obj, dict):
        raise serialization.FormatError(f"{source}: not an MXNet Trainer states file (it holds a "
                                        f"{type(obj).__name__}, not a dict of states)")
    return {k: _plain(v, source) for k, v in obj.items()}, opt


def _plain(v: Any, source: str) -> Any:
    if v is None:
        return None
    if isinstance(v, Array):
        return v.value
    if isinstance(v, (tuple, list)):
        return tuple(_plain(x, source) for x in v)
    raise serialization.FormatError(f"{source}: not an MXNet Trainer states file (a state is a {type(v).__name__}, "
                                    "not arrays)")


# ---- writing: pickle protocol 4 opcodes, MXNet classes named by GLOBAL ------------------
class Global:
    """An object to write as `module.name`: NEWOBJ then BUILD(state), or, for arrays,
    REDUCE(None) then BUILD({'handle': bytearray})."""

    def __init__(self, module: str, name: str, state: dict, reduce_none: bool = False) -> None:
        self.module, self.name, self.state, self.reduce_none = module, name, state, reduce_none


def mx_array(a: Any) -> Global:
    return Global(*_NDARRAY, {"handle": bytearray(serialization.raw_array_bytes(a))}, reduce_none=True)


def write(obj: Any) -> bytes:
    """`obj` (dicts, tuples, lists, str, numbers, bytes, bytearray, Global) as a pickle."""
    out = io.BytesIO()
    out.write(b"\x80\x04")
    _emit(out, obj)
    out.write(b".")
    return out.getvalue()


def _emit(out: io.BytesIO, v: Any) -> None:
    if v is None:
        out.write(b"N")
    elif v is True or v is False:
        out.write(b"\x88" if v else b"\x89")
    elif isinstance(v, int):
        if -(1 << 31) <= v < (1 << 31):
            out.write(b"J" + struct.pack("<i", v))
        else:
            b = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
            out.write(b"\x8a" + bytes([len(b)]) + b)
    elif isinstance(v, float):
        out.write(b"G" + struct.pack(">d", v))
    elif isinstance(v, str):
        b = v.encode("utf-8")
        out.write(b"X" + struct.pack("<I", len(b)) + b)
    elif isinstance(v, bytearray):
        out.write(b"cbuiltins\nbytearray\n")
        _emit(out, bytes(v))
        out.write(b"\x85R")
    elif isinstance(v, bytes):
        out.write(b"B" + struct.pack("<I", len(v)) + v)
    elif isinstance(v, tuple):
        out.write(b"(")
        for x in v:
            _emit(out, x)
        out.write(b"t")
    elif isinstance(v, list):
        out.write(b"](")
        for x in v:
            _emit(out, x)
        out.write(b"e")
    elif isinstance(v, dict):
        out.write(b"}(")
        for k, x in v.items():
            _emit(out, k)
            _emit(out, x)
        out.write(b"u")
    elif isinstance(v, Global):
        out.write(f"c{v.module}\n{v.name}\n".encode("utf-8"))
        out.write(b"N\x85R" if v.reduce_none else b")\x81")
        _emit(out, v.state)
        out.write(b"b")
    else:
        raise UnsupportedError(f"states file: cannot write a {type(v).__name__} ({v!r})")

