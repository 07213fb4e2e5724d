"""Trainer.save_states / load_states speak MXNet 2.x's format: files real MXNet 2.0.0b1 wrote
continue training here exactly as they did in MXNet, files tracegrad wrote (checked in MXNet
by check_ours_states_in_mxnet.py) continue to MXNet's weights, and a file is never trusted:
no global outside MXNet's optimizer, scheduler and array records is looked up."""

from __future__ import annotations

import os
import pickle
import sys
import warnings

import numpy as onp
import pytest

from tracegrad import autograd, gluon, np
from tracegrad import optimizer as opt
from tracegrad.serialization import FormatError

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "mxnet")
sys.path.insert(0, FIXTURES)
import write_ours_states as wos  # noqa: E402

Z = onp.load(os.path.join(FIXTURES, "trainer_states.npz"))
CASES = wos.cases(Z)


def _weights(net):
    return net.weight.data().asnumpy(), net.bias.data().asnumpy()


@pytest.mark.parametrize("case", CASES)
def test_mxnet_states_continue_as_in_mxnet(case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the multifactor case's lr overwrite, as MXNet prints
        net, trainer = wos.continued(case, Z, "states_")
    assert trainer.optimizer.num_update == 3
    wos.step(net, trainer, Z, 3)
    wos.step(net, trainer, Z, 4)
    w, b = _weights(net)
    onp.testing.assert_allclose(w, Z[f"{case}|w5"], rtol=1e-5, atol=1e-6)
    onp.testing.assert_allclose(b, Z[f"{case}|b5"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", CASES)
def test_our_states_files_continue_to_mxnet_weights(case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        net, trainer = wos.continued(case, Z, "ours_states_")
    assert trainer.optimizer.num_update == 4
    wos.step(net, trainer, Z, 4)
    w, b = _weights(net)
    onp.testing.assert_allclose(w, Z[f"{case}|w5"], rtol=1e-5, atol=1e-6)
    onp.testing.assert_allclose(b, Z[f"{case}|b5"], rtol=1e-5, atol=1e-6)


def test_the_states_matter():
    """Without the loaded states (fresh moments and counts) the same steps land elsewhere."""
    for case in ("sgd", "adam", "rmsprop_centered", "sgd_factor"):
        net, trainer = wos.continued(case, Z, "states_")
        fresh = gluon.Trainer(net.collect_params(), str(Z[f"{case}|opt"]), eval(str(Z[f"{case}|params"]),
                                                                                  {"mx": wos.mx}))
        wos.step(net, fresh, Z, 3)
        wos.step(net, fresh, Z, 4)
        assert onp.abs(_weights(net)[0] - Z[f"{case}|w5"]).max() > 1e-4, case


def test_round_trip_keeps_optimizer_schedule_and_counts(tmp_path):
    net, trainer = wos.continued("sgd_factor", Z, "states_")
    trainer.optimizer.set_lr_mult({0: 0.5})
    f = str(tmp_path / "t.states")
    trainer.save_states(f)
    net2, trainer2 = wos.continued("sgd", Z, "states_")  # another optimizer's settings: the file's win
    trainer2.load_states(f)
    o1, o2 = trainer.optimizer, trainer2.optimizer
    assert type(o2) is opt.SGD and o2.momentum == o1.momentum and o2.num_update == o1.num_update == 3
    assert o2._index_update_count == o1._index_update_count and o2.lr_mult == {0: 0.5}
    assert type(o2.lr_scheduler).__name__ == "FactorScheduler"
    assert [o2.lr_scheduler(n) for n in range(12)] == [o1.lr_scheduler(n) for n in range(12)]
    for i in trainer._states:
        onp.testing.assert_array_equal(trainer._states[i].asnumpy(), trainer2._states[i].asnumpy())
    up = opt.get_updater(opt.create("adam"))
    up.optimizer.param_dict = {0: net.weight}
    up(0, np.ones((3, 4)), net.weight.data())
    up2 = opt.get_updater(opt.create("adam"))
    up2.optimizer.param_dict = {0: net.weight}
    up2.set_states(up.get_states(dump_optimizer=True))
    onp.testing.assert_array_equal(up2.states[0][1].asnumpy(), up.states[0][1].asnumpy())
    assert up2.optimizer.num_update == 1


def test_trainer_indices_follow_sorted_names_as_mxnet():
    net = gluon.nn.Dense(3, in_units=4)
    net.initialize()
    trainer = gluon.Trainer(net.collect_params(), "sgd")
    assert [p.name for p in trainer._params] == ["bias", "weight"]


class _Evil:
    def __reduce__(self):
        return (open, (os.path.join(FIXTURES, "SHOULD_NOT_EXIST"), "w"))


def test_untrusted_files_are_refused(tmp_path):
    net, trainer = wos.continued("adam", Z, "states_")
    cases = {
        "evil": pickle.dumps(({0: _Evil()}, None)),
        "old_format": pickle.dumps({"format": "tracegrad-trainer-states-1", "states": {}}),
        "truncated": open(os.path.join(FIXTURES, "states_adam.states"), "rb").read()[:300],
        "garbage": b"not a pickle at all",
    }
    for name, raw in cases.items():
        f = tmp_path / name
        f.write_bytes(raw)
        with pytest.raises(FormatError, match="not an MXNet Trainer states file"):
            trainer.load_states(str(f))
    assert not os.path.exists(os.path.join(FIXTURES, "SHOULD_NOT_EXIST"))
    other = gluon.nn.Dense(5, in_units=4)
    other.initialize()
    t2 = gluon.Trainer(other.collect_params(), "adam")
    with pytest.raises(FormatError, match=r"state of parameter 0 \(bias\) is .*\(3,\).*keeps .*\(5,\)"):
        t2.load_states(os.path.join(FIXTURES, "states_adam.states"))
    one = gluon.Trainer([net.bias], "adam")
    with pytest.raises(FormatError, match="state for parameter index 1, but there are 1 parameters"):
        one.load_states(os.path.join(FIXTURES, "states_adam.states"))
    with pytest.raises(FormatError, match="has no MXNet 2.x optimizer class"):
        class Mine(opt.SGD):
            pass
        gluon.Trainer(net.collect_params(), Mine()).save_states(str(tmp_path / "x"))
