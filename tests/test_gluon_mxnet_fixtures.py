"""Parameter files and outputs written by real MXNet 2.0.0b1 (tests/fixtures/mxnet/,
made by make_fixtures.py there): our load_parameters reads each file into the same
architecture and gives MXNet's outputs on the same input."""

from __future__ import annotations

import os

import numpy
import pytest

from tracegrad import autograd, np, npx
from tracegrad.gluon import nn

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "mxnet")
CASES = numpy.load(os.path.join(HERE, "cases.npz"))
NAMES = sorted({k.split("|")[0] for k in CASES.files})

# Layers whose ops come with the nn-ops work (convolution, pooling, normalization) and the
# RNN layers: listed here until they land in this branch; everything else must pass.
PENDING: set[str] = set()
try:
    from tracegrad.gluon import rnn  # noqa: F401
except ImportError:
    rnn = None


def seq(*blocks):
    net = nn.HybridSequential()
    net.add(*blocks)
    return net


def _build(text: str):
    try:
        return eval(text, {"nn": nn, "rnn": rnn, "seq": seq})
    except AttributeError as exc:  # a layer class this build does not have yet
        return exc


def test_every_fixture_case_is_checked_or_listed_pending():
    missing = [n for n in NAMES if isinstance(_build(str(CASES[f"{n}|text"])), AttributeError) and n not in PENDING]
    assert not missing, f"fixture cases whose layers are missing and not listed pending: {missing}"


# hybridized too (one compile each, so a representative few): the compiled forward must
# give MXNet's outputs as well
HYBRID = ("mlp", "cnn", "batchnorm", "lstm", "conv2d_t", "embedding")


@pytest.mark.parametrize("case,hybridize", [(n, False) for n in NAMES if n not in PENDING] + [(n, True) for n in HYBRID])
def test_mxnet_parameters_give_mxnet_outputs(case, hybridize):
    net = _build(str(CASES[f"{case}|text"]))
    if isinstance(net, AttributeError):
        pytest.skip(f"layer not in this build: {net}")
    net.load_parameters(os.path.join(HERE, f"{case}.params"))
    if hybridize:
        net.hybridize()
    x = np.array(CASES[f"{case}|x"])
    y = net(x)
    numpy.testing.assert_allclose(y.asnumpy(), CASES[f"{case}|y"], rtol=2e-5, atol=2e-6)
    if f"{case}|y_train" in CASES.files:
        with autograd.record(train_mode=True):
            yt = net(x)
        numpy.testing.assert_allclose(yt.asnumpy(), CASES[f"{case}|y_train"], rtol=2e-5, atol=2e-5)


def test_mxnet_1x_binary_file_with_prefixed_names():
    net = seq(nn.Dense(8, activation="relu"), nn.Dense(3))
    net.load_parameters(os.path.join(HERE, "mlp_legacy.params"))
    y = net(np.array(CASES["mlp|x"]))
    numpy.testing.assert_allclose(y.asnumpy(), CASES["mlp|y"], rtol=2e-5, atol=2e-6)


def test_round_trip_through_our_file_keeps_mxnet_outputs(tmp_path):
    net = seq(nn.Dense(8, activation="relu"), nn.Dense(3))
    net.load_parameters(os.path.join(HERE, "mlp.params"))
    f = str(tmp_path / "ours.params")
    net.save_parameters(f)
    mx_file = numpy.load(os.path.join(HERE, "mlp.params"))
    ours = numpy.load(f)
    assert sorted(ours.files) == sorted(mx_file.files)
    for k in mx_file.files:
        numpy.testing.assert_array_equal(ours[k], mx_file[k])
        assert ours[k].dtype == mx_file[k].dtype
    net2 = seq(nn.Dense(8, activation="relu"), nn.Dense(3))
    net2.load_parameters(f)
    numpy.testing.assert_allclose(net2(np.array(CASES["mlp|x"])).asnumpy(), CASES["mlp|y"], rtol=2e-5, atol=2e-6)


def test_npx_load_reads_mxnet_npx_save_and_savez():
    one = npx.load(os.path.join(HERE, "one.npy"))
    numpy.testing.assert_array_equal(one.asnumpy(), numpy.arange(6).reshape(2, 3))
    many = npx.load(os.path.join(HERE, "many.npz"))
    numpy.testing.assert_array_equal(many["arr_0"].asnumpy(), numpy.ones(2))
    assert many["b"].dtype == numpy.int32 and many["b"].asnumpy().tolist() == [1, 2]
    legacy = npx.load(os.path.join(HERE, "mlp_legacy.params"))
    assert sorted(legacy) == sorted(f"hybridsequential0_dense{i}_{k}" for i in (0, 1) for k in ("weight", "bias"))


OURS = numpy.load(os.path.join(HERE, "ours.npz"))


@pytest.mark.parametrize("case", sorted({k.split("|")[0] for k in OURS.files}))
def test_files_we_wrote_that_mxnet_reads(case):
    """ours_<case>.params were written by tracegrad (write_ours.py); real MXNet 2.0.0b1 loads
    them and gives the recorded outputs (check_ours_in_mxnet.py, run when they were made).
    Here: the files still load into the same outputs, and today's writer names and types
    every array as they do."""
    net = _build(str(OURS[f"{case}|text"]))
    f = os.path.join(HERE, f"ours_{case}.params")
    net.load_parameters(f)
    numpy.testing.assert_allclose(net(np.array(OURS[f"{case}|x"])).asnumpy(), OURS[f"{case}|y"], rtol=1e-6, atol=1e-7)
    import io

    buf = io.BytesIO()
    from tracegrad import serialization

    serialization.savez(buf, **{k: p.data() for k, p in net.collect_params().items()})
    buf.seek(0)
    now, then = numpy.load(buf), numpy.load(f)
    assert now.files == then.files and all(now[k].dtype == then[k].dtype for k in then.files)
