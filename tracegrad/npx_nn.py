"""npx's neural-network layers as functions (issue 9): convolution, pooling, dense, embedding.

Signatures are MXNet 2.x's `mxnet.npx` ones (Gluon layers call them). Convolution and
pooling are rows of the op table (tracegrad/ir/rules_nn_conv.py, rules_nn_pool.py); the
bias is a broadcast add, so it fuses into the kernels that follow.
"""

from __future__ import annotations

from typing import Any, Optional

from . import np as _np
from .errors import ShapeError, UnsupportedError
from .ir import dtypes
from .ir.ops import Op
from .ir.rules_nn_conv import conv_out_size
from .np._core import as_array, at, cast, default_float, to_dtype
from .tracer.array import Array
from .tracer.lazy import apply

_LAYOUTS = {1: "NCW", 2: "NCHW", 3: "NCDHW"}


def float_array(x: Any) -> Array:
    x = as_array(x)
    return x if dtypes.is_float(x.dtype) else cast(x, default_float())


def _ints(name: str, v: Any, nd: int, default: int, op: str) -> tuple[int, ...]:
    if v is None or (isinstance(v, (tuple, list)) and len(v) == 0):
        return (default,) * nd
    if isinstance(v, int):
        return (v,) * nd
    t = tuple(int(i) for i in v)
    if len(t) != nd:
        raise ShapeError(f"{op}: {name} {t} needs {nd} values for {nd}-D data" + at())
    return t


def _spatial(op: str, x: Array, layout: Optional[str]) -> int:
    nd = x.ndim - 2
    if nd not in _LAYOUTS:
        raise ShapeError(f"{op}: data {tuple(x.shape)} {x.dtype} must be 3-D, 4-D or 5-D (N, C, *spatial)" + at())
    if layout is not None and layout != _LAYOUTS[nd]:
        raise UnsupportedError(
            f"{op}: layout {layout!r} is not supported for {nd + 2}-D data; use {_LAYOUTS[nd]} "
            "(channels first)" + at()
        )
    return nd


def _add_bias(y: Array, bias: Any) -> Array:
    b = as_array(bias)
    if b.ndim != 1 or b.shape[0] != y.shape[1]:
        raise ShapeError(f"bias of shape {tuple(b.shape)} does not match {y.shape[1]} output channels" + at())
    return _np.add(y, _np.reshape(b, (1, -1) + (1,) * (y.ndim - 2)))


def _weight_check(op: str, w: Array, kernel: Any, nd: int, num_filter: int, filters_axis: int, per_group: int) -> None:
    if w.ndim != nd + 2:
        raise ShapeError(f"{op}: weight {tuple(w.shape)} {w.dtype} must have {nd + 2} dims" + at())
    if kernel is not None and _ints("kernel", kernel, nd, 1, op) != tuple(w.shape[2:]):
        raise ShapeError(f"{op}: kernel {tuple(kernel)} differs from the weight's {tuple(w.shape[2:])}" + at())
    if w.shape[filters_axis] != per_group:
        raise ShapeError(
            f"{op}: num_filter={num_filter} needs weight dim {filters_axis} = {per_group}, "
            f"got weight {tuple(w.shape)} {w.dtype}" + at()
        )


def convolution(data: Any = None, weight: Any = None, bias: Any = None, kernel: Any = None, stride: Any = None,
                dilate: Any = None, pad: Any = None, num_filter: int = 1, num_group: int = 1,
                workspace: int = 1024, no_bias: bool = False, cudnn_tune: Any = None, cudnn_off: bool = False,
                layout: Optional[str] = None) -> Array:
    """N-D cross-correlation of data (N, C, *S) with weight (num_filter, C/num_group, *kernel)."""
    x, w = float_array(data), as_array(weight)
    nd = _spatial("convolution", x, layout)
    _weight_check("convolution", w, kernel, nd, num_filter, 0, num_filter)
    p = {"stride": _ints("stride", stride, nd, 1, "convolution"), "pad": _ints("pad", pad, nd, 0, "convolution"),
         "dilate": _ints("dilate", dilate, nd, 1, "convolution"), "groups": int(num_group)}
    y = apply(Op.CONV, [x, w], p)[0]
    return y if no_bias or bias is None else _add_bias(y, bias)


def deconvolution(data: Any = None, weight: Any = None, bias: Any = None, kernel: Any = None, stride: Any = None,
                  dilate: Any = None, pad: Any = None, adj: Any = None, target_shape: Any = None,
                  num_filter: int = 1, num_group: int = 1, workspace: int = 1024, no_bias: bool = False,
                  cudnn_tune: Any = None, cudnn_off: bool = False, layout: Optional[str] = None) -> Array:
    """The transpose of convolution: weight (C, num_filter/num_group, *kernel); the output
    is (in - 1) * stride - 2 * pad + dilate * (kernel - 1) + 1 + adj per spatial dim, or
    `target_shape` (which then sets pad and adj, as MXNet does)."""
    x, w = float_array(data), as_array(weight)
    nd = _spatial("deconvolution", x, layout)
    g = int(num_group)
    _weight_check("deconvolution", w, kernel, nd, num_filter, 1, num_filter // max(g, 1))
    st = _ints("stride", stride, nd, 1, "deconvolution")
    dl = _ints("dilate", dilate, nd, 1, "deconvolution")
    pd = _ints("pad", pad, nd, 0, "deconvolution")
    aj = _ints("adj", adj, nd, 0, "deconvolution")
    ks = tuple(w.shape[2:])
    full = tuple(st[i] * (x.shape[2 + i] - 1) + dl[i] * (ks[i] - 1) + 1 for i in range(nd))
    if target_shape is not None and len(tuple(target_shape)) and any(int(t) for t in target_shape):
        ts = _ints("target_shape", target_shape, nd, 0, "deconvolution")
        if any(full[i] < ts[i] for i in range(nd)):
            raise ShapeError(f"deconvolution: target_shape {ts} is larger than the full output {full}" + at())
        total = tuple(full[i] - ts[i] for i in range(nd))
        aj = tuple(t % 2 for t in total)
        pd = tuple((t + 1) // 2 for t in total)
    if any(aj[i] >= max(st[i], dl[i]) for i in range(nd)):
        raise ShapeError(f"deconvolution: adj {aj} must be smaller than stride {st} or dilate {dl}" + at())
    out = tuple(full[i] - 2 * pd[i] + aj[i] for i in range(nd))
    if min(out) < 1 or any(conv_out_size(out[i], ks[i], st[i], pd[i], dl[i]) != x.shape[2 + i] for i in range(nd)):
        raise ShapeError(f"deconvolution: data {tuple(x.shape)} with pad {pd}, adj {aj} gives no valid output" + at())
    x_shape = (x.shape[0], w.shape[1] * g) + out
    y = apply(Op.CONV_BWD_DATA, [x, w], {"x_shape": x_shape, "stride": st, "pad": pd, "dilate": dl, "groups": g})[0]
    return y if no_bias or bias is None else _add_bias(y, bias)


def pooling(data: Any = None, kernel: Any = None, stride: Any = None, pad: Any = None, pool_type: str = "max",
            pooling_convention: str = "valid", global_pool: bool = False, cudnn_off: bool = False,
            p_value: Optional[int] = None, count_include_pad: Optional[bool] = None, layout: Optional[str] = None,
            **kwargs: Any) -> Array:
    """max/avg/sum/lp pooling over windows of data (N, C, *S)."""
    x = float_array(data)
    nd = _spatial("pooling", x, layout)
    if pooling_convention not in ("valid", "full"):
        raise UnsupportedError(
            f"pooling: pooling_convention {pooling_convention!r} is not supported (valid, full)" + at()
        )
    if global_pool:
        kern, st, pd = tuple(x.shape[2:]), (1,) * nd, (0,) * nd
    else:
        if kernel is None:
            raise ShapeError("pooling: kernel is required unless global_pool=True" + at())
        kern = _ints("kernel", kernel, nd, 1, "pooling")
        st = _ints("stride", stride, nd, 1, "pooling")
        pd = _ints("pad", pad, nd, 0, "pooling")
    p = {"kernel": kern, "stride": st, "pad": pd, "full": pooling_convention == "full",
         "count_include_pad": True if count_include_pad is None else bool(count_include_pad)}
    if pool_type in ("max", "avg", "sum"):
        return apply(Op.POOL, [x], dict(p, pool_type=pool_type))[0]
    if pool_type != "lp":
        raise ValueError(f"pooling: pool_type must be max, avg, sum or lp, got {pool_type!r}" + at())
    # MXNet's lp pooling: (sum over the window of x**p) ** (1/p), signed for odd p
    pv = 2 if p_value is None else int(p_value)
    if pv == 1:
        return apply(Op.POOL, [x], dict(p, pool_type="sum"))[0]
    if pv == 2:
        return _np.sqrt(apply(Op.POOL, [_np.square(x)], dict(p, pool_type="sum"))[0])
    if pv == 3:
        s = apply(Op.POOL, [_np.power(x, 3)], dict(p, pool_type="sum"))[0]
        return _np.multiply(_np.sign(s), _np.power(_np.abs(s), 1.0 / 3.0))
    raise UnsupportedError(f"pooling: p_value must be 1, 2 or 3 for lp pooling, got {p_value}" + at())


def fully_connected(x: Any, weight: Any, bias: Any = None, num_hidden: Optional[int] = None, no_bias: bool = True,
                    flatten: bool = True, **kwargs: Any) -> Array:
    """x @ weight.T (+ bias): weight (num_hidden, in); `flatten` folds all but the first axis."""
    a, w = float_array(x), as_array(weight)
    if flatten and a.ndim != 2:
        a = _np.reshape(a, (a.shape[0], -1) if a.ndim else (1, 1))
    if w.ndim != 2 or (num_hidden is not None and w.shape[0] != num_hidden) or w.shape[1] != a.shape[-1]:
        raise ShapeError(
            f"fully_connected: weight {tuple(w.shape)} {w.dtype} must be (num_hidden={num_hidden}, {a.shape[-1]}) "
            f"for data {tuple(as_array(x).shape)}" + at()
        )
    y = _np.matmul(a, _np.transpose(w))
    if no_bias or bias is None:
        return y
    return _np.add(y, as_array(bias))


def embedding(data: Any, weight: Any, input_dim: Optional[int] = None, output_dim: Optional[int] = None,
              dtype: Any = "float32", sparse_grad: bool = False, **kwargs: Any) -> Array:
    """weight[data] along axis 0 (indices clipped to the table); repeated ids accumulate in
    the weight's gradient. `sparse_grad` is accepted: gradients are dense arrays here."""
    w = as_array(weight)
    idx = as_array(data)
    if w.ndim != 2 or (input_dim is not None and w.shape[0] != input_dim) or (
        output_dim is not None and w.shape[1] != output_dim
    ):
        raise ShapeError(
            f"embedding: weight {tuple(w.shape)} {w.dtype} must be "
            f"(input_dim={input_dim}, output_dim={output_dim})" + at()
        )
    if idx.dtype.kind == "f":
        idx = cast(idx, to_dtype("int64"))
    return _np.take(w, idx, axis=0, mode="clip")


def batch_dot(a: Any, b: Any, transpose_a: bool = False, transpose_b: bool = False,
              forward_stype: str = "default") -> Array:
    """Batched matrix product with optional transposes (MXNet's signature)."""
    from .np.linalg import batch_dot as _bd

    return _bd(a, b, transpose_a=transpose_a, transpose_b=transpose_b)


def sequence_mask(data: Any = None, sequence_length: Any = None, use_sequence_length: bool = False,
                  value: float = 0.0, axis: int = 0, **kwargs: Any) -> Array:
    """Positions at or past each sequence's length (along `axis`, 0 or 1) set to `value`."""
    x = as_array(data)
    if not use_sequence_length or sequence_length is None:
        return x
    if axis not in (0, 1) or x.ndim < 2:
        raise ShapeError(f"sequence_mask: axis must be 0 or 1 of data with 2+ dims, got axis {axis}, "
                         f"data {tuple(x.shape)}" + at())
    ln = as_array(sequence_length)
    batch_axis = 1 - axis
    if ln.shape != (x.shape[batch_axis],):
        raise ShapeError(f"sequence_mask: sequence_length {tuple(ln.shape)} must be ({x.shape[batch_axis]},) "
                         f"for data {tuple(x.shape)} with axis={axis}" + at())
    t = _np.arange(x.shape[axis], dtype="float64", device=x.device)
    lf = cast(ln, to_dtype("float64"))
    keep = _np.less(_np.reshape(t, (-1, 1)), _np.reshape(lf, (1, -1))) if axis == 0 else _np.less(
        _np.reshape(t, (1, -1)), _np.reshape(lf, (-1, 1)))
    keep = _np.reshape(keep, keep.shape + (1,) * (x.ndim - 2))
    fill = _np.full((), value, dtype=x.dtype, device=x.device)
    return _np.where(_np.broadcast_to(keep, x.shape), x, _np.broadcast_to(fill, x.shape))
