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
    # MXNet 2.x: 'macro' is the mean over classes (one class in the binary case), not over updates
    macro = metric.F1(average="macro")
    macro.update(lab1, p1)
    macro.update([lab2], [p2])
    assert macro.get()[1] == pytest.approx(micro.get()[1])
    with pytest.raises(ValueError, match="binary labels"):
        metric.F1().update(onp.array([2]), onp.array([0.3]))


def test_f1_binary_reads_column_one_against_the_threshold_as_mxnet_does():
    # MXNet 2.x's documented example: 0.8
    f1 = metric.F1()
    f1.update(preds=[np.array([[0.3, 0.7], [0.0, 1.0], [0.4, 0.6]])], labels=[np.array([0.0, 1.0, 1.0])])
    assert f1.get() == ("f1", pytest.approx(0.8))
    # raw scores: column 1 > threshold decides, not the argmax
    f1 = metric.F1(threshold=0.0)
    f1.update(onp.array([1, 0]), onp.array([[5.0, 0.5], [-3.0, -1.0]]))
    assert f1.get()[1] == pytest.approx(2 * 1 * 1 / 2)
    fb = metric.Fbeta(beta=2)
    fb.update(preds=[np.array([[0.3, 0.7], [0.0, 1.0], [0.4, 0.6]])], labels=[np.array([0.0, 1.0, 1.0])])
    assert fb.get() == ("fbeta", pytest.approx(0.9090909090909091))


def _per_class_f1(guess, lab, k):
    out = []
    for c in range(k):
        tp = ((guess == c) & (lab == c)).sum()
        fp = ((guess == c) & (lab != c)).sum()
        fn = ((guess != c) & (lab == c)).sum()
        p = tp / max(tp + fp, 1e-12)
        r = tp / max(tp + fn, 1e-12)
        out.append(2 * p * r / max(p + r, 1e-12))
    return onp.array(out)


def test_f1_multiclass_micro_macro_and_per_class_over_updates():
    k = 4
    labs = [R.integers(0, k, 13), R.integers(0, k, 9)]
    preds = [R.standard_normal((13, k)), R.standard_normal((9, k))]
    guess, lab = onp.r_[preds[0].argmax(1), preds[1].argmax(1)], onp.r_[labs[0], labs[1]]
    results = {}
    for avg in ("micro", "macro", None):
        m = metric.F1(class_type="multiclass", average=avg)
        for a, b in zip(labs, preds):
            m.update(np.array(a), np.array(b))
        results[avg] = m.get()[1]
    per_class = _per_class_f1(guess, lab, k)
    assert results["micro"] == pytest.approx((guess == lab).mean())  # one label per example
    assert results["macro"] == pytest.approx(per_class.mean())
    assert onp.allclose(results[None], per_class)
    with pytest.raises(ValueError, match="outside the 4 classes"):
        metric.F1(class_type="multiclass").update(onp.array([4]), onp.zeros((1, 4)))
    with pytest.raises(ValueError, match="class_type"):
        metric.F1(class_type="ternary")


def test_f1_multilabel_and_binary_accuracy():
    lab = (R.random((10, 3)) > 0.5).astype(int)
    pred = R.random((10, 3))
    m = metric.F1(class_type="multilabel", threshold=0.4)
    m.update(lab, pred)
    g = pred > 0.4
    tp, fp, fn = (g & (lab == 1)).sum(), (g & (lab == 0)).sum(), (~g & (lab == 1)).sum()
    assert m.get()[1] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    acc = metric.create("binaryaccuracy", threshold=0.6)
    acc.update(preds=[np.array([0.7, 1.0, 0.55])], labels=[np.array([0.0, 1.0, 0.0])])
    assert acc.get() == ("binary_accuracy", pytest.approx(2 / 3))


def test_mcc_matches_mxnet_documented_example():
    fp, fn, tp, tn = 1000, 1, 10000, 1
    pred = onp.array([[0.3, 0.7]] * fp + [[0.7, 0.3]] * tn + [[0.7, 0.3]] * fn + [[0.3, 0.7]] * tp)
    lab = onp.array([0.0] * (fp + tn) + [1.0] * (fn + tp))
    f1, mcc = metric.F1(), metric.MCC()
    f1.update(lab, pred)
    mcc.update(lab, pred)
    assert f1.get()[1] == pytest.approx(0.95233560306652054)
    assert mcc.get()[1] == pytest.approx(0.01917751877733392)


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
