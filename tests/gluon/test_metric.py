"""gluon.metric against numpy computations; gluon.utils (split, clip_global_norm, sha1,
download offline)."""

from __future__ import annotations

import hashlib
import math

import numpy as onp
import pytest

from tracegrad import metric as mx_metric
from tracegrad import np
from tracegrad.gluon import metric, utils

R = onp.random.default_rng(0)


def _softmax(x):
    e = onp.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_accuracy_and_topk():
    scores = R.standard_normal((20, 5))
    labels = R.integers(0, 5, 20)
    acc = metric.Accuracy()
    acc.update(np.array(labels), np.array(scores))
    acc.update([np.array(labels[:4])], [np.array(labels[:4])])  # predicted classes, all right
    assert acc.get() == ("accuracy", pytest.approx(((scores.argmax(1) == labels).sum() + 4) / 24))
    top = metric.TopKAccuracy(top_k=3)
    top.update(labels, scores)
    rank = (-scores).argsort(1)[:, :3]
    assert top.get() == ("top_k_accuracy_3", pytest.approx((rank == labels[:, None]).any(1).mean()))
    assert mx_metric.Accuracy is metric.Accuracy and isinstance(mx_metric.create("acc"), metric.Accuracy)


def test_f1_micro_and_macro():
    lab1, lab2 = onp.array([1, 0, 1, 1, 0]), onp.array([0, 1, 1, 0])
    p1 = onp.array([[0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.9, 0.1], [0.4, 0.6]])
    p2 = onp.array([0.9, 0.7, 0.2, 0.1])  # probabilities of class 1
    g1, g2 = p1.argmax(1), (p2 > 0.5).astype(int)

    def f1(g, lab):
        tp, fp, fn = ((g == 1) & (lab == 1)).sum(), ((g == 1) & (lab == 0)).sum(), ((g == 0) & (lab == 1)).sum()
        p, r = tp / (tp + fp), tp / (tp + fn)
        return 2 * p * r / (p + r)

    micro = metric.F1()
    micro.update(lab1, p1)
    micro.update(lab2, p2)
    assert micro.get()[1] == pytest.approx(f1(onp.r_[g1, g2], onp.r_[lab1, lab2]))
    macro = metric.F1(average="macro")
    macro.update(lab1, p1)
    macro.update([lab2], [p2])
    assert macro.get()[1] == pytest.approx((f1(g1, lab1) + f1(g2, lab2)) / 2)
    with pytest.raises(ValueError, match="binary labels"):
        metric.F1().update(onp.array([2]), onp.array([0.3]))


def test_regression_metrics():
    lab = R.standard_normal((8, 3))
    pred = R.standard_normal((8, 3))
    mae, mse, rmse = metric.MAE(), metric.MSE(), metric.RMSE()
    for m in (mae, mse, rmse):
        m.update(np.array(lab[:5]), np.array(pred[:5]))
        m.update(lab[5:], pred[5:])
    assert mae.get()[1] == pytest.approx(onp.abs(lab - pred).mean())
    assert mse.get()[1] == pytest.approx(((lab - pred) ** 2).mean())
    assert rmse.get()[1] == pytest.approx(math.sqrt(((lab - pred) ** 2).mean()))
    one = metric.MSE()
    one.update(onp.arange(4.0), onp.arange(4.0).reshape(4, 1) + 1)
    assert one.get()[1] == pytest.approx(1.0)


def test_cross_entropy_perplexity_loss():
    logits = R.standard_normal((6, 4))
    probs = _softmax(logits)
    labels = onp.array([0, 3, 1, 2, 2, 0])
    nll = -onp.log(probs[onp.arange(6), labels] + 1e-12)
    ce = metric.CrossEntropy()
    ce.update(np.array(labels), np.array(probs))
    assert ce.get() == ("cross-entropy", pytest.approx(nll.mean(), rel=1e-5))
    ce_logits = metric.CrossEntropy(from_logits=True)
    ce_logits.update(labels, logits)
    assert ce_logits.get()[1] == pytest.approx(nll.mean(), rel=1e-6)
    ppl = metric.Perplexity(ignore_label=2)
    ppl.update(labels, probs)
    keep = labels != 2
    assert ppl.get() == ("perplexity", pytest.approx(math.exp(nll[keep].mean()), rel=1e-5))
    loss = metric.Loss()
    loss.update(None, np.array([1.0, 2.0, 3.0]))
    loss.update(None, [np.array([6.0])])
    assert loss.get() == ("loss", pytest.approx(3.0))


def test_composite_reset_and_nan():
    comp = metric.CompositeEvalMetric(["acc", metric.MAE()])
    comp.add("ce")
    assert comp.get()[0] == ["accuracy", "mae", "cross-entropy"]
    assert all(math.isnan(v) for v in comp.get()[1])
    comp.update(onp.array([1, 0]), onp.array([[0.2, 0.8], [0.6, 0.4]]))
    names, values = comp.get()
    assert values[0] == 1.0
    assert comp.get_metric(1).name == "mae"
    comp.reset()
    assert math.isnan(comp.get()[1][0])
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        metric.create("nope")
    with pytest.raises(ValueError, match="out of range"):
        comp.get_metric(7)
    custom = metric.create(lambda lab, pred: float((lab == pred).mean()))
    custom.update(onp.array([1, 2]), onp.array([1, 3]))
    assert custom.get()[1] == 0.5


def test_split_data_and_split_and_load():
    x = np.array(onp.arange(20.0).reshape(10, 2))
    parts = utils.split_data(x, 3, even_split=False)
    assert [p.shape[0] for p in parts] == [4, 3, 3]
    onp.testing.assert_array_equal(onp.concatenate([p.asnumpy() for p in parts]), x.asnumpy())
    cols = utils.split_data(np.array(onp.arange(12.0).reshape(2, 6)), 2, batch_axis=1)
    assert [c.shape for c in cols] == [(2, 3), (2, 3)]
    with pytest.raises(ValueError, match="cannot be evenly split into 3 slices"):
        utils.split_data(x, 3)
    from tracegrad import npx
    loaded = utils.split_and_load(onp.arange(8.0), [npx.cpu(0)])
    assert loaded[0].shape == (8,)


def test_clip_global_norm():
    a, b = R.standard_normal((3, 4)), R.standard_normal(5)
    norm = math.sqrt((a ** 2).sum() + (b ** 2).sum())
    ta, tb = np.array(a), np.array(b)
    got = utils.clip_global_norm([ta, tb], 1.0)
    assert got == pytest.approx(norm, rel=1e-5)
    onp.testing.assert_allclose(ta.asnumpy(), a / (norm + 1e-8), rtol=1e-5)
    big = np.array(b)
    utils.clip_global_norm([big], 100.0)
    onp.testing.assert_allclose(big.asnumpy(), b, rtol=1e-6)
    with pytest.warns(UserWarning, match="nan or inf"):
        utils.clip_global_norm([np.array([onp.inf, 1.0])], 1.0)


def test_check_sha1_and_download_offline(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(b"tracegrad")
    assert utils.check_sha1(str(f), hashlib.sha1(b"tracegrad").hexdigest())
    assert not utils.check_sha1(str(f), "0" * 40)
    assert utils.download("http://127.0.0.1:9/f.bin", path=str(f)) == str(f)  # present: kept
    with pytest.raises(RuntimeError, match=r"download of http://127.0.0.1:9/g.bin .* failed"):
        utils.download("http://127.0.0.1:9/g.bin", path=str(tmp_path), retries=1, timeout=5)
