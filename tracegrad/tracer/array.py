"""The array core: a value or a recorded producer, graph membership, the gradient buffer.

The numpy-interface methods live on the surface subclass (`tracegrad.ndarray`); this class
holds only what the tracer needs, so the tracer never imports the API layer.
"""

from __future__ import annotations

import os
import weakref
from typing import Any, Optional

import numpy

from ..errors import NOT_IN_GRAPH, GradReqError, GraphError, InPlaceError, IN_PLACE
from ..ir.core import Lit
from ..ir.ops import Op
from .. import device as _dev_mod
from . import registry
from .backward import backward as _backward
from .hooks import hooks
from . import lazy as _lazy_mod  # by module: tests spy on lazy.materialize
from .eager import note_sync
from .state import STATE
from ..where import user_frame, user_line, user_line_long

ARRAY_CLS: type = None  # type: ignore[assignment]  # set by the surface layer (register_surface)

_GRAD_REQS = ("write", "add", "null")


class Guard:
    """A sync point seen while recording: the value read and the outcome Python saw."""

    __slots__ = ("array", "expect", "_where")

    def __init__(self, array: "Array", expect: Any, where: Any) -> None:
        self.array, self.expect, self._where = array, expect, where

    @property
    def where(self) -> str:
        """The user's `file:line` (kept as a (path, line) pair until read)."""
        w = self._where
        return w if isinstance(w, str) else f"{os.path.basename(w[0])}:{w[1]}"


class Array:
    __slots__ = (
        "_data",
        "_shape",
        "_dtype",
        "_prod",
        "_idx",
        "_in_graph",
        "_freed",
        "_grad",
        "_grad_req",
        "_users",
        "_root",
        "_dev",  # None: cpu(0); a tracegrad.device.Device for GPU data; UNPLACED constants
        "_grad_fresh",  # set by backward, cleared by gluon's Trainer (MXNet's _fresh_grad)
        "__weakref__",
    )
    __array_priority__ = 100.0

    # ---- construction ----------------------------------------------------------------
    @classmethod
    def _wrap(cls, data: numpy.ndarray, root: Optional["Array"] = None) -> "Array":
        a = cls.__new__(cls)
        a._data = data
        a._shape = data.shape
        a._dtype = data.dtype
        a._prod = None
        a._idx = 0
        a._in_graph = False
        a._freed = False
        a._grad = None
        a._grad_req = "null"
        a._users = None
        a._root = root
        a._dev = _device_of(data) if _dev_mod.DEVICE_TYPES else None
        if a._dev is not None:
            a._shape = tuple(data.shape)  # the simulator's shapes are not tuples
        if STATE.capture is not None:  # jit (issue 4): an array created inside a captured step
            STATE.capture.on_new(a)
        return a

    @classmethod
    def _lazy(cls, shape: tuple, dtype: numpy.dtype, prod: Any, idx: int, in_graph: bool) -> "Array":
        a = cls.__new__(cls)
        a._data = None
        a._shape = shape if type(shape) is tuple else tuple(shape)
        a._dtype = dtype if isinstance(dtype, numpy.dtype) else numpy.dtype(dtype)
        a._prod = prod
        a._idx = idx
        a._in_graph = in_graph
        a._freed = False
        a._grad = None
        a._grad_req = "null"
        a._users = None
        a._root = None
        a._dev = _lazy_device(prod) if _dev_mod.DEVICE_TYPES else None
        return a

    @classmethod
    def _computed(cls, data: numpy.ndarray, prod: Any) -> "Array":
        """The single output of recorded producer `prod`, its value `data` already computed."""
        a = cls.__new__(cls)
        a._data = data
        a._shape = data.shape
        a._dtype = data.dtype
        a._prod = prod
        a._idx = 0
        a._in_graph = True
        a._freed = False
        a._grad = None
        a._grad_req = "null"
        a._users = None
        a._root = None
        a._dev = _lazy_device(prod) if _dev_mod.DEVICE_TYPES else None
        return a

    def _set_value(self, value: numpy.ndarray) -> None:
        if self._dev is not None or _dev_mod.is_device_array(value):  # device hook (issue 5)
            self._data = _device_value(self, value)
        else:
            self._data = numpy.asarray(value, dtype=self._dtype).reshape(self._shape)
        if not self._in_graph:
            self._prod = None  # nothing can differentiate through it: let its inputs go

    def _add_user(self, user: "Array") -> None:
        root = self._root if self._root is not None else self
        users = root._users
        if users is None:
            # weak references in a list (a WeakSet would compare arrays with `==`); the dead
            # ones are dropped whenever the list reaches a power of two from 32 on
            root._users = [weakref.ref(user)]
            return
        users.append(weakref.ref(user))
        n = len(users)
        if n >= 32 and n & (n - 1) == 0:
            users[:] = [r for r in users if r() is not None]

    # ---- basic facts -----------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def size(self) -> int:
        n = 1
        for d in self._shape:
            n *= d
        return n

    def _value(self) -> numpy.ndarray:
        """The concrete value (computing it if it is lazy)."""
        if STATE.capture is not None:  # jit (issue 4): Python reads a value outside a sync point
            STATE.capture.on_host_read(self)
        if self._data is None:
            _lazy_mod.materialize([self])
        if self._dev is not None and _dev_mod.is_device_array(self._data):
            return _dev_mod.to_host(self._data).reshape(self._shape)  # GPU: a host copy
        return self._data

    # ---- sync points -----------------------------------------------------------------
    def _sync(self, expect_from: Any) -> Any:
        """Read a scalar for Python; while recording, log the outcome as a guard."""
        cap = STATE.capture
        if cap is not None:  # jit (issue 4): every sync point is a guard of the captured step
            cap.quiet += 1
            try:
                outcome = expect_from(self._value())
            finally:
                cap.quiet -= 1
            cap.on_guard(Guard(self, outcome, user_line()))
            return outcome
        if self._data is None:
            _lazy_mod.materialize(_lazy_mod.sync_targets(self))
        v = self._value()
        outcome = expect_from(v)
        if self._prod is not None and self._in_graph:
            STATE.guards.append(Guard(self, outcome, user_frame()))
            note_sync()
        return outcome

    def _scalar_value(self, what: str) -> numpy.ndarray:
        if self.size != 1:
            raise ValueError(
                f"The truth value of an array with more than one element is ambiguous "
                f"({what} of an array of shape {self._shape}); use .any() or .all()"
                if what == "bool"
                else f"only size-1 arrays can be converted to Python scalars ({what} of shape {self._shape})"
            )
        return self

    def __bool__(self) -> bool:
        self._scalar_value("bool")
        return self._sync(lambda v: bool(v.reshape(())))

    def __float__(self) -> float:
        self._scalar_value("float")
        return self._sync(lambda v: float(v.reshape(())))

    def __int__(self) -> int:
        self._scalar_value("int")
        return self._sync(lambda v: int(v.reshape(())))

    def __index__(self) -> int:
        if self._dtype.kind not in "iub":
            raise TypeError(f"only integer arrays can be used as an index, not {self._dtype}")
        self._scalar_value("index")
        return self._sync(lambda v: int(v.reshape(())))

    def item(self, *args: Any) -> Any:
        if args:
            return self._value().item(*args)
        self._scalar_value("item")
        return self._sync(lambda v: v.reshape(()).item())

    def asnumpy(self) -> numpy.ndarray:
        """A copy of the value as a numpy array."""
        return numpy.array(self._value(), copy=True)

    def __array__(self, dtype: Any = None, copy: Any = None) -> numpy.ndarray:
        v = self._value()
        return numpy.asarray(v, dtype=dtype) if dtype is not None else v

    # ---- autograd state --------------------------------------------------------------
    def attach_grad(self, grad_req: str = "write", stype: Any = None) -> None:
        """Allocate a zero gradient buffer and mark this array as a variable."""
        if grad_req not in _GRAD_REQS:
            raise GradReqError(f"attach_grad: grad_req {grad_req!r} is not one of {list(_GRAD_REQS)}\n  (at {user_line_long()})")
        _lazy_mod.check_dtype_for_grad(self, "attach_grad")
        if self._grad is not None and self._prod is not None and self._in_graph and not self._freed:
            raise GraphError(
                "The node has already been marked. Cannot mark it again. (attach_grad was already "
                "called on this recorded intermediate; its .grad is filled by backward)"
            )
        if self._dev is not None and self._dev is not _dev_mod.UNPLACED:  # a device-resident .grad
            self._grad = ARRAY_CLS._wrap(_dev_mod.gpu_zeros(self._shape, self._dtype, self._dev))
            self._grad._dev = self._dev
        else:
            self._grad = ARRAY_CLS._wrap(numpy.zeros(self._shape, self._dtype))
        self._grad_req = grad_req
        hooks().on_attach_grad(self)  # jit (issue 4): replayed for arrays from outside the step
        if self._prod is not None and self._in_graph and not self._freed:
            return  # MXNet 2.x: a recorded intermediate keeps its graph (retain-grad)
        if self._data is None:
            self._value()
        self._prod = None
        self._in_graph = True
        self._freed = False

    @property
    def grad(self) -> Optional["Array"]:
        return self._grad

    def drop_grad(self) -> None:
        if self._grad is None:
            raise GraphError("The node has empty out_grads already. Cannot DropGrads again.")
        self._grad = None
        self._grad_req = "null"
        if self._prod is None:
            self._in_graph = False

    @property
    def _fresh_grad(self) -> bool:
        """True when a backward wrote `.grad` since the flag was last cleared (MXNet's
        `_fresh_grad`; gluon's Trainer clears it after each update)."""
        return self._grad is not None and getattr(self, "_grad_fresh", False)

    @_fresh_grad.setter
    def _fresh_grad(self, value: bool) -> None:
        self._grad_fresh = bool(value)

    def detach(self) -> "Array":
        """The same values without autograd history (shares storage when concrete)."""
        out = hooks().on_detach(self)  # jit (issue 4): a traced stop_gradient
        if out is not None:
            return out
        if self._data is None:
            self._value()
        a = ARRAY_CLS._wrap(self._data, root=self._root if self._root is not None else self)
        return a

    def backward(self, out_grad: Any = None, retain_graph: bool = False, train_mode: bool = True) -> None:
        """Back-propagate from this array (as `self.sum()` when it has several elements)."""
        _backward([self], [out_grad], retain_graph=retain_graph, train_mode=train_mode)

    # ---- in-place writes -------------------------------------------------------------
    def _prepare_write(self) -> None:
        """Refuse writes that would corrupt a graph; compute lazy readers of the old value."""
        if STATE.recording and (self._in_graph or (self._root is not None and self._root._in_graph)):
            raise InPlaceError(IN_PLACE)
        if self._data is None:
            self._value()
        root = self._root if self._root is not None else self
        users = root._users
        if users:
            pending = list({id(u): u for u in (r() for r in users) if u is not None and u._data is None}.values())
            root._users = None
            if pending:
                pending = _freeze_old_value(root, pending)
            if pending:
                _lazy_mod.materialize(pending)

    def _check_graph(self) -> None:
        if not self._in_graph or self._freed:
            raise GraphError(NOT_IN_GRAPH)


registry.BASE = Array


def register_surface(cls: type) -> None:
    """Make `cls` (a subclass of Array) the class of every array ops return."""
    global ARRAY_CLS
    ARRAY_CLS = registry.CLS = cls


# ---- devices (issue 5): GPU arrays hold numba-cuda device arrays in _data --------------
def _device_of(data: Any) -> Any:
    return _dev_mod.default_gpu() if _dev_mod.is_device_array(data) else None


def _freeze_old_value(root: Array, pending: list) -> list:
    """Give lazy readers outside any graph a copy of the value about to be overwritten.

    A copy costs one pass over the written array; computing the reader now (the
    alternative) can cost a matmul, and is wasted when nobody reads it. Readers still in a
    graph are returned: they are computed before the write (their inputs keep identity).
    """
    if root._dev is not None and root._dev is not _dev_mod.UNPLACED:
        return pending  # device buffers: compute the readers instead
    snaps: dict[int, Array] = {}
    rest = []
    for u in pending:
        p = u._prod
        if p is None or u._in_graph or any(
            r is not None and r() is not None and r()._in_graph for r in p.outs
        ):
            rest.append(u)
            continue
        ins = []
        for x in p.ins:
            if type(x) is not Lit and (x is root or x._root is root):
                snap = snaps.get(id(x))
                if snap is None:
                    snap = snaps[id(x)] = ARRAY_CLS._wrap(numpy.array(x._data, copy=True))
                x = snap
            ins.append(x)
        p.ins = tuple(ins)
    return rest


def _lazy_device(prod: Any) -> Any:
    """A GPU operand's device; else cpu (None); values made of literals alone are unplaced."""
    dev = _dev_mod.UNPLACED
    for x in prod.ins:
        if type(x) is not Lit:
            d = x._dev
            if d is None:
                dev = None
            elif d is not _dev_mod.UNPLACED:
                return d
    return dev


def _device_value(a: "Array", value: Any) -> Any:
    """`value` as `a`'s data: device arrays for GPU arrays, numpy for CPU ones."""
    on_gpu = a._dev is not None and a._dev is not _dev_mod.UNPLACED
    if _dev_mod.is_device_array(value):
        if not on_gpu:
            return numpy.asarray(_dev_mod.to_host(value), dtype=a._dtype).reshape(a._shape)
        if tuple(value.shape) != a._shape:
            value = value.reshape(a._shape)
        return value
    value = numpy.asarray(value, dtype=a._dtype).reshape(a._shape)
    return _dev_mod.to_gpu(value, a._dev) if on_gpu else value


def as_lit_or_array(x: Any) -> Any:
    return x if isinstance(x, (Array, Lit)) else x


__all__ = ["Array", "Guard", "Op"]
