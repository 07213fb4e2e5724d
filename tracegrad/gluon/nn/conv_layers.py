"""Convolution and pooling layers: Conv1D/2D/3D, Conv1DTranspose/Conv2DTranspose/
Conv3DTranspose, Max/AvgPool1D/2D/3D, GlobalMax/GlobalAvgPool1D/2D/3D (layout NC*)."""

from __future__ import annotations

from typing import Any, Optional

from ... import npx as _npx
from ...errors import ShapeError, UnsupportedError
from ...np._core import at
from ..block import HybridBlock
from ..parameter import Parameter
from .activations import Activation

__all__ = [
    "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
    "MaxPool1D", "MaxPool2D", "MaxPool3D", "AvgPool1D", "AvgPool2D", "AvgPool3D",
    "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D", "GlobalAvgPool1D", "GlobalAvgPool2D",
    "GlobalAvgPool3D",
]  # fmt: skip

_LAYOUTS = {1: "NCW", 2: "NCHW", 3: "NCDHW"}


def _tuple(v: Any, n: int, what: str) -> tuple:
    t = (int(v),) * n if isinstance(v, int) else tuple(int(e) for e in v)
    if len(t) != n:
        raise ValueError(f"{what} must be an int or a tuple of {n} ints, got {v!r}")
    return t


def _layout(layout: str, nd: int, who: str) -> str:
    if layout != _LAYOUTS[nd]:
        raise UnsupportedError(f"{who}: layout {layout!r} is not supported; use {_LAYOUTS[nd]!r} (channels first) "
                               "and transpose the input")
    return layout


class _Conv(HybridBlock):
    """Shared by convolutions (transpose=False) and their transposes."""

    _alias_name = "conv"
    _nd = 2
    _transpose = False

    def __init__(self, channels: int, kernel_size: Any, strides: Any = 1, padding: Any = 0, dilation: Any = 1,
                 groups: int = 1, layout: Optional[str] = None, activation: Any = None, use_bias: bool = True,
                 weight_initializer: Any = None, bias_initializer: Any = "zeros", in_channels: int = 0,
                 output_padding: Any = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        nd = self._nd
        who = type(self).__name__
        self._layout = _layout(layout or _LAYOUTS[nd], nd, who)
        self._channels, self._in_channels, self._groups = int(channels), int(in_channels), int(groups)
        self._kernel = _tuple(kernel_size, nd, f"{who}: kernel_size")
        self._strides = _tuple(strides, nd, f"{who}: strides")
        self._padding = _tuple(padding, nd, f"{who}: padding")
        self._dilation = _tuple(dilation, nd, f"{who}: dilation")
        self._adj = _tuple(output_padding, nd, f"{who}: output_padding")
        shape = self._weight_shape(self._in_channels)
        self.weight = Parameter("weight", shape=shape, init=weight_initializer, allow_deferred_init=True)
        self.bias = (Parameter("bias", shape=(channels,), init=bias_initializer, allow_deferred_init=True)
                     if use_bias else None)
        self.act = Activation(activation) if activation is not None else None

    def _weight_shape(self, in_channels: int) -> tuple:
        if self._transpose:
            return (in_channels, self._channels // self._groups) + self._kernel
        return (self._channels, in_channels // self._groups if in_channels else 0) + self._kernel

    def infer_shape(self, x: Any, *args: Any) -> None:
        if x.ndim != self._nd + 2:
            raise ShapeError(f"{type(self).__name__}: expected {self._nd + 2}-D input ({self._layout}), got shape "
                             f"{tuple(x.shape)}" + at())
        self.weight.shape = self._weight_shape(int(x.shape[1]))

    def forward(self, x: Any) -> Any:
        b = self.bias.data() if self.bias is not None else None
        kw = dict(kernel=self._kernel, stride=self._strides, dilate=self._dilation, pad=self._padding,
                  num_filter=self._channels, num_group=self._groups, no_bias=b is None, layout=self._layout)
        if self._transpose:
            out = _npx.deconvolution(x, self.weight.data(), b, adj=self._adj, **kw)
        else:
            out = _npx.convolution(x, self.weight.data(), b, **kw)
        return self.act(out) if self.act is not None else out

    def _repr_args(self) -> str:
        w = self.weight.shape
        n_in = w[1] * self._groups if not self._transpose else w[0]
        s = f"{n_in if n_in and n_in > 0 else -1} -> {self._channels}, kernel_size={self._kernel}, stride={self._strides}"
        if any(self._padding):
            s += f", padding={self._padding}"
        if any(d != 1 for d in self._dilation):
            s += f", dilation={self._dilation}"
        if self._groups != 1:
            s += f", groups={self._groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.act is not None:
            s += f", {self.act!r}"
        return s


def _conv_transpose_init(self: Any, channels: int, kernel_size: Any, strides: Any = 1, padding: Any = 0,
                         output_padding: Any = 0, dilation: Any = 1, groups: int = 1, layout: Optional[str] = None,
                         activation: Any = None, use_bias: bool = True, weight_initializer: Any = None,
                         bias_initializer: Any = "zeros", in_channels: int = 0, **kwargs: Any) -> None:
    _Conv.__init__(self, channels, kernel_size, strides, padding, dilation, groups, layout, activation, use_bias,
                   weight_initializer, bias_initializer, in_channels, output_padding=output_padding, **kwargs)


def _conv(name: str, nd: int, transpose: bool, doc: str) -> type:
    body: dict = {"_nd": nd, "_transpose": transpose, "__doc__": doc}
    if transpose:  # MXNet's positional order puts output_padding after padding
        body["__init__"] = _conv_transpose_init
    cls = type(name, (_Conv,), body)
    cls.__module__ = __name__
    return cls


Conv1D = _conv("Conv1D", 1, False, "1-D convolution over (N, C, W): weight (channels, in_channels/groups, k).")
Conv2D = _conv("Conv2D", 2, False, "2-D convolution over (N, C, H, W): weight (channels, in_channels/groups, kh, kw).")
Conv3D = _conv("Conv3D", 3, False, "3-D convolution over (N, C, D, H, W).")
Conv1DTranspose = _conv("Conv1DTranspose", 1, True, "1-D transposed convolution: weight (in_channels, "
                        "channels/groups, k); output_padding adds to one side of the output.")
Conv2DTranspose = _conv("Conv2DTranspose", 2, True, "2-D transposed convolution: weight (in_channels, "
                        "channels/groups, kh, kw).")
Conv3DTranspose = _conv("Conv3DTranspose", 3, True, "3-D transposed convolution.")


class _Pool(HybridBlock):
    _alias_name = "pool"
    _nd = 2
    _type = "max"
    _global = False

    def __init__(self, pool_size: Any = 2, strides: Any = None, padding: Any = 0, layout: Optional[str] = None,
                 ceil_mode: bool = False, count_include_pad: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        nd = self._nd
        who = type(self).__name__
        self._layout = _layout(layout or _LAYOUTS[nd], nd, who)
        self._kernel = _tuple(pool_size, nd, f"{who}: pool_size")
        self._strides = self._kernel if strides is None else _tuple(strides, nd, f"{who}: strides")
        self._padding = _tuple(padding, nd, f"{who}: padding")
        self._ceil = bool(ceil_mode)
        self._count_include_pad = bool(count_include_pad)

    def forward(self, x: Any) -> Any:
        if self._global:
            return _npx.pooling(x, pool_type=self._type, global_pool=True, layout=self._layout)
        kw = {"count_include_pad": self._count_include_pad} if self._type == "avg" else {}
        return _npx.pooling(x, kernel=self._kernel, stride=self._strides, pad=self._padding, pool_type=self._type,
                            pooling_convention="full" if self._ceil else "valid", layout=self._layout, **kw)

    def _repr_args(self) -> str:
        nd = self._nd
        size, stride, pad, ceil = ((1,) * nd, (1,) * nd, (0,) * nd, True) if self._global else \
            (self._kernel, self._strides, self._padding, self._ceil)
        return (f"size={size}, stride={stride}, padding={pad}, ceil_mode={ceil}, global_pool={self._global}, "
                f"pool_type={self._type}, layout={self._layout}")


def _pool(name: str, nd: int, kind: str, glob: bool) -> type:
    if glob:
        def __init__(self: Any, layout: Optional[str] = None, **kwargs: Any) -> None:
            _Pool.__init__(self, 1, None, 0, layout, **kwargs)
        doc = f"Global {kind} pooling over the {nd} spatial dims (output keeps them as size 1)."
    else:
        def __init__(self: Any, pool_size: Any = 2, strides: Any = None, padding: Any = 0,  # type: ignore[misc]
                     layout: Optional[str] = None, ceil_mode: bool = False, *args: Any, **kwargs: Any) -> None:
            if kind == "max" and (args or "count_include_pad" in kwargs):
                raise TypeError(f"{name} has no count_include_pad (average pooling only)")
            _Pool.__init__(self, pool_size, strides, padding, layout, ceil_mode, *args, **kwargs)
        doc = (f"{nd}-D {kind} pooling (strides default to pool_size; ceil_mode rounds the output size up"
               + ("; count_include_pad counts padding in the average)." if kind == "avg" else ")."))
    cls = type(name, (_Pool,), {"_nd": nd, "_type": kind, "_global": glob, "__doc__": doc, "__init__": __init__})
    cls.__module__ = __name__
    return cls


MaxPool1D, MaxPool2D, MaxPool3D = (_pool(f"MaxPool{n}D", n, "max", False) for n in (1, 2, 3))
AvgPool1D, AvgPool2D, AvgPool3D = (_pool(f"AvgPool{n}D", n, "avg", False) for n in (1, 2, 3))
GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D = (_pool(f"GlobalMaxPool{n}D", n, "max", True) for n in (1, 2, 3))
GlobalAvgPool1D, GlobalAvgPool2D, GlobalAvgPool3D = (_pool(f"GlobalAvgPool{n}D", n, "avg", True) for n in (1, 2, 3))
