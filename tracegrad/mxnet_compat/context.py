"""`mxnet.context` / `mxnet.device`: devices with MXNet's names (Context is Device)."""

from __future__ import annotations

from typing import Any

from .. import device as _device

Device = _device.Device
Context = _device.Device
cpu = _device.cpu
gpu = _device.gpu
num_gpus = _device.num_gpus
current_device = _device.current_device
current_context = _device.current_device


def cpu_pinned(device_id: int = 0) -> Device:
    """Pinned host memory is plain host memory here: cpu()."""
    return _device.cpu(device_id)


def gpu_memory_info(device_id: int = 0) -> Any:
    from ..errors import UnsupportedError

    raise UnsupportedError("gpu_memory_info is not provided; query the GPU with numba.cuda")


__all__ = ["Device", "Context", "cpu", "gpu", "cpu_pinned", "num_gpus", "current_device", "current_context"]
