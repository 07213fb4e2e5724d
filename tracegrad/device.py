"""Devices, MXNet style: `npx.cpu()`, `npx.gpu(i)`, `npx.num_gpus()`, the current device.

An array lives on one device. CPU arrays hold numpy data; GPU arrays hold numba-cuda device
arrays (they interoperate with CuPy/PyTorch through `__cuda_array_interface__` on a real
GPU; Numba's simulator, `NUMBA_ENABLE_CUDASIM=1`, has no such interface). numba-cuda is
imported only when a GPU is first asked for, so `import tracegrad` stays fast.

Operands of one op must live on one device (`DeviceError` otherwise). Host constants that
the numpy interface wraps implicitly (Python scalars, numpy arrays passed as operands) are
*unplaced*: they follow the device of the op's other operands.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import Any, Optional

import numpy

from .errors import TracegradError

log = logging.getLogger("tracegrad.device")

INSTALL_HINT = (
    "CUDA support needs numba-cuda and an NVIDIA GPU with its driver: "
    "`pip install tracegrad[cuda]` (numba-cuda==0.30.4; numpy stays below 2.5), then run on a "
    "machine with a GPU, or set NUMBA_ENABLE_CUDASIM=1 before starting Python to use Numba's "
    "(slow) CUDA simulator"
)


class DeviceError(TracegradError, RuntimeError):
    """A device that does not exist was asked for, or one op mixed devices."""


class Device:
    """A device: `cpu(0)` or `gpu(i)`. Compares by kind and id; usable as a `with` block."""

    __slots__ = ("device_type", "device_id", "_saved")

    def __init__(self, device_type: str, device_id: int = 0) -> None:
        if device_type not in ("cpu", "gpu"):
            raise DeviceError(f"unknown device type {device_type!r}; use 'cpu' or 'gpu'")
        self.device_type = device_type
        self.device_id = int(device_id)
        self._saved: list[Device] = []

    @property
    def is_gpu(self) -> bool:
        return self.device_type == "gpu"

    def __repr__(self) -> str:
        return f"{self.device_type}({self.device_id})"

    __str__ = __repr__

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, str):
            return str(self) == other.replace(" ", "")
        return (
            isinstance(other, Device)
            and other.device_type == self.device_type
            and other.device_id == self.device_id
        )

    def __hash__(self) -> int:
        return hash((self.device_type, self.device_id))

    def __enter__(self) -> "Device":
        self._saved.append(current_device())
        _CURRENT.device = self
        return self

    def __exit__(self, *exc: Any) -> None:
        _CURRENT.device = self._saved.pop()

    # MXNet's Context spelling
    @property
    def device_typeid(self) -> int:
        return 1 if self.device_type == "cpu" else 2


CPU = Device("cpu", 0)


class _Current(threading.local):
    def __init__(self) -> None:
        self.device: Device = CPU


_CURRENT = _Current()

# The device-array classes, filled when numba.cuda is first loaded (empty before: a cheap
# isinstance that is always False on CPU-only runs).
DEVICE_TYPES: tuple = ()
_cuda: Any = None
_cuda_error: Optional[str] = None


def simulator_enabled() -> bool:
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "") not in ("", "0")


def cuda_module() -> Any:
    """numba.cuda, imported on first use; raises DeviceError when CUDA cannot be used."""
    global _cuda, _cuda_error, DEVICE_TYPES
    if _cuda is not None:
        return _cuda
    if _cuda_error is not None:
        raise DeviceError(_cuda_error)
    try:
        from numba import cuda
    except Exception as exc:  # ImportError, or a broken CUDA toolkit
        _cuda_error = f"numba.cuda cannot be imported ({type(exc).__name__}: {exc}). {INSTALL_HINT}"
        raise DeviceError(_cuda_error) from None
    try:
        ok = bool(cuda.is_available())
    except Exception as exc:  # a driver that fails to initialise
        ok = False
        log.info("cuda.is_available() failed: %s", exc)
    if not ok:
        _cuda_error = f"no CUDA GPU is available to numba ({cuda.__name__}). {INSTALL_HINT}"
        raise DeviceError(_cuda_error)
    types = []
    if simulator_enabled():
        from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

        types.append(FakeCUDAArray)
        log.info("using Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1)")
    else:
        from numba.cuda.cudadrv.devicearray import DeviceNDArray

        types.append(DeviceNDArray)
    DEVICE_TYPES = tuple(types)
    _cuda = cuda
    return cuda


def num_gpus() -> int:
    """How many GPUs numba-cuda sees (0 without numba-cuda or a driver; 1 in the simulator)."""
    try:
        cuda = cuda_module()
    except DeviceError:
        return 0
    try:
        return len(cuda.gpus)
    except Exception:  # the simulator's device list
        return 1


def cpu(device_id: int = 0) -> Device:
    """The CPU (MXNet: `mx.cpu()`); the id is accepted and ignored as in MXNet."""
    return Device("cpu", device_id)


def gpu(device_id: int = 0) -> Device:
    """GPU `device_id`; raises DeviceError (with install hints) when it does not exist."""
    n = num_gpus()
    if n == 0:
        cuda_module()  # raises the DeviceError that says why
    if not 0 <= int(device_id) < n:
        raise DeviceError(f"gpu({device_id}) does not exist: numba-cuda sees {n} GPU(s)")
    return Device("gpu", device_id)


def current_device() -> Device:
    """The device new arrays go to (`with npx.gpu(0):` changes it for the block)."""
    return _CURRENT.device


_DEVICE_STR = re.compile(r"^(cpu|gpu|cuda)(?:\((\d*)\)|:(\d+))?$")


def as_device(dev: Any) -> Device:
    """A Device from a Device, None (the current device) or a string: 'cpu', 'cpu(0)',
    'gpu(1)', 'gpu:1', 'cuda', 'cuda:0'."""
    if dev is None:
        return current_device()
    if isinstance(dev, Device):
        return dev
    if isinstance(dev, str):
        m = _DEVICE_STR.match(dev.strip().replace(" ", "").lower())
        if m:
            idx = int(m.group(2) or m.group(3) or 0)
            return cpu(idx) if m.group(1) == "cpu" else gpu(idx)
    raise DeviceError(f"not a device: {dev!r}; use npx.cpu() or npx.gpu(i)")


def is_device_array(x: Any) -> bool:
    """Whether `x` is a numba-cuda device array (False before CUDA was first used)."""
    return isinstance(x, DEVICE_TYPES)


def to_gpu(value: numpy.ndarray, dev: Device) -> Any:
    """A contiguous device copy of a host array on `dev`."""
    cuda = cuda_module()
    with _selected(cuda, dev):
        return cuda.to_device(numpy.ascontiguousarray(value))


def to_host(x: Any) -> numpy.ndarray:
    """A host copy of a device array (a sync point)."""
    return x.copy_to_host()


def gpu_zeros(shape: tuple[int, ...], dtype: numpy.dtype, dev: Device) -> Any:
    return to_gpu(numpy.zeros(shape, dtype), dev)


def gpu_copy(x: Any, dev: Device) -> Any:
    """A device-to-device copy (same shape and dtype)."""
    cuda = cuda_module()
    with _selected(cuda, dev):
        out = cuda.device_array(x.shape, x.dtype)
        out.copy_to_device(x)
    return out


class _NoSelect:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _selected(cuda: Any, dev: Device) -> Any:
    """A context that makes `dev` numba's current GPU (a no-op for gpu(0) and the simulator)."""
    if dev.device_id == 0 or simulator_enabled():
        return _NoSelect()
    return cuda.gpus[dev.device_id]


def default_gpu() -> Device:
    """The GPU that device arrays without a recorded device belong to."""
    cur = current_device()
    return cur if cur.is_gpu else Device("gpu", 0)


def check_operands(op_name: str, arrays: Any, user_line: Any) -> Optional[Device]:
    """The GPU all operands live on (None for CPU); DeviceError when devices are mixed.

    Unplaced host constants (`_dev is UNPLACED`) go with any device.
    """
    gpu_dev: Optional[Device] = None
    cpu_seen = False
    for a in arrays:
        d = a._dev
        if d is None:
            cpu_seen = True
        elif d is UNPLACED:
            continue
        elif gpu_dev is None:
            gpu_dev = d
        elif d != gpu_dev:
            gpu_dev = _mixed(op_name, arrays, user_line)
    if gpu_dev is not None and cpu_seen:
        _mixed(op_name, arrays, user_line)
    return gpu_dev


def _mixed(op_name: str, arrays: Any, user_line: Any) -> Device:
    devs = ", ".join(
        f"{a._dtype}{list(a.shape)} on {'cpu(0)' if a._dev is None else a._dev}"
        for a in arrays
        if a._dev is not UNPLACED
    )
    raise DeviceError(
        f"{op_name}: operands live on different devices ({devs}); move them to one device "
        f"first with x.to_device(dev) / x.as_in_ctx(dev)\n  (at {user_line()})"
    )


class _Unplaced:
    """Marks a host constant the numpy interface wrapped implicitly (it follows its peers)."""

    def __repr__(self) -> str:
        return "cpu(0)"

    is_gpu = False


UNPLACED = _Unplaced()

__all__ = [
    "Device", "DeviceError", "cpu", "gpu", "num_gpus", "current_device", "as_device",
    "is_device_array", "UNPLACED", "INSTALL_HINT",
]  # fmt: skip


def place(a: Any, dev: Any) -> Any:
    """`a` on device `dev` (the same array when it is there already; else a copy).

    The copy is not recorded: gradients do not flow across devices (a known limit).
    """
    dev = as_device(dev)
    here = a._dev
    if not dev.is_gpu:
        if here is None or here is UNPLACED:
            return a
        return type(a)._wrap(numpy.array(a._value(), copy=True))
    if here is not None and here is not UNPLACED and here == dev:
        return a
    out = type(a)._wrap(to_gpu(a._value(), dev))
    out._dev = dev
    return out


def synchronize() -> None:
    """Wait for the GPU's queued work (a no-op before CUDA is used)."""
    if _cuda is not None:
        _cuda.synchronize()


def array_device(a: Any) -> Device:
    """The Device an array lives on (unplaced host constants report cpu(0))."""
    d = a._dev
    return CPU if d is None or d is UNPLACED else d
