"""`tracegrad.ndarray`: the array users hold, with the MXNet numpy-interface methods."""

from __future__ import annotations

import warnings
from typing import Any

import numpy

from . import device as _device
from . import np as _np
from .errors import InPlaceError, IN_PLACE, ShapeError
from .ir import dtypes
from .tracer import array as _array
from .tracer.array import Array
from .tracer.lazy import materialize
from .tracer.hooks import hooks
from .tracer.state import STATE


class DType:
    """A dtype as MXNet shows it: prints `float32`, compares equal to numpy's dtypes."""

    __slots__ = ("_np",)

    def __init__(self, dt: numpy.dtype) -> None:
        self._np = numpy.dtype(dt)

    @property
    def dtype(self) -> numpy.dtype:  # lets numpy.dtype(DType) work
        return self._np

    def __repr__(self) -> str:
        return self._np.name

    __str__ = __repr__

    def __eq__(self, other: Any) -> bool:
        try:
            return self._np == numpy.dtype(getattr(other, "_np", other))
        except TypeError:
            return False

    def __hash__(self) -> int:
        return hash(self._np)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._np, name)


_DTYPES = {dt: DType(dt) for dt in dtypes.SUPPORTED}


def _format(v: numpy.ndarray) -> str:
    body = numpy.array2string(v, separator=", ", prefix="array(")
    suffix = "" if v.dtype in (dtypes.float32, dtypes.bool_) else f", dtype={v.dtype.name}"
    return f"array({body}{suffix})"


class ndarray(Array):
    """An n-dimensional array with MXNet's autograd methods (attach_grad, backward, grad)."""

    __slots__ = ()

    # ---- facts -----------------------------------------------------------------------
    @property
    def dtype(self) -> DType:
        return _DTYPES.get(self._dtype) or DType(self._dtype)

    @property
    def T(self) -> "ndarray":
        if self.ndim != 2:
            warnings.warn(f"x.T on an array of {self.ndim} dims reverses all axes", stacklevel=2)
        return _np.transpose(self)

    @property
    def device(self) -> "_device.Device":
        """The device this array lives on: cpu(0) or gpu(i)."""
        return _device.array_device(self)

    ctx = context = device

    def to_device(self, device: Any) -> "ndarray":
        """This array on `device` (itself when it is there; else a copy, not recorded)."""
        return _device.place(self, device)

    def as_in_ctx(self, ctx: Any) -> "ndarray":
        """MXNet's name of `to_device`."""
        return _device.place(self, ctx)

    as_in_context = as_in_ctx

    @property
    def __cuda_array_interface__(self) -> dict:
        """Zero-copy export of GPU data (CuPy, PyTorch); CPU arrays have none."""
        if not _device.array_device(self).is_gpu:
            raise AttributeError("a CPU array has no __cuda_array_interface__ (use x.to_device(npx.gpu()))")
        materialize([self])
        return self._data.__cuda_array_interface__

    def __len__(self) -> int:
        if not self._shape:
            raise TypeError("len() of unsized object")
        return self._shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return _format(self._value())

    def __str__(self) -> str:
        return str(self._value())

    def __format__(self, spec: str) -> str:
        if self.size == 1 and spec:
            return format(self._value().reshape(()).item(), spec)
        return str(self)

    def __hash__(self) -> int:
        return id(self)

    # ---- conversions -----------------------------------------------------------------
    def astype(self, dtype: Any, copy: bool = True) -> "ndarray":
        from .np._core import cast, to_dtype

        out = cast(self, to_dtype(dtype))
        if out is self and copy:
            return self.copy()
        return out

    def copy(self) -> "ndarray":
        """A deep copy (recorded as an identity op when recording)."""
        if self._in_graph and STATE.recording:
            return _np.multiply(self, 1)
        out = hooks().on_copy(self)  # jit (issue 4): a traced copy
        if out is not None:
            return out
        if _device.array_device(self).is_gpu:  # a device-to-device copy (issue 5)
            materialize([self])
            return type(self)._wrap(_device.gpu_copy(self._data, self._dev))
        return type(self)._wrap(numpy.array(self._value(), copy=True))

    def copyto(self, other: Any) -> Any:
        if isinstance(other, Array):
            if other is self:
                warnings.warn("copyto: copying an array onto itself", stacklevel=2)
                return False
            other[...] = self
            return other
        if isinstance(other, (_device.Device, str)):  # MXNet: copyto(ctx) gives a new array there
            dev = _device.as_device(other)
            return self.copy() if dev == self.device else _device.place(self, dev)
        return self.copy()

    def as_np_ndarray(self) -> "ndarray":
        return self

    def as_nd_ndarray(self) -> "ndarray":
        return self

    def asscalar(self) -> Any:
        raise AttributeError("'ndarray' object has no attribute 'asscalar' (use item())")

    def tolist(self) -> Any:
        return self._value().tolist()

    def wait_to_read(self) -> None:
        """Compute the value now (on a GPU: launch and wait for the device, no host copy)."""
        if _device.array_device(self).is_gpu:
            materialize([self])
            _device.synchronize()
            return
        self._value()

    # ---- shape methods ---------------------------------------------------------------
    def reshape(self, *shape: Any, **kw: Any) -> "ndarray":
        if len(shape) == 1 and not isinstance(shape[0], (int, numpy.integer)):
            shape = tuple(shape[0])
        return _np.reshape(self, shape)

    def transpose(self, *axes: Any) -> "ndarray":
        if len(axes) == 1 and not isinstance(axes[0], (int, numpy.integer)):
            axes = tuple(axes[0]) if axes[0] is not None else ()
        return _np.transpose(self, axes or None)

    def swapaxes(self, a: int, b: int) -> "ndarray":
        return _np.swapaxes(self, a, b)

    def flatten(self) -> "ndarray":
        return _np.ravel(self)

    ravel = flatten

    def squeeze(self, axis: Any = None) -> "ndarray":
        return _np.squeeze(self, axis)

    def expand_dims(self, axis: int) -> "ndarray":
        return _np.expand_dims(self, axis)

    def broadcast_to(self, shape: Any) -> "ndarray":
        return _np.broadcast_to(self, shape)

    def repeat(self, repeats: int, axis: Any = None) -> "ndarray":
        return _np.repeat(self, repeats, axis)

    def take(self, indices: Any, axis: Any = None, mode: str = "raise") -> "ndarray":
        return _np.take(self, indices, axis, mode)

    # ---- reductions ------------------------------------------------------------------
    def sum(self, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> "ndarray":
        return _np.sum(self, axis, dtype, keepdims)

    def mean(self, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> "ndarray":
        return _np.mean(self, axis, dtype, keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> "ndarray":
        return _np.max(self, axis, keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> "ndarray":
        return _np.min(self, axis, keepdims)

    def prod(self, axis: Any = None, keepdims: bool = False) -> "ndarray":
        return _np.prod(self, axis, keepdims)

    def var(self, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> "ndarray":
        return _np.var(self, axis, ddof, keepdims)

    def std(self, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> "ndarray":
        return _np.std(self, axis, ddof, keepdims)

    def argmax(self, axis: Any = None, keepdims: bool = False) -> "ndarray":
        return _np.argmax(self, axis, keepdims)

    def argmin(self, axis: Any = None, keepdims: bool = False) -> "ndarray":
        return _np.argmin(self, axis, keepdims)

    def clip(self, a_min: Any = None, a_max: Any = None) -> "ndarray":
        return _np.clip(self, a_min, a_max)

    def dot(self, b: Any) -> "ndarray":
        return _np.dot(self, b)

    def abs(self) -> "ndarray":
        return _np.abs(self)

    def exp(self) -> "ndarray":
        return _np.exp(self)

    def log(self) -> "ndarray":
        return _np.log(self)

    def sqrt(self) -> "ndarray":
        return _np.sqrt(self)

    def any(self) -> "ndarray":
        return _np.greater(_np.sum(_np.not_equal(self, 0)), 0)

    def all(self) -> "ndarray":
        return _np.equal(_np.sum(_np.equal(self, 0)), 0)

    # ---- indexing --------------------------------------------------------------------
    def __getitem__(self, key: Any) -> "ndarray":
        return _np.indexing.getitem(self, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        _np.indexing.setitem(self, key, value)

    # ---- arithmetic ------------------------------------------------------------------
    def __add__(self, o: Any) -> "ndarray":
        return _np.add(self, o)

    def __radd__(self, o: Any) -> "ndarray":
        return _np.add(o, self)

    def __sub__(self, o: Any) -> "ndarray":
        return _np.subtract(self, o)

    def __rsub__(self, o: Any) -> "ndarray":
        return _np.subtract(o, self)

    def __mul__(self, o: Any) -> "ndarray":
        return _np.multiply(self, o)

    def __rmul__(self, o: Any) -> "ndarray":
        return _np.multiply(o, self)

    def __truediv__(self, o: Any) -> "ndarray":
        return _np.divide(self, o)

    def __rtruediv__(self, o: Any) -> "ndarray":
        return _np.divide(o, self)

    def __pow__(self, o: Any) -> "ndarray":
        return _np.power(self, o)

    def __rpow__(self, o: Any) -> "ndarray":
        return _np.power(o, self)

    def __matmul__(self, o: Any) -> "ndarray":
        return _np.matmul(self, o)

    def __rmatmul__(self, o: Any) -> "ndarray":
        return _np.matmul(o, self)

    def __neg__(self) -> "ndarray":
        return _np.negative(self)

    def __pos__(self) -> "ndarray":
        return self

    def __abs__(self) -> "ndarray":
        return _np.abs(self)

    def __eq__(self, o: Any) -> "ndarray":  # type: ignore[override]
        return _np.equal(self, o)

    def __ne__(self, o: Any) -> "ndarray":  # type: ignore[override]
        return _np.not_equal(self, o)

    def __lt__(self, o: Any) -> "ndarray":
        return _np.less(self, o)

    def __le__(self, o: Any) -> "ndarray":
        return _np.less_equal(self, o)

    def __gt__(self, o: Any) -> "ndarray":
        return _np.greater(self, o)

    def __ge__(self, o: Any) -> "ndarray":
        return _np.greater_equal(self, o)

    def __invert__(self) -> "ndarray":
        return _np.logical_not(self)

    def __and__(self, o: Any) -> "ndarray":
        return _np.logical_and(self, o)

    def __or__(self, o: Any) -> "ndarray":
        return _np.logical_or(self, o)

    # ---- in-place arithmetic: outside record() only (MXNet) --------------------------
    def _inplace(self, fn: Any, o: Any, ufunc: Any = None) -> "ndarray":
        if STATE.recording and self._in_graph:
            raise InPlaceError(IN_PLACE)
        out = hooks().on_inplace(self, fn, o)  # jit (issue 4): a new version of self
        if out is not None:
            return out
        if ufunc is not None and self._write_in_place(ufunc, o):
            return self
        result = fn(self, o)
        if tuple(result.shape) != tuple(self._shape):
            from .np._core import at

            raise ShapeError(
                f"in-place {fn.__name__}: a result of shape {tuple(result.shape)} cannot be written "
                f"into an array of shape {self._shape}" + at()
            )
        self._prepare_write()
        if _device.array_device(self).is_gpu:  # device hook (issue 5): a device-to-device copy
            from .np._core import cast

            result = cast(result, self._dtype)
            materialize([result])
            self._data.copy_to_device(result._data)
            return self
        self._data[...] = result._value().astype(self._dtype, copy=False)
        return self

    def _write_in_place(self, ufunc: Any, o: Any) -> bool:
        """`self = ufunc(self, o)` straight into this float array's CPU buffer, when `o` is a
        Python number or a concrete array of the same shape and dtype (the hand-written
        update `p -= lr * p.grad`): one pass, no temporary. False: take the general path."""
        if self._dev is not None or self._data is None or self._dtype.kind != "f":
            return False
        t = type(o)
        if t is float or t is int:
            other = o
        elif (
            isinstance(o, Array) and o._data is not None and o._dev is None
            and o._shape == self._shape and o._dtype == self._dtype
        ):
            other = o._data
        else:
            return False
        self._prepare_write()
        with numpy.errstate(all="ignore"):  # the op table's policy: IEEE results, no warnings
            ufunc(self._data, other, out=self._data)
        return True

    def __iadd__(self, o: Any) -> "ndarray":
        return self._inplace(_np.add, o, numpy.add)

    def __isub__(self, o: Any) -> "ndarray":
        return self._inplace(_np.subtract, o, numpy.subtract)

    def __imul__(self, o: Any) -> "ndarray":
        return self._inplace(_np.multiply, o, numpy.multiply)

    def __itruediv__(self, o: Any) -> "ndarray":
        return self._inplace(_np.divide, o, numpy.true_divide)


_array.register_surface(ndarray)
