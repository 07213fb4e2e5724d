"""Batchify functions (MXNet 2.x `gluon.data.batchify`) for `DataLoader(batchify_fn=...)`:
Stack, Pad, Append, Group, AsList. They return tracegrad arrays, as MXNet's return mx.np
arrays (`use_shared_mem` is accepted: worker batches come back through the DataLoader)."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as _onp

from ... import np

__all__ = ["Stack", "Pad", "Append", "Group", "AsList"]


def _host(x: Any) -> _onp.ndarray:
    return x.asnumpy() if hasattr(x, "asnumpy") else _onp.asarray(x)


class Stack:
    """Stack the samples along a new first axis; list/tuple samples stack field by field
    (a list of batches)."""

    def __init__(self, use_shared_mem: bool = False) -> None:
        self._use_shared_mem = use_shared_mem

    def __call__(self, data: list) -> Any:
        if isinstance(data[0], (tuple, list)):
            return [self(list(field)) for field in zip(*data)]
        out = _onp.stack([_host(d) for d in data]) if isinstance(data[0], _onp.ndarray) or \
            hasattr(data[0], "asnumpy") else _onp.asarray(data)
        return np.array(out, dtype=out.dtype)


class Pad:
    """Pad every axis of the samples to the largest size among them (rounded up to a multiple
    of `round_to`) with `val` (0 by default), then stack; `dtype` defaults to the samples'."""

    def __init__(self, val: Any = None, dtype: Any = None, round_to: Any = None, use_shared_mem: bool = False) -> None:
        self._val = 0 if val is None else val
        self._dtype, self._round_to = dtype, round_to

    def __call__(self, data: list) -> Any:
        if isinstance(data[0], tuple):
            raise NotImplementedError("Pad() does not support multiple items, use Group(Pad(), Pad(), ...) instead")
        arrs = [_host(d) for d in data]
        dtype = _onp.dtype(self._dtype) if self._dtype is not None else arrs[0].dtype
        if any(a.ndim != arrs[0].ndim for a in arrs):
            raise ValueError(f"Pad: the samples have different numbers of axes: {[a.shape for a in arrs]}")
        shape = [max(a.shape[k] for a in arrs) for k in range(arrs[0].ndim)]
        if self._round_to is not None:
            shape = [self._round_to * math.ceil(s / self._round_to) for s in shape]
        out = _onp.full([len(arrs)] + shape, self._val, dtype=dtype)
        for i, a in enumerate(arrs):
            out[(i,) + tuple(slice(0, s) for s in a.shape)] = a
        return np.array(out, dtype=dtype)


class Append:
    """The samples as a list of arrays (not stacked), each with a batch axis of size 1 added
    at `batch_axis` when `expand`."""

    def __init__(self, expand: bool = True, batch_axis: int = 0, use_shared_mem: bool = False) -> None:
        self._expand, self._batch_axis = expand, batch_axis

    def __call__(self, data: list) -> list:
        out = [np.array(_host(d), dtype=_host(d).dtype) for d in data]
        return [np.expand_dims(x, self._batch_axis) for x in out] if self._expand else out


class Group:
    """Apply the i-th batchify function to the i-th field of every sample: `Group(f, g)` or
    `Group([f, g])`; a tuple of the results."""

    def __init__(self, fn: Any, *args: Callable) -> None:
        if isinstance(fn, (list, tuple)):
            if args:
                raise ValueError("Group: pass Group(A, B, C) or Group([A, B, C]), not both")
            fns = tuple(fn)
        else:
            fns = (fn,) + args
        for i, f in enumerate(fns):
            if not callable(f):
                raise ValueError(f"Group: batchify functions must be callable; function {i} is a {type(f).__name__}")
        self._fn = fns

    def __call__(self, data: list) -> tuple:
        if len(data[0]) != len(self._fn):
            raise ValueError(f"Group: {len(self._fn)} batchify functions for samples of {len(data[0])} fields")
        return tuple(f([d[i] for d in data]) for i, f in enumerate(self._fn))


class AsList:
    """The samples as a plain list."""

    def __call__(self, data: list) -> list:
        return list(data)
