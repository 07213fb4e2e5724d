"""Every gluon loss against its formula written in numpy (float64), per-example shapes,
weight / sample_weight / batch_axis, and gradients against central differences."""

from __future__ import annotations

import numpy as onp
import pytest

from tracegrad import np
from tracegrad.gluon import loss as gloss
from tracegrad.test_utils import check_numeric_gradient

R = onp.random.default_rng(0)
N, C = 6, 5


def _lsm(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - onp.log(onp.exp(x - m).sum(axis=axis, keepdims=True))


def _sp(x):
    return onp.log1p(onp.exp(x))


def _mean_rest(v, batch_axis=0):
    axes = tuple(a for a in range(v.ndim) if a != batch_axis)
    return v.mean(axis=axes) if axes else v


pred = R.standard_normal((N, C)) * 2
label = R.standard_normal((N, C))
prob = R.uniform(0.05, 0.95, (N, C))
bin_label = R.integers(0, 2, (N, C)).astype("float64")
signed = onp.where(R.random((N, C)) > 0.5, 1.0, -1.0)
cls = R.integers(0, C, (N,)).astype("float64")
dist = onp.exp(_lsm(R.standard_normal((N, C))))
sw = R.uniform(0.5, 2.0, (N, 1))
posw = R.uniform(0.5, 3.0, (1, C))

# name, loss, inputs (pred first), the numpy formula (per element before the mean)
CASES = [
    ("l2", gloss.L2Loss(), [pred, label], lambda p, l: 0.5 * (p - l) ** 2),
    ("l2-weight", gloss.L2Loss(weight=3.0), [pred, label], lambda p, l: 1.5 * (p - l) ** 2),
    ("l1", gloss.L1Loss(), [pred, label], lambda p, l: onp.abs(p - l)),
    ("bce-logits", gloss.SigmoidBinaryCrossEntropyLoss(), [pred, bin_label],
     lambda p, l: -(l * onp.log(1 / (1 + onp.exp(-p))) + (1 - l) * onp.log(1 - 1 / (1 + onp.exp(-p))))),
    ("bce-sigmoid", gloss.SigmoidBCELoss(from_sigmoid=True), [prob, bin_label],
     lambda p, l: -(l * onp.log(p + 1e-12) + (1 - l) * onp.log(1 - p + 1e-12))),
    ("sce-sparse", gloss.SoftmaxCrossEntropyLoss(), [pred, cls],
     lambda p, l: -onp.take_along_axis(_lsm(p), l.astype(int)[:, None], axis=1)),
    ("sce-dense", gloss.SoftmaxCELoss(sparse_label=False), [pred, dist],
     lambda p, l: -(_lsm(p) * l).sum(axis=1, keepdims=True)),
    ("sce-from-logits", gloss.SoftmaxCrossEntropyLoss(from_logits=True), [_lsm(pred), cls],
     lambda p, l: -onp.take_along_axis(p, l.astype(int)[:, None], axis=1)),
    ("kl", gloss.KLDivLoss(), [_lsm(pred), dist], lambda p, l: l * (onp.log(l + 1e-12) - p)),
    ("kl-logits", gloss.KLDivLoss(from_logits=False), [pred, dist],
     lambda p, l: l * (onp.log(l + 1e-12) - _lsm(p))),
    ("huber", gloss.HuberLoss(rho=0.7), [pred, label],
     lambda p, l: onp.where(onp.abs(p - l) > 0.7, onp.abs(p - l) - 0.35, 0.5 / 0.7 * (p - l) ** 2)),
    ("hinge", gloss.HingeLoss(margin=1.5), [pred, signed], lambda p, l: onp.maximum(0, 1.5 - p * l)),
    ("sqhinge", gloss.SquaredHingeLoss(), [pred, signed], lambda p, l: onp.maximum(0, 1 - p * l) ** 2),
    ("logistic-signed", gloss.LogisticLoss(), [pred, signed], lambda p, l: onp.log1p(onp.exp(-p * l))),
    ("logistic-binary", gloss.LogisticLoss(label_format="binary"), [pred, bin_label],
     lambda p, l: onp.log1p(onp.exp(-p * (2 * l - 1)))),
]


@pytest.mark.parametrize("name,loss,inputs,formula", CASES, ids=[c[0] for c in CASES])
def test_forward_matches_formula(name, loss, inputs, formula):
    out = loss(*[np.array(x.astype("float32") if i == 0 else x.astype("float32")) for i, x in enumerate(inputs)])
    f32 = [x.astype("float32").astype("float64") for x in inputs]
    expect = _mean_rest(formula(*f32))
    assert out.shape == (N,)
    onp.testing.assert_allclose(out.asnumpy(), expect, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("name,loss,inputs,formula", CASES, ids=[c[0] for c in CASES])
def test_gradient_matches_finite_differences(name, loss, inputs, formula):
    rest = [np.array(x, dtype="float64") for x in inputs[1:]]
    check_numeric_gradient(lambda p: loss(p, *rest), [inputs[0]], rtol=1e-4, atol=1e-6)


def test_sample_weight_weight_and_batch_axis():
    p, l = pred.astype("float32"), label.astype("float32")
    out = gloss.L1Loss(weight=0.5)(np.array(p), np.array(l), np.array(sw.astype("float32")))
    onp.testing.assert_allclose(out.asnumpy(), (0.5 * onp.abs(p - l) * sw).mean(axis=1), rtol=1e-5)
    out = gloss.L2Loss(batch_axis=1)(np.array(p), np.array(l))
    assert out.shape == (C,)
    onp.testing.assert_allclose(out.asnumpy(), (0.5 * (p - l) ** 2).mean(axis=0), rtol=1e-5)


def test_softmax_ce_keeps_one_value_per_example_for_sequences():
    logits = R.standard_normal((2, 3, 4)).astype("float32")
    lab = R.integers(0, 4, (2, 3)).astype("float32")
    out = gloss.SoftmaxCrossEntropyLoss()(np.array(logits), np.array(lab))
    expect = -onp.take_along_axis(_lsm(logits.astype("float64")), lab.astype(int)[..., None], axis=2).mean(axis=(1, 2))
    assert out.shape == (2,)
    onp.testing.assert_allclose(out.asnumpy(), expect, rtol=1e-5)
    ax = gloss.SoftmaxCrossEntropyLoss(axis=1)(np.array(logits.transpose(0, 2, 1)), np.array(lab))
    onp.testing.assert_allclose(ax.asnumpy(), expect, rtol=1e-5)


def test_bce_pos_weight_both_forms():
    p, l = pred.astype("float32"), bin_label.astype("float32")
    s = 1 / (1 + onp.exp(-p.astype("float64")))
    expect = -(posw * l * onp.log(s) + (1 - l) * onp.log(1 - s)).mean(axis=1)
    out = gloss.SigmoidBCELoss()(np.array(p), np.array(l), None, np.array(posw.astype("float32")))
    onp.testing.assert_allclose(out.asnumpy(), expect, rtol=2e-5)
    out = gloss.SigmoidBCELoss(from_sigmoid=True)(np.array(s.astype("float32")), np.array(l),
                                                   pos_weight=np.array(posw.astype("float32")))
    onp.testing.assert_allclose(out.asnumpy(), expect, rtol=2e-5)
    pw = np.array(posw)
    check_numeric_gradient(lambda x: gloss.SigmoidBCELoss()(x, np.array(bin_label), None, pw), [pred],
                           rtol=1e-4, atol=1e-6)


def test_bce_on_logits_is_stable_for_large_values():
    out = gloss.SigmoidBCELoss()(np.array([[100.0, -100.0]]), np.array([[0.0, 1.0]]))
    onp.testing.assert_allclose(out.asnumpy(), [100.0], rtol=1e-6)


def test_cosine_embedding_loss():
    a = R.standard_normal((N, C))
    b = R.standard_normal((N, C))
    lab = onp.array([1, -1, 1, -1, -1, 1], "float64")
    cos = (a * b).sum(1) / (onp.linalg.norm(a, axis=1) * onp.linalg.norm(b, axis=1))
    for margin in (0.0, 0.2):
        expect = onp.where(lab == 1, 1 - cos, onp.maximum(0, cos - margin))
        out = gloss.CosineEmbeddingLoss(margin=margin)(np.array(a), np.array(b), np.array(lab))
        assert out.shape == (N,)
        onp.testing.assert_allclose(out.asnumpy(), expect, rtol=1e-5, atol=1e-6)
    check_numeric_gradient(lambda x: gloss.CosineEmbeddingLoss()(x, np.array(b), np.array(lab)), [a],
                           rtol=1e-4, atol=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="label_format must be 'signed' or 'binary'"):
        gloss.LogisticLoss(label_format="pm1")
    with pytest.raises(TypeError, match="loss weight must be a number"):
        gloss.L1Loss(weight="2")(np.array(pred), np.array(label))
    assert "L2Loss(batch_axis=0, w=1.0)" == repr(gloss.L2Loss())


def test_loss_is_a_hybrid_block_and_hybridizes():
    from tracegrad.gluon import HybridBlock

    loss = gloss.SoftmaxCrossEntropyLoss()
    assert isinstance(loss, HybridBlock)
    x, c = np.array(pred.astype("float32")), np.array(cls)
    plain = loss(x, c).asnumpy()
    loss.hybridize()
    for _ in range(2):
        onp.testing.assert_allclose(loss(x, c).asnumpy(), plain, rtol=1e-6)
