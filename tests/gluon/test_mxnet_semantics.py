"""Losses, metrics, learning-rate schedules, samplers / DataLoader batching and gluon.utils
give what real MXNet 2.0.0b1 gives (tests/fixtures/mxnet/semantics.npz, written by
make_semantics.py with the same constructor texts)."""

from __future__ import annotations

import os
import sys

import numpy
import pytest

from tracegrad import gluon, np
from tracegrad import lr_scheduler as _lrs
from tracegrad.gluon import loss as gloss  # noqa: F401  (the texts)
from tracegrad.gluon import metric  # noqa: F401

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "mxnet",
                       "semantics.npz")
Z = numpy.load(FIXTURE)
sys.path.insert(0, os.path.dirname(FIXTURE))
from batch_rows import flat_batches  # noqa: E402


class mx:  # noqa: N801  (the texts are MXNet code)
    lr_scheduler = _lrs


def _count(kind):
    return len({k.split("|")[1] for k in Z.files if k.startswith(kind + "|")})


@pytest.mark.parametrize("i", range(_count("loss")))
def test_loss(i):
    text, args = str(Z[f"loss|{i}|text"]), str(Z[f"loss|{i}|args"]).split()
    y = eval(text)(*[np.array(Z[f"in|{a}"]) for a in args])
    ref = Z[f"loss|{i}|y"]
    assert y.shape == ref.shape, text
    numpy.testing.assert_allclose(y.asnumpy(), ref, rtol=2e-5, atol=2e-6, err_msg=text)


@pytest.mark.parametrize("i", range(_count("metric")))
def test_metric(i):
    text = str(Z[f"metric|{i}|text"])
    m = eval(text)
    for upd in str(Z[f"metric|{i}|updates"]).split(";"):
        lab, pred = upd.split()
        m.update([np.array(Z[f"in|{lab}"])], [np.array(Z[f"in|{pred}"])])
    names, values = m.get()
    names = names if isinstance(names, list) else [names]
    values = values if isinstance(values, list) else [values]
    assert names == list(Z[f"metric|{i}|names"]), text
    numpy.testing.assert_allclose(numpy.array(values, "f8"), Z[f"metric|{i}|values"], rtol=1e-5, err_msg=text)


@pytest.mark.parametrize("i", range(_count("sched")))
def test_schedule(i):
    text = str(Z[f"sched|{i}|text"])
    s = eval(text)
    numpy.testing.assert_allclose([s(n) for n in range(30)], Z[f"sched|{i}|y"], rtol=1e-12, err_msg=text)


@pytest.mark.parametrize("i", range(_count("batches")))
def test_batches(i):
    text = str(Z[f"batches|{i}|text"])
    numpy.testing.assert_array_equal(flat_batches(eval(text), 2), Z[f"batches|{i}|y"], err_msg=text)


def test_utils():
    x = np.array(Z["utils|x"])
    for even in (True, False):
        for n in (2, 3):
            ref = Z[f"utils|split|{even}|{n}"]
            if ref[0] == -1:
                with pytest.raises(ValueError):
                    gluon.utils.split_data(x, n, even_split=even)
            else:
                assert [p.shape[0] for p in gluon.utils.split_data(x, n, even_split=even)] == list(ref)
    arrays = [np.array(Z["utils|clip_in0"]), np.array(Z["utils|clip_in1"])]
    norm = gluon.utils.clip_global_norm(arrays, 1.5)
    numpy.testing.assert_allclose(float(norm), float(Z["utils|clip_norm"]), rtol=1e-6)
    numpy.testing.assert_allclose(arrays[0].asnumpy(), Z["utils|clip_out0"], rtol=1e-6)
    numpy.testing.assert_allclose(arrays[1].asnumpy(), Z["utils|clip_out1"], rtol=1e-6)


# printed by MXNet 2.0.0b1 (`repr(<text>)`, newlines shown as |)
REPRS = [
    ('nn.LayerNorm()',
     'LayerNorm(eps=1e-05, axis=-1, center=True, scale=True, in_channels=-1)'),
    ('nn.GroupNorm()',
     'GroupNorm(eps=1e-05, num_groups=1, center=True, scale=True, in_channels=-1)'),
    ('nn.InstanceNorm()',
     'InstanceNorm(eps=1e-05, axis=1, center=True, scale=False, in_channels=-1)'),
    ('rnn.LSTMCell(4)',
     'LSTMCell(-1 -> 16)'),
    ('rnn.LSTM(4)',
     'LSTM(None -> 4, TNC)'),
    ('rnn.GRU(3, num_layers=2, bidirectional=True)',
     'GRU(None -> 3, TNC, num_layers=2, bidirectional)'),
    ('nn.Embedding(10, 4)',
     'Embedding(10 -> 4, float32)'),
    ('nn.Conv1DTranspose(3, 2)',
     'Conv1DTranspose(-1 -> 3, kernel_size=(2,), stride=(1,))'),
    ('nn.Dropout(0.3)',
     'Dropout(p = 0.3, axes=())'),
    ("nn.Activation('relu')",
     'Activation(relu)'),
    ('nn.MaxPool2D()',
     'MaxPool2D(size=(2, 2), stride=(2, 2), padding=(0, 0), ceil_mode=False, global_pool=False, pool_type=max, layout=NCHW)'),
    ('nn.AvgPool1D(3, 2, 1)',
     'AvgPool1D(size=(3,), stride=(2,), padding=(1,), ceil_mode=False, global_pool=False, pool_type=avg, layout=NCW)'),
    ('nn.GlobalAvgPool2D()',
     'GlobalAvgPool2D(size=(1, 1), stride=(1, 1), padding=(0, 0), ceil_mode=True, global_pool=True, pool_type=avg, layout=NCHW)'),
    ('nn.Flatten()',
     'Flatten'),
    ('nn.LeakyReLU(0.1)',
     'LeakyReLU(0.1)'),
    ('nn.Dense(3, in_units=2, use_bias=False, flatten=False)',
     'Dense(2 -> 3, linear)'),
    ('gluon.loss.L2Loss()',
     'L2Loss(batch_axis=0, w=1.0)'),
    ("rnn.RNNCell(5, activation='relu', input_size=3)",
     'RNNCell(3 -> 5, relu)'),
]


@pytest.mark.parametrize("text,expect", REPRS)
def test_repr_as_mxnet_prints_it(text, expect):
    from tracegrad.gluon import nn, rnn  # noqa: F401  (the texts)

    assert repr(eval(text)).replace("\n", "|") == expect
