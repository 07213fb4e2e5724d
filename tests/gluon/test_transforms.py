"""Vision transforms are Blocks with MXNet 2.x semantics: outputs equal real MXNet 2.0.0b1's
(tests/fixtures/mxnet/transforms.npz, made by make_transforms.py), colour transforms equal
their formulas, and they work inside datasets, on tracegrad arrays and hybridized."""

from __future__ import annotations

import colorsys
import os

import numpy as onp
import pytest

from tracegrad import autograd, np
from tracegrad.gluon import HybridBlock, data
from tracegrad.gluon.data.vision import transforms as T

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "mxnet")


def _cases():
    z = onp.load(os.path.join(FIXTURES, "transforms.npz"))
    return z, sorted({k.split("|")[0] for k in z.files})


@pytest.mark.parametrize("case", _cases()[1])
def test_outputs_equal_mxnet(case):
    z, _ = _cases()
    t = eval(str(z[f"{case}|text"]))
    x, ref = z[f"{case}|x"], z[f"{case}|y"]
    y = t(x)
    assert isinstance(y, onp.ndarray) and y.shape == ref.shape and y.dtype == ref.dtype
    if ref.dtype == onp.uint8:
        onp.testing.assert_array_equal(y, ref)  # OpenCV's fixed-point bilinear, bit for bit
    else:
        onp.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)
    tg = t(np.array(x, dtype=x.dtype))
    assert hasattr(tg, "asnumpy")
    onp.testing.assert_array_equal(tg.asnumpy(), y)


def test_transforms_are_blocks_and_pass_extra_arguments():
    for t in (T.ToTensor(), T.Normalize(), T.Cast(), T.Resize(3), T.CenterCrop(2), T.RandomResizedCrop(2),
              T.RandomFlipLeftRight(), T.RandomFlipTopBottom(), T.RandomBrightness(0.1), T.RandomContrast(0.1),
              T.RandomSaturation(0.1), T.RandomHue(0.1), T.RandomColorJitter(0.1), T.RandomLighting(0.1),
              T.RandomCrop(2), T.CropResize(0, 0, 2, 2), T.RandomGray()):
        assert isinstance(t, HybridBlock), t
    assert isinstance(T.Compose([T.ToTensor()]), data.vision.transforms.Compose)
    img = onp.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=onp.uint8)
    out, label = T.ToTensor()(img, 7)
    assert out.shape == (3, 4, 5) and label == 7
    out, label = T.Compose([T.Resize(3), T.ToTensor()])(img, 7)
    assert out.shape == (3, 3, 3) and label == 7
    a, b = T.Cast("float16")(img, img)
    assert a.dtype == b.dtype == onp.float16


def test_transform_first_in_a_dataloader():
    rng = onp.random.default_rng(1)
    imgs = rng.integers(0, 256, (6, 8, 8, 3), dtype=onp.uint8)
    labels = onp.arange(6)
    tf = T.Compose([T.Resize(4), T.ToTensor(), T.Normalize((0.5, 0.4, 0.3), (0.2, 0.25, 0.5))])
    ds = data.ArrayDataset(imgs, labels).transform_first(tf)
    xb, yb = next(iter(data.DataLoader(ds, batch_size=6)))
    expect = onp.stack([tf(im) for im in imgs])
    assert xb.shape == (6, 3, 4, 4)
    onp.testing.assert_allclose(xb.asnumpy(), expect, rtol=1e-6)
    onp.testing.assert_array_equal(yb.asnumpy(), labels)


def test_array_transforms_hybridize_and_differentiate():
    rng = onp.random.default_rng(2)
    x = rng.integers(0, 256, (2, 5, 6, 3)).astype(onp.float32)
    mean, std = onp.array([0.3, 0.5, 0.1], "f4"), onp.array([0.5, 2.0, 0.25], "f4")
    ref = (x.transpose(0, 3, 1, 2) / 255 - mean[:, None, None]) / std[:, None, None]
    comp = T.HybridCompose([T.ToTensor(), T.Normalize(mean, std)])
    for _ in range(2):
        onp.testing.assert_allclose(comp(np.array(x)).asnumpy(), ref, rtol=1e-5, atol=1e-6)
    xa = np.array(x)
    xa.attach_grad()
    with autograd.record():
        y = T.Normalize(mean, std)(T.ToTensor()(xa))
    y.backward()
    g = onp.broadcast_to(1 / (255 * std), (2, 5, 6, 3))
    onp.testing.assert_allclose(xa.grad.asnumpy(), g, rtol=1e-6)
    with pytest.raises(ValueError, match="Normalize: std has 2 values for 3 channels"):
        T.Normalize(0.0, (1.0, 2.0))(ref)


def _draw(seed, lo, hi):
    onp.random.seed(seed)
    return onp.random.uniform(lo, hi)


def test_colour_transforms_against_their_formulas():
    rng = onp.random.default_rng(3)
    u8 = rng.integers(0, 256, (5, 4, 3), dtype=onp.uint8)
    f = u8.astype(onp.float32)
    luma = f @ onp.array([0.299, 0.587, 0.114], "f4")

    a = _draw(0, 0.5, 1.5)
    onp.random.seed(0)
    onp.testing.assert_array_equal(T.RandomBrightness(0.5)(u8), onp.trunc(onp.clip(f * onp.float32(a), 0, 255)))
    a = _draw(1, 0.2, 1.8)
    onp.random.seed(1)
    got = T.RandomContrast(0.8)(f)
    onp.testing.assert_allclose(got, f * a + (1 - a) * luma.mean(), rtol=1e-5)
    a = _draw(2, 0.0, 2.0)
    onp.random.seed(2)
    got = T.RandomSaturation(1.0)(f)
    onp.testing.assert_allclose(got, luma[..., None] * (1 - a) + f * a, rtol=1e-5, atol=1e-4)
    a = _draw(3, 0.7, 1.3)
    onp.random.seed(3)
    got = T.RandomHue(0.3)(f)
    for (i, j) in [(0, 0), (2, 1), (4, 3)]:
        h, l_, s = colorsys.rgb_to_hls(*(f[i, j] / 255.0))
        want = onp.array(colorsys.hls_to_rgb((h + a - 1.0) % 1.0, l_, s)) * 255
        onp.testing.assert_allclose(got[i, j], want, rtol=1e-4, atol=1e-3)
    onp.random.seed(4)
    alphas = onp.random.normal(0, 0.1, size=3)
    eig = onp.array([[55.46 * -0.5675, 4.794 * 0.7192, 1.148 * 0.4009],
                     [55.46 * -0.5808, 4.794 * -0.0045, 1.148 * -0.8140],
                     [55.46 * -0.5836, 4.794 * -0.6948, 1.148 * 0.4203]])
    onp.random.seed(4)
    onp.testing.assert_allclose(T.RandomLighting(0.1)(f), f + eig @ alphas, rtol=1e-5, atol=1e-3)
    gray = f @ onp.array([0.2989, 0.587, 0.114], "f4")
    onp.testing.assert_allclose(T.RandomGray(p=1.0)(u8), onp.repeat(gray[..., None], 3, -1), rtol=1e-6)
    assert T.RandomGray(p=0.0)(u8).dtype == onp.float32
    one = u8[..., :1]
    onp.testing.assert_array_equal(T.RandomSaturation(0.5)(one), one)
    onp.testing.assert_array_equal(T.RandomColorJitter()(u8), u8)
    for t in (T.RandomColorJitter(0.3, 0.3, 0.3, 0.1), T.RandomHue(0.5), T.RandomContrast(0.9)):
        out = t(u8)
        assert out.dtype == onp.uint8 and out.shape == u8.shape
    with pytest.raises(ValueError, match="expected 1 or 3 channels"):
        T.RandomBrightness(0.1)(onp.zeros((2, 2, 4), onp.uint8))


def test_random_geometry_and_apply():
    img = onp.arange(6 * 9 * 3, dtype=onp.float32).reshape(6, 9, 3)
    onp.random.seed(0)
    for _ in range(5):
        c = T.RandomCrop((4, 3))(img)
        hits = [(y, x) for y in range(4) for x in range(6) if onp.array_equal(img[y:y + 3, x:x + 4], c)]
        assert len(hits) == 1
    padded = T.RandomCrop(8, pad=1)(onp.ones((6, 6, 1), onp.float32))
    assert padded.shape == (8, 8, 1) and padded.min() == 0.0 and padded.max() == 1.0
    assert T.RandomResizedCrop((5, 4))(img).shape == (4, 5, 3)
    onp.testing.assert_array_equal(T.RandomApply(T.RandomFlipLeftRight(1.0), p=1.0)(img), img[:, ::-1])
    onp.testing.assert_array_equal(T.RandomApply(T.RandomFlipLeftRight(1.0), p=0.0)(img), img)
    with pytest.raises(ValueError, match="outside the image"):
        T.CropResize(5, 0, 6, 2)(img)
    with pytest.raises(ValueError, match="only bilinear"):
        T.Resize(3, interpolation=2)
