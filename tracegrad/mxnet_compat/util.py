"""`mxnet.util`: numpy-mode switches. tracegrad is always in numpy mode (shape and array
semantics); the decorators return the function unchanged and the switches report True."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

from .. import npx


def is_np_array() -> bool:
    return True


def is_np_shape() -> bool:
    return True


def set_np_shape(active: bool) -> bool:
    """Accepted (numpy shape semantics are always on); returns the previous value, True."""
    return True


def set_np(shape: bool = True, array: bool = True, dtype: bool = False) -> None:
    npx.set_np(shape, array, dtype)


def reset_np() -> None:
    npx.reset_np()


def use_np(func: Any) -> Any:
    """Decorator (functions and classes): numpy semantics, which are always on."""
    return func


use_np_shape = use_np_array = use_np


@contextmanager
def np_shape(active: bool = True) -> Iterator[None]:
    yield


@contextmanager
def np_array(active: bool = True) -> Iterator[None]:
    yield


def is_np_default_dtype() -> bool:
    from ..tracer.state import STATE

    return STATE.default_float == "float64"


def set_np_default_dtype(active: bool = True) -> bool:
    """float64 as the default float (MXNet's numpy default dtype); returns the previous setting."""
    prev = is_np_default_dtype()
    npx.set_np(dtype=bool(active))
    return prev


@contextmanager
def np_default_dtype(active: bool = True) -> Iterator[None]:
    prev = is_np_default_dtype()
    npx.set_np(dtype=active)
    try:
        yield
    finally:
        npx.set_np(dtype=prev)


def use_np_default_dtype(func: Callable) -> Callable:
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with np_default_dtype(True):
            return func(*args, **kwargs)

    return wrapper


def get_gpu_count() -> int:
    return npx.num_gpus()


def getenv(name: str) -> Any:
    import os

    return os.environ.get(name)


def setenv(name: str, value: Any) -> None:
    import os

    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = str(value)


__all__ = ["is_np_array", "is_np_shape", "set_np_shape", "set_np", "reset_np", "use_np", "use_np_shape",
           "use_np_array", "np_shape", "np_array", "is_np_default_dtype", "set_np_default_dtype",
           "np_default_dtype", "use_np_default_dtype", "get_gpu_count", "getenv", "setenv"]
