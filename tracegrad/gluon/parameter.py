"""Gluon `Parameter` and `Constant` (MXNet 2.x semantics).

A Parameter holds one live tracegrad ndarray (`data()`), with its gradient buffer attached
(`grad()`) unless `grad_req='null'`. Dims unknown at construction are -1 (0 is accepted as
1.x's spelling); a Parameter with unknown dims and `allow_deferred_init=True` records its
initializer at `initialize()` and is created when the first forward fills its shape
(deferred initialization). In-place updates (`set_data`, an optimizer writing
`data()[...]`) keep the array's identity, so compiled steps that read it see new values.

One device per Parameter: data parallelism goes through `tracegrad.distributed`.
`_fresh_grad` is the data array's flag: set by backward, cleared by Trainer after an update.
"""

from __future__ import annotations

import warnings
from typing import Any, Optional

import numpy

from .. import autograd
from .. import device as _device
from .. import initializer
from .. import np as _np
from ..errors import TracegradError, UnsupportedError

__all__ = ["Parameter", "Constant", "DeferredInitializationError", "ParameterNotInitializedError", "tensor_types"]

_GRAD_REQS = ("write", "add", "null")


class DeferredInitializationError(TracegradError, RuntimeError):
    """A Parameter's data was asked for before the first forward pass filled its shape."""


class ParameterNotInitializedError(TracegradError, RuntimeError):
    """A Parameter's data was asked for before `initialize()`."""


def _shape(shape: Any) -> Optional[tuple]:
    if shape is None:
        return None
    if isinstance(shape, (int, numpy.integer)):
        shape = (shape,)
    return tuple(-1 if int(d) in (0, -1) else int(d) for d in shape)


def _known(shape: Optional[tuple]) -> bool:
    return shape is not None and all(d > 0 for d in shape)


def _dtype_name(dtype: Any) -> Any:
    """A dtype as given (MXNet keeps strings), numpy types normalised to their names."""
    if dtype is None or isinstance(dtype, str):
        return dtype
    return numpy.dtype(getattr(dtype, "dtype", dtype)).name


def _devices(device: Any) -> _device.Device:
    if isinstance(device, (list, tuple)):
        if len(device) != 1:
            raise UnsupportedError(
                f"a Parameter lives on one device; got {len(device)} devices {list(device)}. "
                "For data parallel training use tracegrad.distributed (one process per device)"
            )
        device = device[0]
    return _device.as_device(device)


class Parameter:
    """A weight of a Block: shape (unknown dims -1 until deferred init), dtype, initializer,
    grad_req ('write' | 'add' | 'null'), lr_mult and wd_mult for the optimizer."""

    def __init__(self, name: str = "weight", grad_req: str = "write", shape: Any = None, dtype: Any = "float32",
                 lr_mult: float = 1.0, wd_mult: float = 1.0, init: Any = None, allow_deferred_init: bool = False,
                 differentiable: bool = True, stype: str = "default", grad_stype: str = "default") -> None:
        if stype != "default" or grad_stype != "default":
            raise UnsupportedError(f"Parameter {name!r}: sparse storage ({stype!r}/{grad_stype!r}) is not supported; "
                                   "use stype='default'")
        self._name = name
        self._shape = _shape(shape)
        self._dtype = _dtype_name(dtype)
        self.lr_mult = lr_mult
        self.wd_mult = wd_mult
        self.init = init
        self._allow_deferred_init = allow_deferred_init
        self._differentiable = differentiable
        if not differentiable:
            grad_req = "null"
        self._check_req(grad_req)
        self._grad_req = grad_req
        self._data: Any = None
        self._device: Optional[_device.Device] = None
        self._deferred_init: tuple = ()
        self._structure: Optional[str] = None  # 1.x prefixed name, set by the owning Block
        self._stype = stype
        self._grad_stype = grad_stype

    # ---- facts ------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"Parameter (shape={self.shape}, dtype={self.dtype})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def shape(self) -> Optional[tuple]:
        return self._shape

    @shape.setter
    def shape(self, new: Any) -> None:
        new = _shape(new)
        old = self._shape
        if old is None or new is None:
            self._shape = new
            return
        ok = len(old) == len(new) and all(o in (-1, n) for o, n in zip(old, new))
        if not ok:
            raise ValueError(f"Expected shape {new} is incompatible with given shape {old} for Parameter "
                             f"{self.name!r}")
        self._shape = new

    @property
    def dtype(self) -> Any:
        return self._dtype

    @dtype.setter
    def dtype(self, dtype: Any) -> None:
        self.cast(dtype)

    @property
    def grad_req(self) -> str:
        return self._grad_req

    @grad_req.setter
    def grad_req(self, req: str) -> None:
        self._check_req(req)
        if not self._differentiable:
            req = "null"
        if req == self._grad_req:
            return
        self._grad_req = req
        if self._data is None:
            return
        if req == "null":
            if self._data.grad is not None:
                self._data.drop_grad()
        else:
            self._data.attach_grad(req)

    @property
    def stype(self) -> str:
        return self._stype

    def _check_req(self, req: str) -> None:
        if req not in _GRAD_REQS:
            raise ValueError(f"Parameter {self.name!r}: grad_req must be one of 'write', 'add', 'null', got {req!r}")

    @property
    def _fresh_grad(self) -> bool:
        """Whether backward wrote the gradient since the last update (the array's flag)."""
        return self._data is not None and self._data.grad is not None and bool(self._data._fresh_grad)

    @_fresh_grad.setter
    def _fresh_grad(self, value: bool) -> None:
        if self._data is not None:
            self._data._fresh_grad = value

    # ---- initialization ---------------------------------------------------------------
    def initialize(self, init: Any = None, device: Any = None, default_init: Any = None,
                   force_reinit: bool = False, ctx: Any = None) -> None:
        """Create the data with `init` (else this Parameter's own init, else `default_init`,
        else Uniform(-0.07, 0.07)); deferred until the first forward when the shape is unknown."""
        if default_init is None:
            default_init = initializer.Uniform()
        device = ctx if device is None else device
        if self._data is not None and not force_reinit:
            warnings.warn(f"Parameter {self.name!r} is already initialized, ignoring. Set force_reinit=True "
                          "to re-initialize.", stacklevel=2)
            return
        self._data = None
        if init is None:
            init = default_init if self.init is None else self.init
        dev = _devices(device)
        if not _known(self._shape):
            if self._allow_deferred_init:
                self._deferred_init = (init, dev, default_init, None)
                return
            raise ValueError(f"Cannot initialize Parameter {self.name!r} because it has invalid shape: "
                             f"{self._shape}. Give the Block its input size (in_units, in_channels, ...)")
        self._deferred_init = (init, dev, default_init, None)
        self._finish_deferred_init()

    def _finish_deferred_init(self) -> None:
        """Create the data now that the shape is known (called by the Block's first forward)."""
        if not self._deferred_init:
            return
        init, dev, default_init, data = self._deferred_init
        if not _known(self._shape):
            raise DeferredInitializationError(
                f"Cannot initialize Parameter {self.name!r} because it has invalid shape: {self._shape}. "
                "Please specify in_units, in_channels, etc for `Block`s.")
        self._deferred_init = ()
        with autograd.pause():
            if data is None:
                data = _np.zeros(self._shape, dtype=self._np_dtype())
                initializer.create(default_init)(initializer.InitDesc(self.name, {"__init__": init}), data)
            self._init_impl(data, dev)

    def _np_dtype(self) -> numpy.dtype:
        return numpy.dtype(self._dtype or "float32")

    def _init_impl(self, data: Any, dev: _device.Device) -> None:
        data = _np.array(data.asnumpy() if hasattr(data, "asnumpy") else data, dtype=self._np_dtype())
        self._device = dev
        if dev.is_gpu:
            data = data.to_device(dev)
        if self._grad_req != "null":
            data.attach_grad(self._grad_req)
        self._data = data

    def _load_init(self, value: Any, device: Any = None, cast_dtype: bool = False,
                   dtype_source: str = "current") -> None:
        """Set (or create, when uninitialized) the data from a loaded array."""
        value = numpy.asarray(value.asnumpy() if hasattr(value, "asnumpy") else value)
        if self._shape is not None:
            if len(self._shape) != value.ndim or any(d not in (-1, v) for d, v in zip(self._shape, value.shape)):
                raise ValueError(f"Failed loading Parameter {self.name!r} from saved params: shape incompatible "
                                 f"expected {self._shape} vs saved {value.shape}")
        self._shape = tuple(value.shape)
        if cast_dtype:
            if dtype_source == "saved":
                self._dtype = value.dtype.name
            value = value.astype(self._np_dtype(), copy=False)
        elif value.dtype != self._np_dtype():
            raise TypeError(f"Failed loading Parameter {self.name!r} from saved params: dtype incompatible "
                            f"expected {self._dtype} vs saved {value.dtype}. Set cast_dtype=True to cast the "
                            "dtype of saved params.")
        if self._data is not None:
            self.set_data(value)
            return
        dev = self._deferred_init[1] if self._deferred_init else _devices(device)
        self._deferred_init = ()
        self._init_impl(value, dev)

    # ---- data and gradient ------------------------------------------------------------
    def _check_initialized(self) -> None:
        if self._data is not None:
            return
        if self._deferred_init:
            raise DeferredInitializationError(
                f"Parameter {self.name!r} has not been initialized yet because initialization was deferred. "
                "Actual initialization happens during the first forward pass. Please pass one batch of data "
                "through the network before accessing Parameters.")
        raise ParameterNotInitializedError(
            f"Parameter {self.name!r} has not been initialized. Call net.initialize() (or "
            "param.initialize()) first; create the Trainer with net.collect_params().")

    def data(self, device: Any = None, ctx: Any = None) -> Any:
        """The live array (the one autograd and the optimizer write)."""
        self._check_initialized()
        return self._data

    def list_data(self) -> list:
        self._check_initialized()
        return [self._data]

    def grad(self, device: Any = None, ctx: Any = None) -> Any:
        """The live gradient buffer (the same array on every call until re-initialization)."""
        self._check_initialized()
        if self._data.grad is None:
            raise RuntimeError(f"Cannot get gradient array for Parameter {self.name!r} because grad_req='null'")
        return self._data.grad

    def list_grad(self) -> list:
        return [self.grad()]

    def list_ctx(self) -> list:
        """The devices the data lives on (one)."""
        if self._data is None:
            if self._deferred_init:
                return [self._deferred_init[1]]
            raise ParameterNotInitializedError(f"Parameter {self.name!r} has not been initialized")
        return [self._device]

    list_device = list_ctx

    def set_data(self, data: Any) -> None:
        """Copy `data` into the live array (identity kept); sets the shape of a deferred one."""
        if self._data is None:
            if self._deferred_init:
                value = numpy.asarray(data.asnumpy() if hasattr(data, "asnumpy") else data)
                self.shape = value.shape
                init, dev, default_init, _ = self._deferred_init
                self._deferred_init = (init, dev, default_init, value)
                self._finish_deferred_init()
                return
            self._check_initialized()
        value = data.asnumpy() if hasattr(data, "asnumpy") else numpy.asarray(data)
        if tuple(numpy.shape(value)) != tuple(self._data.shape):
            raise ValueError(f"set_data: Parameter {self.name!r} has shape {self._data.shape}, got data of "
                             f"shape {numpy.shape(value)}")
        with autograd.pause():
            self._data[...] = value

    def zero_grad(self) -> None:
        """Set the gradient buffer to zeros (in place)."""
        if self._data is None or self._data.grad is None:
            return
        with autograd.pause():
            self._data.grad[...] = 0

    def reset_ctx(self, ctx: Any) -> None:
        """Move the data (and a fresh gradient buffer) to another device."""
        dev = _devices(ctx)
        if self._data is None:
            if self._deferred_init:
                init, _, default_init, data = self._deferred_init
                self._deferred_init = (init, dev, default_init, data)
                return
            raise ValueError(f"Cannot reset context for Parameter {self.name!r} because it has not been initialized.")
        self._init_impl(self._data.to_device(_device.CPU).asnumpy(), dev)

    reset_device = reset_ctx

    def cast(self, dtype: Any) -> None:
        """Change the dtype of the data (a new array; gradients reset)."""
        self._dtype = _dtype_name(dtype)
        if self._data is None:
            return
        with autograd.pause():
            value = self._data.asnumpy().astype(self._np_dtype())
        self._init_impl(value, self._device)

    def var(self) -> Any:
        raise UnsupportedError(f"Parameter {self.name!r}: symbols are not supported (no mx.sym); "
                               "hybridize() compiles the imperative forward instead")

    def row_sparse_data(self, row_id: Any) -> Any:
        raise UnsupportedError("row_sparse_data: sparse parameters are not supported")

    def _reduce(self) -> Any:
        """The data as a host numpy array (what save_parameters writes)."""
        self._check_initialized()
        return self._data.asnumpy()


class Constant(Parameter):
    """A parameter that holds a fixed array (grad_req 'null'; Trainer skips it)."""

    def __init__(self, value: Any) -> None:
        if not isinstance(value, tensor_types()):
            value = _np.array(value)
        self.value = value
        super().__init__(name="const", grad_req="null", shape=value.shape, dtype=numpy.dtype(value.dtype).name,
                         init=initializer.Constant(self.value.asnumpy()))

    def __repr__(self) -> str:
        return f"Constant (shape={self.shape}, dtype={self.dtype})"

    @property
    def grad_req(self) -> str:
        return "null"

    @grad_req.setter
    def grad_req(self, req: str) -> None:
        if req != "null":
            warnings.warn(f"Constant parameter {self.name!r} does not support grad_req other than 'null'; "
                          f"{req!r} ignored", stacklevel=2)


def tensor_types() -> tuple:
    """The array classes a Block treats as data (MXNet's `tensor_types`)."""
    from ..ndarray import ndarray

    return (ndarray,)

