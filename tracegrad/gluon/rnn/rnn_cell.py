"""Recurrent cells: RNNCell, LSTMCell, GRUCell, SequentialRNNCell (MXNet 2.x semantics).

A cell maps (inputs (N, I), states) to (output, new states); `unroll` runs it over a
sequence in a Python loop (under hybridize()/jit the loop becomes one compiled program).
Gate order in the weights is MXNet's: LSTM [in, forget, cell, out], GRU [reset, update, new].
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from ... import np as _np
from ... import npx as _npx
from ..block import HybridBlock
from ..parameter import Parameter

__all__ = ["RecurrentCell", "HybridRecurrentCell", "RNNCell", "LSTMCell", "GRUCell", "SequentialRNNCell",
           "HybridSequentialRNNCell"]

_ACTS: dict[str, Callable] = {
    "tanh": _np.tanh, "relu": _npx.relu, "sigmoid": _npx.sigmoid,
    "softsign": lambda x: x / (1.0 + _np.abs(x)),
}  # fmt: skip


def _act(name: Any) -> Callable:
    if callable(name):
        return name
    if name not in _ACTS:
        raise ValueError(f"unknown activation {name!r} for a recurrent cell; use tanh, relu, sigmoid or softsign")
    return _ACTS[name]


def format_sequence(length: int, inputs: Any, layout: str) -> tuple[list, int]:
    """The per-step inputs (a list of (N, ...) arrays) and the time axis of `layout`."""
    axis = layout.find("T")
    if axis < 0:
        raise ValueError(f"layout {layout!r} has no time axis 'T'")
    if isinstance(inputs, (list, tuple)):
        steps = list(inputs)
    else:
        if inputs.shape[axis] != length:
            raise ValueError(f"unroll: length={length} but the inputs have {inputs.shape[axis]} steps along axis "
                             f"{axis} ({layout})")
        steps = [_np.squeeze(s, axis=axis) for s in _np.split(inputs, length, axis=axis)]
    if len(steps) != length:
        raise ValueError(f"unroll: length={length} but {len(steps)} input steps were given")
    return steps, axis


class RecurrentCell(HybridBlock):
    """Base class: subclasses define state_info(batch_size) and forward(inputs, states)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._modified = False

    def reset(self) -> None:
        for c in self._children.values():
            if isinstance(c, RecurrentCell):
                c.reset()

    def state_info(self, batch_size: int = 0) -> list[dict]:
        raise NotImplementedError(f"{type(self).__name__} must define state_info")

    def begin_state(self, batch_size: int = 0, func: Callable = _np.zeros, **kwargs: Any) -> list:
        """Initial states (zeros by default) for a batch of `batch_size`."""
        states = []
        for info in self.state_info(batch_size):
            info = dict(info or {})
            info.update(kwargs)
            info.pop("__layout__", None)
            shape = info.pop("shape", ())
            dtype = info.pop("dtype", "float32")
            info.pop("device", None)
            info.pop("ctx", None)
            states.append(func(shape=shape, dtype=dtype, **info))
        return states

    def unroll(self, length: int, inputs: Any, begin_state: Any = None, layout: str = "NTC",
               merge_outputs: Optional[bool] = None, valid_length: Any = None) -> tuple[Any, list]:
        """Run the cell over `length` steps; outputs stacked along T when merge_outputs (or when
        the inputs were one array and merge_outputs is None); with valid_length (N,), steps
        past each sequence's length give zero outputs and keep the last valid states."""
        self.reset()
        steps, axis = format_sequence(length, inputs, layout)
        if begin_state is None:
            begin_state = self.begin_state(steps[0].shape[0], dtype=steps[0].dtype)
        states = list(begin_state)
        outputs = []
        for t, x in enumerate(steps):
            out, new = self(x, states)
            if valid_length is not None:
                keep = _np.expand_dims(_np.greater(valid_length, t), -1)
                out = _np.where(keep, out, _np.zeros_like(out))
                new = [_np.where(keep, n, s) for n, s in zip(new, states)]
            outputs.append(out)
            states = list(new)
        if merge_outputs is None:
            merge_outputs = not isinstance(inputs, (list, tuple))
        if merge_outputs:
            return _np.stack(outputs, axis=axis), states
        return outputs, states

    def __call__(self, inputs: Any, states: Any = None, *args: Any) -> Any:
        if states is None:
            states = self.begin_state(inputs.shape[0], dtype=inputs.dtype)
        return super().__call__(inputs, states, *args)


HybridRecurrentCell = RecurrentCell


class _GatedCell(RecurrentCell):
    _gates = 1

    def __init__(self, hidden_size: int, i2h_weight_initializer: Any = None, h2h_weight_initializer: Any = None,
                 i2h_bias_initializer: Any = "zeros", h2h_bias_initializer: Any = "zeros", input_size: int = 0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        g = self._gates * hidden_size
        self._hidden_size, self._input_size = int(hidden_size), int(input_size)
        self.i2h_weight = Parameter("i2h_weight", shape=(g, input_size), init=i2h_weight_initializer,
                                    allow_deferred_init=True)
        self.h2h_weight = Parameter("h2h_weight", shape=(g, hidden_size), init=h2h_weight_initializer,
                                    allow_deferred_init=True)
        self.i2h_bias = Parameter("i2h_bias", shape=(g,), init=i2h_bias_initializer, allow_deferred_init=True)
        self.h2h_bias = Parameter("h2h_bias", shape=(g,), init=h2h_bias_initializer, allow_deferred_init=True)

    def infer_shape(self, inputs: Any, *args: Any) -> None:
        self.i2h_weight.shape = (self._gates * self._hidden_size, int(inputs.shape[-1]))

    def _proj(self, x: Any, h: Any) -> tuple[Any, Any]:
        i2h = _np.matmul(x, _np.transpose(self.i2h_weight.data())) + self.i2h_bias.data()
        h2h = _np.matmul(h, _np.transpose(self.h2h_weight.data())) + self.h2h_bias.data()
        return i2h, h2h

    def _repr_args(self) -> str:
        n_in = self.i2h_weight.shape[1]
        return f"{n_in if n_in > 0 else -1} -> {self._hidden_size * self._gates}"


class RNNCell(_GatedCell):
    """h' = act(x W_i2h^T + b_i2h + h W_h2h^T + b_h2h); output h'."""

    def __init__(self, hidden_size: int, activation: Any = "tanh", i2h_weight_initializer: Any = None,
                 h2h_weight_initializer: Any = None, i2h_bias_initializer: Any = "zeros",
                 h2h_bias_initializer: Any = "zeros", input_size: int = 0, **kwargs: Any) -> None:
        super().__init__(hidden_size, i2h_weight_initializer, h2h_weight_initializer, i2h_bias_initializer,
                         h2h_bias_initializer, input_size, **kwargs)
        self._activation = activation

    def _repr_args(self) -> str:
        act = f", {self._activation}" if isinstance(self._activation, str) else ""
        return super()._repr_args() + act

    def state_info(self, batch_size: int = 0) -> list[dict]:
        return [{"shape": (batch_size, self._hidden_size), "__layout__": "NC"}]

    def forward(self, inputs: Any, states: Any) -> tuple[Any, list]:
        i2h, h2h = self._proj(inputs, states[0])
        out = _act(self._activation)(i2h + h2h)
        return out, [out]


class _RecurrentGatedCell(_GatedCell):
    """A gated cell with a recurrent (gate) activation beside its output activation."""

    def __init__(self, hidden_size: int, i2h_weight_initializer: Any = None, h2h_weight_initializer: Any = None,
                 i2h_bias_initializer: Any = "zeros", h2h_bias_initializer: Any = "zeros", input_size: int = 0,
                 activation: Any = "tanh", recurrent_activation: Any = "sigmoid", **kwargs: Any) -> None:
        super().__init__(hidden_size, i2h_weight_initializer, h2h_weight_initializer, i2h_bias_initializer,
                         h2h_bias_initializer, input_size, **kwargs)
        self._activation, self._recurrent_activation = activation, recurrent_activation


class LSTMCell(_RecurrentGatedCell):
    """Gates [i, f, g, o] from x and h; c' = f c + i g; h' = o act(c'); output h', states [h', c']."""

    _gates = 4

    def state_info(self, batch_size: int = 0) -> list[dict]:
        s = {"shape": (batch_size, self._hidden_size), "__layout__": "NC"}
        return [dict(s), dict(s)]

    def forward(self, inputs: Any, states: Any) -> tuple[Any, list]:
        i2h, h2h = self._proj(inputs, states[0])
        gates = i2h + h2h
        i, f, g, o = _np.split(gates, 4, axis=-1)
        rec, act = _act(self._recurrent_activation), _act(self._activation)
        c = rec(f) * states[1] + rec(i) * act(g)
        h = rec(o) * act(c)
        return h, [h, c]


class GRUCell(_RecurrentGatedCell):
    """r, z from x and h; n = act(x_n + r (h W_hn + b_hn)); h' = (1 - z) n + z h."""

    _gates = 3

    def state_info(self, batch_size: int = 0) -> list[dict]:
        return [{"shape": (batch_size, self._hidden_size), "__layout__": "NC"}]

    def forward(self, inputs: Any, states: Any) -> tuple[Any, list]:
        h = states[0]
        i2h, h2h = self._proj(inputs, h)
        i_r, i_z, i_n = _np.split(i2h, 3, axis=-1)
        h_r, h_z, h_n = _np.split(h2h, 3, axis=-1)
        rec = _act(self._recurrent_activation)
        r, z = rec(i_r + h_r), rec(i_z + h_z)
        n = _act(self._activation)(i_n + r * h_n)
        out = (1.0 - z) * n + z * h
        return out, [out]


class SequentialRNNCell(RecurrentCell):
    """Cells stacked: each one's output is the next one's input; states concatenated."""

    def add(self, cell: RecurrentCell) -> None:
        self.register_child(cell)

    def __getitem__(self, i: int) -> RecurrentCell:
        return list(self._children.values())[i]

    def __len__(self) -> int:
        return len(self._children)

    def state_info(self, batch_size: int = 0) -> list[dict]:
        return [s for c in self._children.values() for s in c.state_info(batch_size)]

    def begin_state(self, batch_size: int = 0, func: Callable = _np.zeros, **kwargs: Any) -> list:
        return [s for c in self._children.values() for s in c.begin_state(batch_size, func, **kwargs)]

    def forward(self, inputs: Any, states: Any) -> tuple[Any, list]:
        out, new, p = inputs, [], 0
        for cell in self._children.values():
            n = len(cell.state_info())
            out, st = cell(out, list(states[p:p + n]))
            p += n
            new.extend(st)
        return out, new

    def unroll(self, length: int, inputs: Any, begin_state: Any = None, layout: str = "NTC",
               merge_outputs: Optional[bool] = None, valid_length: Any = None) -> tuple[Any, list]:
        self.reset()
        steps, _ = format_sequence(length, inputs, layout)
        if begin_state is None:
            begin_state = self.begin_state(steps[0].shape[0], dtype=steps[0].dtype)
        cells = list(self._children.values())
        p, states, cur = 0, [], inputs
        for k, cell in enumerate(cells):
            n = len(cell.state_info())
            merge = merge_outputs if k == len(cells) - 1 else None
            cur, st = cell.unroll(length, cur, begin_state[p:p + n], layout, merge, valid_length)
            p += n
            states.extend(st)
        return cur, states


HybridSequentialRNNCell = SequentialRNNCell

