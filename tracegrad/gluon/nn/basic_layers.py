"""Containers and basic layers: Sequential, HybridSequential, Dense, Dropout, Embedding,
Flatten, Lambda, HybridLambda, Identity, Concatenate, HybridConcatenate."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Union

import numpy

from ... import np as _np
from ... import npx as _npx
from ...errors import ShapeError
from ...np._core import at
from ..block import Block, HybridBlock, _F
from ..parameter import Parameter
from .activations import Activation

__all__ = [
    "Sequential", "HybridSequential", "Dense", "Dropout", "Embedding", "Flatten", "Lambda", "HybridLambda",
    "Identity", "Concatenate", "HybridConcatenate",
]  # fmt: skip


class _SequentialMixin:
    """add / index / slice / len / forward of the sequential containers."""

    def add(self, *blocks: Block) -> None:
        for b in blocks:
            self.register_child(b)

    def forward(self, x: Any, *args: Any) -> Any:
        for block in self._children.values():
            x = block(x, *args)
            args = ()
            if isinstance(x, (tuple, list)):
                args = tuple(x[1:])
                x = x[0]
        if args:
            x = tuple([x] + list(args))
        return x

    def __getitem__(self, key: Union[int, slice]) -> Any:
        layers = list(self._children.values())[key]
        if isinstance(layers, list):
            net = type(self)()
            net.add(*layers)
            return net
        return layers

    def __len__(self) -> int:
        return len(self._children)

    def __iter__(self) -> Any:
        return iter(self._children.values())


class Sequential(_SequentialMixin, Block):
    """Children run one after another (a tuple output feeds the next block's arguments)."""

    def __init__(self, prefix: Any = None, params: Any = None) -> None:
        super().__init__(prefix, params)

    def hybridize(self, active: bool = True, **kwargs: Any) -> None:
        super().hybridize(active, **kwargs)


class HybridSequential(_SequentialMixin, HybridBlock):
    """Sequential whose forward compiles with hybridize()."""

    def __init__(self, prefix: Any = None, params: Any = None) -> None:
        super().__init__(prefix, params)


class Dense(HybridBlock):
    """out = act(x @ weight.T + bias); weight (units, in_units), in_units inferred at the first
    forward. flatten=True folds all but the first axis of x; False applies to the last axis."""

    def __init__(self, units: int, activation: Any = None, use_bias: bool = True, flatten: bool = True,
                 dtype: Any = "float32", weight_initializer: Any = None, bias_initializer: Any = "zeros",
                 in_units: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._units = int(units)
        self._in_units = int(in_units)
        self._flatten = flatten
        self.weight = Parameter("weight", shape=(units, in_units), init=weight_initializer, dtype=dtype,
                                allow_deferred_init=True)
        self.bias = (Parameter("bias", shape=(units,), init=bias_initializer, dtype=dtype, allow_deferred_init=True)
                     if use_bias else None)
        self.act = Activation(activation) if activation is not None else None

    def infer_shape(self, x: Any, *args: Any) -> None:
        n_in = int(numpy.prod(x.shape[1:])) if self._flatten else int(x.shape[-1])
        self.weight.shape = (self._units, n_in)

    def forward(self, x: Any) -> Any:
        w = self.weight.data()
        if self._flatten:
            x = _np.reshape(x, (x.shape[0], -1)) if x.ndim != 2 else x
        if x.shape[-1] != w.shape[1]:
            raise ShapeError(f"Dense: input of shape {tuple(x.shape)} has {x.shape[-1]} features but the weight "
                             f"expects in_units={w.shape[1]}" + at())
        out = _np.matmul(x, _np.transpose(w))
        if self.bias is not None:
            out = out + self.bias.data()
        return self.act(out) if self.act is not None else out

    def _repr_args(self) -> str:
        n_in = self.weight.shape[1] if self.weight.shape and self.weight.shape[1] > 0 else -1
        act = f", {self.act!r}" if self.act is not None else ", linear"
        return f"{n_in} -> {self._units}{act}"


class Dropout(HybridBlock):
    """Zero elements with probability `rate` (scaled by 1/(1-rate)) in training mode; identity
    otherwise. `axes` share one mask along those axes."""

    def __init__(self, rate: float, axes: tuple = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rate = float(rate)
        self._axes = tuple(axes)

    def forward(self, x: Any) -> Any:
        if self._rate <= 0:
            return x
        return _npx.dropout(x, p=self._rate, axes=self._axes or None)

    def _repr_args(self) -> str:
        return f"p = {self._rate}, axes={self._axes}"


class Embedding(HybridBlock):
    """Rows of weight (input_dim, output_dim) picked by integer indices."""

    def __init__(self, input_dim: int, output_dim: int, dtype: Any = "float32", weight_initializer: Any = None,
                 sparse_grad: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._input_dim, self._output_dim = int(input_dim), int(output_dim)
        self.weight = Parameter("weight", shape=(input_dim, output_dim), init=weight_initializer, dtype=dtype)

    def forward(self, x: Any) -> Any:
        idx = x if x.dtype.kind in "iu" else x.astype("int64")
        idx = _np.clip(idx, 0, self._input_dim - 1)
        return self.weight.data()[idx]

    def _repr_args(self) -> str:
        return f"{self._input_dim} -> {self._output_dim}, {self.weight.dtype}"


class Flatten(HybridBlock):
    """(N, ...) -> (N, prod(...))."""

    def forward(self, x: Any) -> Any:
        return _np.reshape(x, (x.shape[0], -1))

    def __repr__(self) -> str:
        return "Flatten"  # MXNet prints the bare name


class Identity(HybridBlock):
    """Returns its input."""

    def forward(self, x: Any) -> Any:
        return x


def _resolve(function: Union[str, Callable], who: str) -> Callable:
    if isinstance(function, str):
        for mod in (_np, _npx):
            fn = getattr(mod, function, None)
            if callable(fn):
                return fn
        raise ValueError(f"{who}: no np or npx function named {function!r}")
    if not callable(function):
        raise ValueError(f"{who}: unrecognized function {function!r}; give a callable or an np/npx function name")
    return function


def _wants_f(fn: Callable) -> bool:
    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return False
    return len(names) >= 2 and names[0] == "F"


class Lambda(Block):
    """Wraps a function (or the name of an np/npx function) as a Block."""

    def __init__(self, function: Union[str, Callable], prefix: Any = None) -> None:
        super().__init__(prefix=prefix)
        self._func = _resolve(function, "Lambda")
        self._func_name = getattr(self._func, "__name__", repr(self._func))

    def forward(self, *args: Any) -> Any:
        return self._func(*args)

    def _repr_args(self) -> str:
        return self._func_name


class HybridLambda(HybridBlock):
    """Lambda that can be hybridized; a 1.x function `lambda F, x: ...` receives F (np/npx)."""

    def __init__(self, function: Union[str, Callable], prefix: Any = None) -> None:
        super().__init__(prefix=prefix)
        self._func = _resolve(function, "HybridLambda")
        self._with_f = not isinstance(function, str) and _wants_f(self._func)
        self._func_name = getattr(self._func, "__name__", repr(self._func))

    def forward(self, *args: Any) -> Any:
        return self._func(_F, *args) if self._with_f else self._func(*args)

    def _repr_args(self) -> str:
        return self._func_name


class _ConcatMixin:
    def add(self, *blocks: Block) -> None:
        for b in blocks:
            self.register_child(b)

    def forward(self, x: Any) -> Any:
        return _np.concatenate([b(x) for b in self._children.values()], axis=self.axis)


class Concatenate(_ConcatMixin, Sequential):
    """Runs every child on the same input and concatenates their outputs along `axis`."""

    def __init__(self, axis: int = -1, prefix: Any = None, params: Any = None) -> None:
        super().__init__(prefix, params)
        self.axis = axis


class HybridConcatenate(_ConcatMixin, HybridSequential):
    """Concatenate that can be hybridized."""

    def __init__(self, axis: int = -1, prefix: Any = None, params: Any = None) -> None:
        super().__init__(prefix, params)
        self.axis = axis
