"""`mxnet.test_utils`: the numpy-interface testing helpers MXNet users' tests import."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator, Optional

import numpy

from .. import device as _device
from .. import np as _np
from ..test_utils import check_numeric_gradient, numeric_grad  # noqa: F401
from ..test_utils import assert_almost_equal as _assert_almost_equal

_DEFAULT = [None]


def default_device() -> Any:
    """The device tests run on (cpu() unless set_default_device changed it)."""
    return _DEFAULT[0] or _device.current_device()


default_context = default_device


def set_default_device(dev: Any) -> None:
    _DEFAULT[0] = _device.as_device(dev)


set_default_context = set_default_device


def default_dtype() -> Any:
    return numpy.float32


def _np_of(x: Any) -> numpy.ndarray:
    return x.asnumpy() if hasattr(x, "asnumpy") else numpy.asarray(x)


def same(a: Any, b: Any) -> bool:
    """Whether two arrays are exactly equal (shapes and values)."""
    return numpy.array_equal(_np_of(a), _np_of(b))


def almost_equal(a: Any, b: Any, rtol: Optional[float] = None, atol: Optional[float] = None,
                 equal_nan: bool = False) -> bool:
    return numpy.allclose(_np_of(a), _np_of(b), rtol=1e-5 if rtol is None else rtol,
                          atol=1e-20 if atol is None else atol, equal_nan=equal_nan)


def assert_almost_equal(a: Any, b: Any, rtol: Optional[float] = None, atol: Optional[float] = None,
                        names: tuple = ("a", "b"), equal_nan: bool = False, use_broadcast: bool = True,
                        mismatches: tuple = (10, 10)) -> None:
    """Assert |a - b| <= atol + rtol |b| elementwise (MXNet's defaults: rtol 1e-5, atol 1e-20)."""
    a, b = _np_of(a), _np_of(b)
    if use_broadcast and a.shape != b.shape:
        a, b = numpy.broadcast_arrays(a, b)
    if not equal_nan and (numpy.isnan(a) | numpy.isnan(b)).any():
        raise AssertionError(f"{names[0]} or {names[1]} has NaN (pass equal_nan=True to compare them)")
    _assert_almost_equal(a, b, rtol=1e-5 if rtol is None else rtol, atol=1e-20 if atol is None else atol,
                         names=tuple(names))


def assert_allclose(a: Any, b: Any, rtol: float = 1e-7, atol: float = 0, equal_nan: bool = True) -> None:
    numpy.testing.assert_allclose(_np_of(a), _np_of(b), rtol=rtol, atol=atol, equal_nan=equal_nan)


def assert_exception(f: Any, exception_type: type, *args: Any, **kwargs: Any) -> None:
    try:
        f(*args, **kwargs)
    except exception_type:
        return
    raise AssertionError(f"{getattr(f, '__name__', f)} did not raise {exception_type.__name__}")


def rand_shape_2d(dim0: int = 10, dim1: int = 10, allow_zero_size: bool = False) -> tuple:
    low = 0 if allow_zero_size else 1
    return numpy.random.randint(low, dim0 + 1), numpy.random.randint(low, dim1 + 1)


def rand_shape_3d(dim0: int = 10, dim1: int = 10, dim2: int = 10, allow_zero_size: bool = False) -> tuple:
    low = 0 if allow_zero_size else 1
    return tuple(numpy.random.randint(low, d + 1) for d in (dim0, dim1, dim2))


def rand_shape_nd(num_dim: int, dim: int = 10, allow_zero_size: bool = False) -> tuple:
    low = 0 if allow_zero_size else 1
    return tuple(numpy.random.randint(low, dim + 1, size=num_dim).tolist())


def rand_ndarray(shape: Any, stype: str = "default", density: Any = None, dtype: Any = None, **kwargs: Any) -> Any:
    """A dense array of U(0, 1) samples (float32 by default); sparse storage is not supported."""
    if stype != "default":
        from ..errors import UnsupportedError

        raise UnsupportedError(f"rand_ndarray(stype={stype!r}): sparse arrays are not supported")
    return _np.array(numpy.random.uniform(size=shape), dtype=dtype or "float32")


def random_arrays(*shapes: Any) -> Any:
    arrays = [numpy.array(numpy.random.randn(), dtype=numpy.float32) if len(s) == 0
              else numpy.random.randn(*s).astype(numpy.float32) for s in shapes]
    return arrays[0] if len(arrays) == 1 else arrays


@contextmanager
def environment(*args: Any) -> Iterator[None]:
    """Set environment variables for the block: environment('NAME', value) or environment({...});
    a value of None unsets the variable."""
    pairs = args[0] if len(args) == 1 and isinstance(args[0], dict) else {args[0]: args[1]}
    saved = {k: os.environ.get(k) for k in pairs}
    try:
        for k, v in pairs.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = str(v)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def list_gpus() -> list:
    return list(range(_device.num_gpus()))


def check_gluon_hybridize_consistency(net_builder: Any, data_l: list, numpy_func: Any = None,
                                      test_grad: bool = True, rtol: float = 1e-4, atol: float = 1e-4) -> None:
    """The same network gives the same outputs (and input gradients) hybridized and not."""
    from .. import autograd

    outs = []
    for hybridize in (False, True):
        net = net_builder()
        net.initialize()
        if hybridize:
            net.hybridize()
        xs = [_np.array(_np_of(x)) for x in data_l]
        for x in xs:
            x.attach_grad()
        with autograd.record():
            y = net(*xs)
        y.backward()
        outs.append((y.asnumpy(), [x.grad.asnumpy() for x in xs]))
        if numpy_func is not None:
            assert_almost_equal(y, numpy_func(*[_np_of(x) for x in data_l]), rtol=rtol, atol=atol)
    assert_almost_equal(outs[0][0], outs[1][0], rtol=rtol, atol=atol)
    if test_grad:
        for g0, g1 in zip(outs[0][1], outs[1][1]):
            assert_almost_equal(g0, g1, rtol=rtol, atol=atol)


__all__ = ["default_device", "default_context", "set_default_device", "set_default_context", "default_dtype",
           "same", "almost_equal", "assert_almost_equal", "assert_allclose", "assert_exception", "rand_shape_2d",
           "rand_shape_3d", "rand_shape_nd", "rand_ndarray", "random_arrays", "environment", "list_gpus",
           "check_numeric_gradient", "numeric_grad", "check_gluon_hybridize_consistency"]
