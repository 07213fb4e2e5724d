"""Fused recurrent layers: RNN, LSTM, GRU (num_layers, bidirectional, dropout, TNC/NTC).

As MXNet 2.x, all weights live in ONE flat Parameter `rnn_param` (so parameter files
interoperate): every layer and direction's i2h then h2h weight, then every layer and
direction's i2h then h2h bias. The forward slices it and runs the cells' equations in a
Python loop over time (the input projections of all steps in one matmul per layer)."""

from __future__ import annotations

from typing import Any, Optional

import numpy

from ... import initializer
from ... import np as _np
from ... import npx as _npx
from ...errors import UnsupportedError
from ..block import HybridBlock
from ..parameter import Parameter, tensor_types
from .rnn_cell import _act

__all__ = ["RNN", "LSTM", "GRU"]

_GATES = {"rnn_relu": 1, "rnn_tanh": 1, "lstm": 4, "gru": 3}


def _pieces(mode: str, num_layers: int, dirs: int, hidden: int, input_size: int) -> list[tuple[str, tuple]]:
    """(name, shape) of each slice of rnn_param, in MXNet's order."""
    g = _GATES[mode] * hidden
    out = []
    for kind in ("weight", "bias"):
        for layer in range(num_layers):
            n_in = input_size if layer == 0 else hidden * dirs
            for d in range(dirs):
                for conn, cols in (("i2h", n_in), ("h2h", hidden)):
                    name = f"{'lr'[d]}{layer}_{conn}_{kind}"
                    out.append((name, (g, cols) if kind == "weight" else (g,)))
    return out


class _FusedInit(initializer.Initializer):
    """Initializes rnn_param piece by piece (weights: the given initializers, else the global
    one; biases: zeros unless given)."""

    def __init__(self, layer: "_RNNLayer", inits: dict) -> None:
        super().__init__()
        self._layer = layer
        self._inits = inits

    def _init_weight(self, desc: Any, arr: Any) -> None:
        chunks = []
        default = getattr(desc, "global_init", None) or initializer.Uniform()
        for name, shape in self._layer._pieces():
            conn, kind = name.split("_")[1], name.split("_")[2]
            init = self._inits.get(f"{conn}_{kind}")
            piece = _np.zeros(shape, dtype=numpy.dtype(arr.dtype))
            initializer.create(init if init is not None else default)._init_weight(initializer.InitDesc(name), piece)
            chunks.append(piece.asnumpy().reshape(-1))
        arr[...] = numpy.concatenate(chunks)


class _RNNLayer(HybridBlock):
    def __init__(self, hidden_size: int, num_layers: int, layout: str, dropout: float, bidirectional: bool,
                 input_size: int, i2h_weight_initializer: Any, h2h_weight_initializer: Any, i2h_bias_initializer: Any,
                 h2h_bias_initializer: Any, mode: str, dtype: Any = "float32", projection_size: Any = None,
                 use_sequence_length: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if layout not in ("TNC", "NTC"):
            raise ValueError(f"Invalid layout {layout}; must be one of ['TNC' or 'NTC']")
        if projection_size:
            raise UnsupportedError("LSTM projection_size (LSTMP) is not supported")
        if use_sequence_length:
            raise UnsupportedError(f"{type(self).__name__}(use_sequence_length=True) is not supported; run the "
                                   "cells with unroll(valid_length=...) or mask the padded steps")
        self._hidden_size, self._num_layers, self._layout = int(hidden_size), int(num_layers), layout
        self._dropout, self._dir, self._input_size, self._mode = float(dropout), 2 if bidirectional else 1, \
            int(input_size), mode
        self._use_sequence_length = use_sequence_length
        inits = {"i2h_weight": i2h_weight_initializer, "h2h_weight": h2h_weight_initializer,
                 "i2h_bias": i2h_bias_initializer, "h2h_bias": h2h_bias_initializer}
        size = self._param_size(self._input_size) if self._input_size else -1
        self.rnn_param = Parameter("rnn_param", shape=(size,), init=_FusedInit(self, inits),
                                   allow_deferred_init=True, dtype=dtype)

    def _pieces(self, input_size: Optional[int] = None) -> list[tuple[str, tuple]]:
        n_in = self._input_size if input_size is None else input_size
        return _pieces(self._mode, self._num_layers, self._dir, self._hidden_size, n_in)

    def _param_size(self, input_size: int) -> int:
        return sum(int(numpy.prod(s)) for _, s in _pieces(self._mode, self._num_layers, self._dir,
                                                           self._hidden_size, input_size))

    def infer_shape(self, inputs: Any, *args: Any) -> None:
        if inputs.ndim != 3:
            raise ValueError(f"{type(self).__name__}: input should be a rank-3 tensor ({self._layout}), got shape "
                             f"{tuple(inputs.shape)}")
        self._input_size = int(inputs.shape[2])
        self.rnn_param.shape = (self._param_size(self._input_size),)

    def state_info(self, batch_size: int = 0) -> list[dict]:
        n = 2 if self._mode == "lstm" else 1
        return [{"shape": (self._num_layers * self._dir, batch_size, self._hidden_size), "__layout__": "LNC"}
                for _ in range(n)]

    def begin_state(self, batch_size: int = 0, func: Any = _np.zeros, **kwargs: Any) -> list:
        out = []
        for info in self.state_info(batch_size):
            kw = dict(kwargs)
            kw.pop("device", None)
            kw.pop("ctx", None)
            out.append(func(shape=info["shape"], dtype=kw.pop("dtype", "float32"), **kw))
        return out

    def __call__(self, inputs: Any, states: Any = None, sequence_length: Any = None, **kwargs: Any) -> Any:
        skip = states is None
        if skip:
            states = self.begin_state(inputs.shape[self._layout.find("N")], dtype=inputs.dtype)
        if isinstance(states, tensor_types()):
            states = [states]
        if sequence_length is not None:
            raise UnsupportedError(f"{type(self).__name__}: sequence_length is not supported; run the cells with "
                                   "unroll(valid_length=...) or mask the padded steps")
        out, new_states = super().__call__(inputs, list(states), **kwargs)
        return out if skip else (out, new_states)

    def forward(self, inputs: Any, states: Any, sequence_length: Any = None) -> tuple[Any, list]:
        n = inputs.shape[self._layout.find("N")]
        for s, info in zip(states, self.state_info(n)):
            if tuple(s.shape) != info["shape"]:
                raise ValueError(f"Invalid recurrent state shape. Expecting {info['shape']}, got {tuple(s.shape)}.")
        x = _np.swapaxes(inputs, 0, 1) if self._layout == "NTC" else inputs
        params = self._unpack(self.rnn_param.data(), int(x.shape[2]))
        lstm = self._mode == "lstm"
        h_out, c_out = [], []
        for layer in range(self._num_layers):
            outs = []
            for d in range(self._dir):
                k = layer * self._dir + d
                h0 = states[0][k]
                c0 = states[1][k] if lstm else None
                seq = _np.flip(x, axis=0) if d == 1 else x
                y, h, c = self._run(seq, params, f"{'lr'[d]}{layer}", h0, c0, sequence_length)
                outs.append(_np.flip(y, axis=0) if d == 1 else y)
                h_out.append(h)
                c_out.append(c)
            x = outs[0] if self._dir == 1 else _np.concatenate(outs, axis=-1)
            if self._dropout > 0 and layer < self._num_layers - 1:
                x = _npx.dropout(x, p=self._dropout)
        out = _np.swapaxes(x, 0, 1) if self._layout == "NTC" else x
        new_states = [_np.stack(h_out, axis=0)] + ([_np.stack(c_out, axis=0)] if lstm else [])
        return out, new_states

    def _unpack(self, flat: Any, input_size: int) -> dict:
        if self._param_size(input_size) != flat.shape[0]:
            raise ValueError(f"{type(self).__name__}: rnn_param has {flat.shape[0]} values but input size {input_size} "
                             f"needs {self._param_size(input_size)}")
        out, pos = {}, 0
        for name, shape in self._pieces(input_size):
            size = int(numpy.prod(shape))
            out[name] = _np.reshape(flat[pos:pos + size], shape)
            pos += size
        return out

    def _run(self, seq: Any, params: dict, pre: str, h: Any, c: Any, sequence_length: Any) -> tuple[Any, Any, Any]:
        t_len, n = seq.shape[0], seq.shape[1]
        wi, wh = params[f"{pre}_i2h_weight"], params[f"{pre}_h2h_weight"]
        bi, bh = params[f"{pre}_i2h_bias"], params[f"{pre}_h2h_bias"]
        xi = _np.reshape(_np.matmul(_np.reshape(seq, (t_len * n, -1)), _np.transpose(wi)) + bi, (t_len, n, -1))
        wh_t = _np.transpose(wh)
        ys = []
        for t in range(t_len):
            i2h = xi[t]
            h2h = _np.matmul(h, wh_t) + bh
            if self._mode == "lstm":
                i, f, g, o = _np.split(i2h + h2h, 4, axis=-1)
                c = _npx.sigmoid(f) * c + _npx.sigmoid(i) * _np.tanh(g)
                h = _npx.sigmoid(o) * _np.tanh(c)
            elif self._mode == "gru":
                i_r, i_z, i_n = _np.split(i2h, 3, axis=-1)
                h_r, h_z, h_n = _np.split(h2h, 3, axis=-1)
                r, z = _npx.sigmoid(i_r + h_r), _npx.sigmoid(i_z + h_z)
                h = (1.0 - z) * _np.tanh(i_n + r * h_n) + z * h
            else:
                h = _act("relu" if self._mode == "rnn_relu" else "tanh")(i2h + h2h)
            ys.append(h)
        return _np.stack(ys, axis=0), h, c

    def __repr__(self) -> str:
        s = f"{type(self).__name__}({self._input_size or None} -> {self._hidden_size}, {self._layout}"
        if self._num_layers != 1:
            s += f", num_layers={self._num_layers}"
        if self._dropout:
            s += f", dropout={self._dropout}"
        if self._dir == 2:
            s += ", bidirectional"
        return s + ")"


class RNN(_RNNLayer):
    """Elman RNN layer: h' = act(x W_i2h^T + b_i2h + h W_h2h^T + b_h2h), act 'relu' (default) or 'tanh'."""

    def __init__(self, hidden_size: int, num_layers: int = 1, activation: str = "relu", layout: str = "TNC",
                 dropout: float = 0, bidirectional: bool = False, i2h_weight_initializer: Any = None,
                 h2h_weight_initializer: Any = None, i2h_bias_initializer: Any = "zeros",
                 h2h_bias_initializer: Any = "zeros", input_size: int = 0, dtype: Any = "float32",
                 **kwargs: Any) -> None:
        if activation not in ("relu", "tanh"):
            raise ValueError(f"RNN: activation must be 'relu' or 'tanh', got {activation!r}")
        super().__init__(hidden_size, num_layers, layout, dropout, bidirectional, input_size, i2h_weight_initializer,
                         h2h_weight_initializer, i2h_bias_initializer, h2h_bias_initializer, "rnn_" + activation,
                         dtype, **kwargs)


class LSTM(_RNNLayer):
    """LSTM layer (gates [i, f, g, o]); states [h, c] of shape (num_layers * dirs, N, hidden)."""

    def __init__(self, hidden_size: int, num_layers: int = 1, layout: str = "TNC", dropout: float = 0,
                 bidirectional: bool = False, input_size: int = 0, i2h_weight_initializer: Any = None,
                 h2h_weight_initializer: Any = None, i2h_bias_initializer: Any = "zeros",
                 h2h_bias_initializer: Any = "zeros", projection_size: Optional[int] = None, h2r_weight_initializer: Any = None,
                 state_clip_min: Any = None, state_clip_max: Any = None, state_clip_nan: bool = False,
                 dtype: Any = "float32", **kwargs: Any) -> None:
        if state_clip_min is not None or state_clip_max is not None or state_clip_nan:
            raise UnsupportedError("LSTM state clipping (state_clip_min/max/nan) is not supported")
        super().__init__(hidden_size, num_layers, layout, dropout, bidirectional, input_size, i2h_weight_initializer,
                         h2h_weight_initializer, i2h_bias_initializer, h2h_bias_initializer, "lstm", dtype,
                         projection_size, **kwargs)


class GRU(_RNNLayer):
    """GRU layer (gates [r, z, n], n = tanh(x_n + r (h W_hn + b_hn)))."""

    def __init__(self, hidden_size: int, num_layers: int = 1, layout: str = "TNC", dropout: float = 0,
                 bidirectional: bool = False, input_size: int = 0, i2h_weight_initializer: Any = None,
                 h2h_weight_initializer: Any = None, i2h_bias_initializer: Any = "zeros",
                 h2h_bias_initializer: Any = "zeros", dtype: Any = "float32", **kwargs: Any) -> None:
        super().__init__(hidden_size, num_layers, layout, dropout, bidirectional, input_size, i2h_weight_initializer,
                         h2h_weight_initializer, i2h_bias_initializer, h2h_bias_initializer, "gru", dtype, **kwargs)
