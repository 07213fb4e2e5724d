"""Weight initializers, MXNet 2.x `mx.init` / `mx.initializer`.

An initializer is called as `init(desc, arr)`: `desc` is an `InitDesc` (a str: the
parameter's name, with `attrs`) and `arr` a tracegrad ndarray it fills in place. Without a
per-parameter initializer in `desc.attrs['__init__']`, the name picks the method, as in
MXNet: names ending in `weight` -> `_init_weight`, `bias` -> zeros, `gamma` -> ones,
`beta` -> zeros. Custom initializers subclass `Initializer` and define `_init_weight`
(and optionally `_init_bias`, ...); `@register` makes them creatable by name.

Samples come from `tracegrad.np.random`, so `mx.random.seed(n)` makes them reproducible.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Optional, Union

import numpy

from . import np as _np

__all__ = [
    "InitDesc", "Initializer", "register", "create", "Uniform", "Normal", "Constant", "Zero", "One",
    "Xavier", "MSRAPrelu", "Orthogonal", "Bilinear", "LSTMBias", "Mixed", "Load",
]  # fmt: skip

_REGISTRY: dict[str, type] = {}


class InitDesc(str):
    """A parameter's name with its attributes (`attrs['__init__']`: its own initializer)."""

    def __new__(cls, name: str, attrs: Optional[dict] = None, global_init: Any = None) -> "InitDesc":
        ret = super().__new__(cls, name)
        ret.attrs = attrs or {}
        ret.global_init = global_init
        return ret


def register(klass: type) -> type:
    """Register an Initializer subclass under its lower-cased class name (and its `alias`)."""
    assert issubclass(klass, Initializer), f"register: {klass} is not an Initializer subclass"
    _REGISTRY[klass.__name__.lower()] = klass
    for alias in getattr(klass, "_aliases", ()):
        _REGISTRY[alias] = klass
    return klass


def create(init: Union[str, "Initializer", type, None], **kwargs: Any) -> "Initializer":
    """An Initializer from an instance, a class, a registered name ('xavier', 'zeros'...) or
    MXNet's JSON dump (`'["xavier", {"magnitude": 2}]'`)."""
    if isinstance(init, Initializer):
        return init
    if isinstance(init, type) and issubclass(init, Initializer):
        return init(**kwargs)
    if isinstance(init, str):
        if init.startswith("["):
            name, kw = json.loads(init)
            return create(name, **{**kw, **kwargs})
        key = init.lower()
        if key not in _REGISTRY:
            raise ValueError(
                f"unknown initializer {init!r}; registered: {', '.join(sorted(_REGISTRY))} "
                "(or pass an Initializer instance)"
            )
        return _REGISTRY[key](**kwargs)
    raise TypeError(f"not an initializer: {init!r} ({type(init).__name__}); use e.g. init.Xavier() or 'zeros'")


def _fill(arr: Any, value: Any) -> None:
    arr[...] = value


def _dt(arr: Any) -> numpy.dtype:
    return numpy.dtype(arr.dtype)


class Initializer:
    """Base class: subclasses define `_init_weight(name, arr)`."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._verbose = False
        self._print_func: Optional[Callable] = None

    def set_verbosity(self, verbose: bool = False, print_func: Optional[Callable] = None) -> "Initializer":
        self._verbose = verbose
        self._print_func = print_func
        return self

    def dumps(self) -> str:
        """`'["name", {kwargs}]'`, as MXNet writes it."""
        return json.dumps([self.__class__.__name__.lower(), self._kwargs])

    def __repr__(self) -> str:
        kw = ", ".join(f"{k}={v!r}" for k, v in self._kwargs.items())
        return f"{type(self).__name__}({kw})"

    def __call__(self, desc: Any, arr: Any) -> None:
        """Fill `arr` in place for the parameter described by `desc`."""
        if not isinstance(desc, InitDesc):
            desc = InitDesc(str(desc))
        if desc.global_init is None:
            desc.global_init = self
        own = desc.attrs.get("__init__", "")
        if own:
            create(own)._init_weight(desc, arr)
        elif desc.endswith("weight"):
            self._init_weight(desc, arr)
        elif desc.endswith("bias"):
            self._init_bias(desc, arr)
        elif desc.endswith("gamma"):
            self._init_gamma(desc, arr)
        elif desc.endswith("beta"):
            self._init_beta(desc, arr)
        elif desc.endswith("running_mean") or desc.endswith("moving_mean") or desc.endswith("min"):
            self._init_zero(desc, arr)
        elif desc.endswith("running_var") or desc.endswith("moving_var") or desc.endswith("max"):
            self._init_one(desc, arr)
        else:
            self._init_default(desc, arr)
        if self._verbose:
            (self._print_func or print)(f"Initialized {desc} as {own or type(self).__name__}")

    def _init_bias(self, _: Any, arr: Any) -> None:
        _fill(arr, 0.0)

    def _init_gamma(self, _: Any, arr: Any) -> None:
        _fill(arr, 1.0)

    def _init_beta(self, _: Any, arr: Any) -> None:
        _fill(arr, 0.0)

    def _init_zero(self, _: Any, arr: Any) -> None:
        _fill(arr, 0.0)

    def _init_one(self, _: Any, arr: Any) -> None:
        _fill(arr, 1.0)

    def _init_weight(self, name: Any, arr: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define _init_weight(name, arr)")

    def _init_default(self, name: Any, arr: Any) -> None:
        raise ValueError(
            f"Unknown initialization pattern for {name}. Default initialization is limited to "
            '"weight", "bias", "gamma" (1.0) and "beta" (0.0); give the parameter an init= '
            "or initialize with an explicit initializer"
        )


def _sample(kind: str, a: float, b: float, shape: tuple, dtype: Any) -> Any:
    if kind == "uniform":
        v = _np.random.uniform(a, b, size=shape, dtype="float64")
    else:
        v = _np.random.normal(a, b, size=shape, dtype="float64")
    return v.asnumpy().astype(numpy.dtype(dtype), copy=False)


@register
class Uniform(Initializer):
    """Samples from U(-scale, scale) (default scale 0.07, MXNet's default weight init)."""

    def __init__(self, scale: float = 0.07) -> None:
        super().__init__(scale=scale)
        self.scale = scale

    def _init_weight(self, _: Any, arr: Any) -> None:
        _fill(arr, _sample("uniform", -self.scale, self.scale, arr.shape, _dt(arr)))


@register
class Normal(Initializer):
    """Samples from N(0, sigma**2) (default sigma 0.01)."""

    def __init__(self, sigma: float = 0.01) -> None:
        super().__init__(sigma=sigma)
        self.sigma = sigma

    def _init_weight(self, _: Any, arr: Any) -> None:
        _fill(arr, _sample("normal", 0.0, self.sigma, arr.shape, _dt(arr)))


@register
class Constant(Initializer):
    """Every element set to `value` (a scalar or an array broadcast to the shape)."""

    def __init__(self, value: Any = 0.0) -> None:
        super().__init__(value=value if numpy.isscalar(value) else numpy.asarray(value).tolist())
        self.value = value

    def _init_weight(self, _: Any, arr: Any) -> None:
        v = self.value
        _fill(arr, v.asnumpy() if hasattr(v, "asnumpy") else numpy.asarray(v))

    _init_bias = _init_gamma = _init_beta = _init_default = _init_weight


@register
class Zero(Initializer):
    """Zeros (registered as 'zeros')."""

    _aliases = ("zeros", "zero")

    def __init__(self) -> None:
        super().__init__()

    def _init_weight(self, _: Any, arr: Any) -> None:
        _fill(arr, 0.0)

    _init_default = _init_weight


@register
class One(Initializer):
    """Ones (registered as 'ones')."""

    _aliases = ("ones", "one")

    def __init__(self) -> None:
        super().__init__()

    def _init_weight(self, _: Any, arr: Any) -> None:
        _fill(arr, 1.0)

    _init_default = _init_weight


@register
class Xavier(Initializer):
    """Glorot: scale = sqrt(magnitude / factor) with factor the fan in, out or their mean
    (fans include the receptive field, shape[2:]); U(-scale, scale) or N(0, scale**2)."""

    def __init__(self, rnd_type: str = "uniform", factor_type: str = "avg", magnitude: float = 3) -> None:
        super().__init__(rnd_type=rnd_type, factor_type=factor_type, magnitude=magnitude)
        if rnd_type not in ("uniform", "gaussian"):
            raise ValueError(f"Xavier: rnd_type must be 'uniform' or 'gaussian', got {rnd_type!r}")
        if factor_type not in ("avg", "in", "out"):
            raise ValueError(f"Xavier: factor_type must be 'avg', 'in' or 'out', got {factor_type!r}")
        self.rnd_type = rnd_type
        self.factor_type = factor_type
        self.magnitude = float(magnitude)

    def _init_weight(self, name: Any, arr: Any) -> None:
        shape = arr.shape
        if len(shape) < 2:
            raise ValueError(
                f"Xavier initializer cannot be applied to vector {name}. It requires at least 2D "
                f"(got shape {shape}); give it init='zeros' or another initializer"
            )
        hw = float(numpy.prod(shape[2:])) if len(shape) > 2 else 1.0
        fan_in, fan_out = shape[1] * hw, shape[0] * hw
        factor = {"avg": (fan_in + fan_out) / 2.0, "in": fan_in, "out": fan_out}[self.factor_type]
        scale = math.sqrt(self.magnitude / factor)
        if self.rnd_type == "uniform":
            _fill(arr, _sample("uniform", -scale, scale, shape, _dt(arr)))
        else:
            _fill(arr, _sample("normal", 0.0, scale, shape, _dt(arr)))


@register
class MSRAPrelu(Xavier):
    """He/Kaiming for PReLU: Xavier('gaussian', factor_type, 2 / (1 + slope**2))."""

    def __init__(self, factor_type: str = "avg", slope: float = 0.25) -> None:
        super().__init__("gaussian", factor_type, 2.0 / (1 + slope**2))
        self._kwargs = {"factor_type": factor_type, "slope": slope}


@register
class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix from the SVD of a random one, times `scale`
    (rows: shape[0], columns: the product of the other dims)."""

    def __init__(self, scale: float = 1.414, rand_type: str = "uniform") -> None:
        super().__init__(scale=scale, rand_type=rand_type)
        if rand_type not in ("uniform", "normal"):
            raise ValueError(f"Orthogonal: rand_type must be 'uniform' or 'normal', got {rand_type!r}")
        self.scale = scale
        self.rand_type = rand_type

    def _init_weight(self, _: Any, arr: Any) -> None:
        nout = arr.shape[0]
        nin = int(numpy.prod(arr.shape[1:]))
        if self.rand_type == "uniform":
            tmp = _sample("uniform", -1.0, 1.0, (nout, nin), "float64")
        else:
            tmp = _sample("normal", 0.0, 1.0, (nout, nin), "float64")
        u, _s, v = numpy.linalg.svd(tmp, full_matrices=False)
        q = u if u.shape == tmp.shape else v
        _fill(arr, (self.scale * q.reshape(arr.shape)).astype(_dt(arr)))


@register
class Bilinear(Initializer):
    """A bilinear upsampling kernel over the last two axes (for Conv2DTranspose upsampling)."""

    def __init__(self) -> None:
        super().__init__()

    def _init_weight(self, _: Any, arr: Any) -> None:
        shape = tuple(arr.shape)
        if len(shape) < 2:
            raise ValueError(f"Bilinear: needs at least 2 axes (the kernel's), got shape {shape}")
        f = numpy.ceil(shape[-1] / 2.0)
        c = (2 * f - 1 - f % 2) / (2.0 * f)
        x = numpy.arange(shape[-1]) / f - c
        y = numpy.arange(shape[-2]) / f - c
        kernel = numpy.outer(1 - numpy.abs(y), 1 - numpy.abs(x))
        _fill(arr, numpy.broadcast_to(kernel, shape).astype(_dt(arr)))


@register
class LSTMBias(Initializer):
    """Zeros, except `forget_bias` for the forget gate (the second quarter: MXNet's gate order
    i, f, c, o)."""

    def __init__(self, forget_bias: float = 1.0) -> None:
        super().__init__(forget_bias=forget_bias)
        self.forget_bias = forget_bias

    def _init_weight(self, _: Any, arr: Any) -> None:
        n = int(arr.shape[0]) // 4
        value = numpy.zeros(tuple(arr.shape), dtype=_dt(arr))
        value[n:2 * n] = self.forget_bias
        _fill(arr, value)


@register
class Mixed(Initializer):
    """The first initializer whose regex matches the parameter's name."""

    def __init__(self, patterns: list, initializers: list) -> None:
        super().__init__()
        import re

        assert len(patterns) == len(initializers), "Mixed: patterns and initializers differ in length"
        self.map = [(re.compile(p), create(i)) for p, i in zip(patterns, initializers)]

    def __call__(self, desc: Any, arr: Any) -> None:
        for pat, init in self.map:
            if pat.match(str(desc)):
                init(desc, arr)
                return
        raise ValueError(f"Mixed: no pattern matches parameter {desc!r}; add a '.*' catch-all")

    def _init_weight(self, desc: Any, arr: Any) -> None:
        self(InitDesc(str(desc)), arr)


@register
class Load(Initializer):
    """Values from a dict (or a file npx.load reads) by name; `default_init` for the rest."""

    def __init__(self, param: Any, default_init: Any = None, verbose: bool = False) -> None:
        super().__init__()
        if isinstance(param, str):
            from .serialization import load

            param = load(param)
        self.param = {k.split(":", 1)[-1]: v for k, v in dict(param).items()}
        self.default_init = default_init

    def __call__(self, desc: Any, arr: Any) -> None:
        name = str(desc)
        if name in self.param:
            v = self.param[name]
            v = v.asnumpy() if hasattr(v, "asnumpy") else numpy.asarray(v)
            if v.shape != arr.shape:
                raise ValueError(f"Load: parameter {name} has shape {arr.shape} but the saved one {v.shape}")
            _fill(arr, v)
        elif self.default_init is not None:
            create(self.default_init)(desc, arr)
        else:
            raise ValueError(f"Load: {name} is not in the loaded parameters and no default_init was given")

    def _init_weight(self, desc: Any, arr: Any) -> None:
        self(InitDesc(str(desc)), arr)

