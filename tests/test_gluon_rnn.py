"""gluon.rnn: cells against numpy references, unroll/begin_state/valid_length, the fused
layers against the cells (same weights), gradients vs finite differences, hybridize."""

from __future__ import annotations

import numpy
import pytest

from tracegrad import autograd, np
from tracegrad import initializer as init
from tracegrad.gluon import nn, rnn

from gluon_helpers import check_block_gradients

RS = numpy.random.RandomState(0)


def sig(v):
    return 1 / (1 + numpy.exp(-v))


def _weights(cell):
    return [p.data().asnumpy().astype(numpy.float64) for p in cell.collect_params().values()]


def ref_lstm(x, h, c, wi, wh, bi, bh):
    i, f, g, o = numpy.split(x @ wi.T + bi + h @ wh.T + bh, 4, axis=-1)
    c = sig(f) * c + sig(i) * numpy.tanh(g)
    return sig(o) * numpy.tanh(c), c


def ref_gru(x, h, wi, wh, bi, bh):
    i_r, i_z, i_n = numpy.split(x @ wi.T + bi, 3, axis=-1)
    h_r, h_z, h_n = numpy.split(h @ wh.T + bh, 3, axis=-1)
    r, z = sig(i_r + h_r), sig(i_z + h_z)
    return (1 - z) * numpy.tanh(i_n + r * h_n) + z * h


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_cell_step_matches_numpy(kind):
    cell = {"rnn": rnn.RNNCell(4, activation="relu"), "lstm": rnn.LSTMCell(4), "gru": rnn.GRUCell(4)}[kind]
    cell.initialize(init.Normal(0.5))
    x = RS.normal(size=(3, 5))
    states = cell.begin_state(3)
    assert all(s.shape == (3, 4) for s in states) and len(states) == (2 if kind == "lstm" else 1)
    states = [np.array(RS.normal(size=(3, 4))) for _ in states]
    out, new = cell(np.array(x), states)
    wi, wh, bi, bh = _weights(cell)
    assert wi.shape == ({"rnn": 1, "lstm": 4, "gru": 3}[kind] * 4, 5)
    h0 = states[0].asnumpy()
    if kind == "rnn":
        ref = numpy.maximum(x @ wi.T + bi + h0 @ wh.T + bh, 0)
        refs = [ref]
    elif kind == "lstm":
        ref, c = ref_lstm(x, h0, states[1].asnumpy(), wi, wh, bi, bh)
        refs = [ref, c]
    else:
        ref = ref_gru(x, h0, wi, wh, bi, bh)
        refs = [ref]
    numpy.testing.assert_allclose(out.asnumpy(), ref, rtol=1e-5, atol=1e-6)
    for s, r in zip(new, refs):
        numpy.testing.assert_allclose(s.asnumpy(), r, rtol=1e-5, atol=1e-6)


def test_unroll_layouts_merge_and_valid_length():
    cell = rnn.LSTMCell(3, input_size=2)
    cell.initialize(init.Normal(0.5))
    x = RS.normal(size=(2, 4, 2))  # NTC
    outs, states = cell.unroll(4, np.array(x), layout="NTC", merge_outputs=True)
    assert outs.shape == (2, 4, 3) and len(states) == 2
    wi, wh, bi, bh = _weights(cell)
    h = c = numpy.zeros((2, 3))
    for t in range(4):
        h, c = ref_lstm(x[:, t], h, c, wi, wh, bi, bh)
        numpy.testing.assert_allclose(outs.asnumpy()[:, t], h, rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(states[1].asnumpy(), c, rtol=1e-5, atol=1e-6)
    listed, _ = cell.unroll(4, [np.array(x[:, t]) for t in range(4)])
    assert isinstance(listed, list) and len(listed) == 4
    tnc, _ = cell.unroll(4, np.array(x.transpose(1, 0, 2)), layout="TNC")
    numpy.testing.assert_allclose(tnc.asnumpy().transpose(1, 0, 2), outs.asnumpy(), rtol=1e-6)
    vl = np.array([2, 4])
    masked, st = cell.unroll(4, np.array(x), layout="NTC", merge_outputs=True, valid_length=vl)
    m = masked.asnumpy()
    numpy.testing.assert_array_equal(m[0, 2:], 0)
    numpy.testing.assert_allclose(m[1], outs.asnumpy()[1], rtol=1e-6)
    numpy.testing.assert_allclose(st[0].asnumpy()[0], outs.asnumpy()[0, 1], rtol=1e-6)
    with pytest.raises(ValueError, match="length=5"):
        cell.unroll(5, np.array(x))


def test_sequential_rnn_cell_stacks():
    seq = rnn.SequentialRNNCell()
    seq.add(rnn.GRUCell(4))
    seq.add(rnn.RNNCell(3))
    seq.initialize(init.Normal(0.5))
    x = RS.normal(size=(2, 3, 5))
    out, states = seq.unroll(3, np.array(x), merge_outputs=True)
    assert out.shape == (2, 3, 3) and [s.shape for s in states] == [(2, 4), (2, 3)]
    assert list(seq.collect_params())[:2] == ["0.i2h_weight", "0.h2h_weight"]
    a, _ = seq[0].unroll(3, np.array(x), merge_outputs=True)
    b, _ = seq[1].unroll(3, a, merge_outputs=True)
    numpy.testing.assert_allclose(out.asnumpy(), b.asnumpy(), rtol=1e-6)
    step_out, step_states = seq(np.array(x[:, 0]), seq.begin_state(2))
    numpy.testing.assert_allclose(step_out.asnumpy(), out.asnumpy()[:, 0], rtol=1e-6)


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh"])
def test_fused_layer_equals_cells_with_the_same_weights(mode):
    hidden, n_in = 3, 2
    make = {"lstm": lambda: rnn.LSTM(hidden, num_layers=2, bidirectional=True),
            "gru": lambda: rnn.GRU(hidden, num_layers=2, bidirectional=True),
            "rnn_tanh": lambda: rnn.RNN(hidden, num_layers=2, activation="tanh", bidirectional=True)}[mode]
    layer = make()
    layer.initialize(init.Normal(0.5))
    x = RS.normal(size=(4, 2, n_in))  # TNC
    out, states = layer(np.array(x), layer.begin_state(2))
    assert out.shape == (4, 2, 2 * hidden) and states[0].shape == (4, 2, hidden)
    flat = layer.rnn_param.data().asnumpy()
    pieces, pos = {}, 0
    for name, shape in layer._pieces():
        size = int(numpy.prod(shape))
        pieces[name] = flat[pos:pos + size].reshape(shape).astype(numpy.float64)
        pos += size
    assert pos == flat.size
    seq = x.astype(numpy.float64)
    for lay in range(2):
        outs = []
        for d, pre in enumerate(("l", "r")):
            w = [pieces[f"{pre}{lay}_{k}"] for k in ("i2h_weight", "h2h_weight", "i2h_bias", "h2h_bias")]
            h = c = numpy.zeros((2, hidden))
            ys = []
            steps = seq[::-1] if d else seq
            for t in range(4):
                if mode == "lstm":
                    h, c = ref_lstm(steps[t], h, c, *w)
                elif mode == "gru":
                    h = ref_gru(steps[t], h, *w)
                else:
                    h = numpy.tanh(steps[t] @ w[0].T + w[2] + h @ w[1].T + w[3])
                ys.append(h)
            ys = numpy.stack(ys)
            outs.append(ys[::-1] if d else ys)
            numpy.testing.assert_allclose(states[0].asnumpy()[2 * lay + d], h, rtol=1e-5, atol=1e-6)
        seq = numpy.concatenate(outs, axis=-1)
    numpy.testing.assert_allclose(out.asnumpy(), seq, rtol=1e-5, atol=1e-6)


def test_layer_layout_states_and_errors():
    layer = rnn.LSTM(3, layout="NTC")
    layer.initialize()
    x = np.ones((2, 5, 4))
    y = layer(x)
    assert y.shape == (2, 5, 3) and layer.rnn_param.shape == (4 * 3 * (4 + 3 + 2),)
    y2, st = layer(x, layer.begin_state(2))
    numpy.testing.assert_array_equal(y.asnumpy(), y2.asnumpy())
    with pytest.raises(ValueError, match="Invalid recurrent state shape"):
        layer(x, [np.zeros((1, 3, 3)), np.zeros((1, 3, 3))])
    with pytest.raises(ValueError, match="layout"):
        rnn.GRU(3, layout="CNT")
    assert repr(layer) == "LSTM(4 -> 3, NTC)"
    assert list(layer.collect_params()) == ["rnn_param"]


def test_rnn_gradients_match_finite_differences():
    layer = rnn.GRU(2, bidirectional=True, input_size=2)
    layer.initialize(init.Normal(0.5))
    layer.cast("float64")
    check_block_gradients(layer, RS.normal(size=(3, 2, 2)), rtol=1e-5, atol=1e-7)
    cell = rnn.LSTMCell(2, input_size=3)
    cell.initialize(init.Normal(0.5))
    cell.cast("float64")

    class Unrolled(nn.HybridBlock):
        def __init__(self, c):
            super().__init__()
            self.c = c

        def forward(self, x):
            return self.c.unroll(3, x, merge_outputs=True)[0]

    check_block_gradients(Unrolled(cell), RS.normal(size=(2, 3, 3)), rtol=1e-5, atol=1e-7)


def test_hybridized_lstm_equals_plain_and_trains():
    layer = rnn.LSTM(4, num_layers=2, dropout=0.0)
    layer.initialize(init.Xavier())
    x = np.array(RS.normal(size=(5, 3, 2)))
    plain = layer(x).asnumpy()
    layer.hybridize()
    numpy.testing.assert_allclose(layer(x).asnumpy(), plain, rtol=1e-6, atol=1e-7)
    numpy.testing.assert_allclose(layer(x).asnumpy(), plain, rtol=1e-6, atol=1e-7)
    assert layer.jit_function.counters.replays >= 1
    with autograd.record():
        loss = (layer(x) ** 2).sum()
    loss.backward()
    g = layer.rnn_param.grad().asnumpy()
    assert g.shape == layer.rnn_param.shape and numpy.abs(g).sum() > 0


def test_load_mxnet_1x_rnn_pieces_into_the_fused_parameter(tmp_path):
    from tracegrad import serialization

    src = rnn.LSTM(3, num_layers=2, bidirectional=True, input_size=2)
    src.initialize(init.Normal(0.5))
    x = np.array(RS.normal(size=(4, 2, 2)))
    y = src(x).asnumpy()
    flat = src.rnn_param.data().asnumpy()
    pieces, pos = {}, 0
    for name, shape in src._pieces():  # MXNet 1.x: one parameter per piece, prefixed names
        size = int(numpy.prod(shape))
        pieces[f"lstm0_{name}"] = flat[pos:pos + size].reshape(shape)
        pos += size
    f = str(tmp_path / "lstm_1x.params")
    serialization.save_legacy(f, dict(reversed(list(pieces.items()))))  # any order in the file
    layer = rnn.LSTM(3, num_layers=2, bidirectional=True)
    layer.load_parameters(f)  # the fused shape comes from the pieces
    numpy.testing.assert_allclose(layer(x).asnumpy(), y, rtol=1e-6)


def test_unsupported_rnn_options_are_clear():
    from tracegrad.errors import UnsupportedError

    with pytest.raises(UnsupportedError, match="use_sequence_length"):
        rnn.LSTM(3, use_sequence_length=True)
    with pytest.raises(UnsupportedError, match="projection_size"):
        rnn.LSTM(3, projection_size=2)
    with pytest.raises(UnsupportedError, match="state clipping"):
        rnn.LSTM(3, state_clip_min=-1.0)
    layer = rnn.GRU(2, input_size=2)
    layer.initialize()
    with pytest.raises(UnsupportedError, match="sequence_length"):
        layer(np.ones((3, 1, 2)), sequence_length=np.array([2]))
