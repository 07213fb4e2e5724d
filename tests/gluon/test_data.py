"""gluon.data: datasets, samplers, DataLoader (each last_batch mode, with and without worker
processes/threads, same batches), vision datasets from MXNet-format files, transforms."""

from __future__ import annotations

import gzip
import os
import struct
import time

import numpy as onp
import pytest

from tracegrad import np
from tracegrad.gluon import data as gdata
from tracegrad.gluon.data.vision import transforms as T

N = 10


def _ds():
    X = onp.arange(N * 3, dtype="float32").reshape(N, 3)
    y = onp.arange(N, dtype="int32")
    return gdata.ArrayDataset(X, y)


def _as_lists(loader):
    return [[b.asnumpy().tolist() for b in batch] for batch in loader]


def test_datasets_and_transforms_of_items():
    ds = _ds()
    assert len(ds) == N
    x, y = ds[3]
    assert x.tolist() == [9.0, 10.0, 11.0] and y == 3
    t = ds.transform_first(lambda x: x * 2)
    assert t[3][0].tolist() == [18.0, 20.0, 22.0] and t[3][1] == 3
    both = ds.transform(lambda x, y: (x.sum(), y + 1), lazy=False)
    assert isinstance(both, gdata.SimpleDataset) and both[2] == (21.0, 3)
    assert [d[1] for d in ds.filter(lambda item: item[1] % 3 == 0)] == [0, 3, 6, 9]
    assert [ds.shard(3, i)[0][1] for i in range(3)] == [0, 4, 7] and len(ds.shard(3, 0)) == 4
    assert len(ds.take(4)) == 4 and len(ds.take(None)) == N
    single = gdata.ArrayDataset(np.array(onp.arange(5.0)))
    assert single[2] == 2.0
    assert gdata.SimpleDataset([1, 2, 3])[1] == 2
    with pytest.raises(ValueError, match="same length"):
        gdata.ArrayDataset(onp.zeros(3), onp.zeros(4))


def test_samplers_and_batch_sampler_modes():
    assert list(gdata.SequentialSampler(4, start=2)) == [2, 3, 4, 5]
    onp.random.seed(1)
    perm = list(gdata.RandomSampler(6))
    assert sorted(perm) == list(range(6)) and perm != list(range(6))
    seq = gdata.SequentialSampler(7)
    keep = gdata.BatchSampler(seq, 3, "keep")
    assert list(keep) == [[0, 1, 2], [3, 4, 5], [6]] and len(keep) == 3
    disc = gdata.BatchSampler(seq, 3, "discard")
    assert list(disc) == [[0, 1, 2], [3, 4, 5]] and len(disc) == 2
    roll = gdata.BatchSampler(seq, 3, "rollover")
    assert list(roll) == [[0, 1, 2], [3, 4, 5]]
    assert len(roll) == (1 + 7) // 3
    assert list(roll) == [[6, 0, 1], [2, 3, 4]]  # the leftover starts the next epoch
    assert list(gdata.IntervalSampler(5, 2)) == [0, 2, 4, 1, 3]
    with pytest.raises(ValueError, match="last_batch must be one of"):
        gdata.BatchSampler(seq, 3, "pad")


EXPECT = {
    "keep": [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]],
    "discard": [[0, 1, 2, 3], [4, 5, 6, 7]],
    "rollover": [[0, 1, 2, 3], [4, 5, 6, 7]],
}


@pytest.mark.parametrize("workers,threads", [(0, False), (2, False), (2, True)],
                         ids=["no-workers", "processes", "threads"])
@pytest.mark.parametrize("mode", ["keep", "discard", "rollover"])
def test_dataloader_last_batch_modes(mode, workers, threads):
    ds = _ds()
    loader = gdata.DataLoader(ds, batch_size=4, last_batch=mode, num_workers=workers, thread_pool=threads)
    assert len(loader) == len(EXPECT[mode])
    got = _as_lists(loader)
    assert [b[1] for b in got] == EXPECT[mode]
    assert [b[0] for b in got] == [[[3.0 * i, 3.0 * i + 1, 3.0 * i + 2] for i in idx] for idx in EXPECT[mode]]
    if mode == "rollover":  # [8, 9] roll over into the next epoch
        assert len(loader) == 3
        assert [b[1] for b in _as_lists(loader)] == [[8, 9, 0, 1], [2, 3, 4, 5], [6, 7, 8, 9]]
    batch = next(iter(loader))
    assert isinstance(batch, list) and batch[0].dtype == onp.float32 and batch[1].dtype == onp.int32


def test_workers_give_the_same_shuffled_batches_as_the_main_process():
    ds = _ds().transform_first(lambda x: x + 1)
    onp.random.seed(7)
    plain = _as_lists(gdata.DataLoader(ds, batch_size=3, shuffle=True))
    onp.random.seed(7)
    loader = gdata.DataLoader(ds, batch_size=3, shuffle=True, num_workers=2)
    onp.random.seed(7)
    assert _as_lists(loader) == plain


class _SlowPid(gdata.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        time.sleep(0.1)
        return onp.array([os.getpid(), i], dtype="int64")


def test_worker_processes_run_in_parallel():
    loader = gdata.DataLoader(_SlowPid(), batch_size=2, num_workers=2)
    t0 = time.perf_counter()
    batches = [b.asnumpy() for b in loader]
    dt = time.perf_counter() - t0
    pids = {int(p) for b in batches for p in b[:, 0]}
    assert os.getpid() not in pids and len(pids) == 2
    assert [int(i) for b in batches for i in b[:, 1]] == list(range(8))
    assert dt < 0.75  # 8 items x 0.1 s in one process would take 0.8 s


def test_batchify_fn_batch_sampler_and_argument_errors():
    ds = _ds()

    def firsts(items):
        return np.array(onp.stack([x for x, _ in items]))

    for workers in (0, 2):
        loader = gdata.DataLoader(ds, batch_size=5, batchify_fn=firsts, num_workers=workers)
        assert [b.shape for b in loader] == [(5, 3), (5, 3)]
    bs = gdata.BatchSampler(gdata.SequentialSampler(N), 6, "keep")
    assert [len(b[1]) for b in gdata.DataLoader(ds, batch_sampler=bs)] == [6, 4]
    with pytest.raises(ValueError, match="batch_size must be specified"):
        gdata.DataLoader(ds)
    with pytest.raises(ValueError, match="must not be specified if batch_sampler"):
        gdata.DataLoader(ds, batch_size=2, batch_sampler=bs)
    with pytest.raises(ValueError, match="shuffle must not be specified"):
        gdata.DataLoader(ds, batch_size=2, shuffle=True, sampler=gdata.SequentialSampler(N))
    gdata.DataLoader(ds, batch_size=2, pin_memory=True, prefetch=3, thread_pool=False)


# ---- vision datasets from MXNet-format files ------------------------------------------------
def _write_idx(folder, prefix, images, labels):
    with gzip.open(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"), "wb") as f:
        f.write(struct.pack(">IIII", 2051, len(images), 28, 28) + images.tobytes())
    with gzip.open(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz"), "wb") as f:
        f.write(struct.pack(">II", 2049, len(labels)) + labels.tobytes())


@pytest.mark.parametrize("cls,name", [("MNIST", "mnist"), ("FashionMNIST", "fashion-mnist")])
def test_mnist_files_from_mxnet_home(tmp_path, monkeypatch, cls, name):
    folder = tmp_path / "datasets" / name
    folder.mkdir(parents=True)
    rng = onp.random.default_rng(0)
    imgs = rng.integers(0, 256, (5, 28, 28), dtype=onp.uint8)
    labs = onp.array([3, 1, 4, 1, 5], onp.uint8)
    _write_idx(str(folder), "train", imgs, labs)
    _write_idx(str(folder), "t10k", imgs[:2], labs[:2])
    monkeypatch.setenv("MXNET_HOME", str(tmp_path))
    ds = getattr(gdata.vision, cls)()
    assert len(ds) == 5
    x, y = ds[2]
    assert x.shape == (28, 28, 1) and x.dtype == onp.uint8 and (x[..., 0] == imgs[2]).all() and y == 4
    test = getattr(gdata.vision, cls)(train=False, transform=lambda x, y: (T.ToTensor()(x), y))
    assert len(test) == 2 and test[1][0].shape == (1, 28, 28) and test[1][0].dtype == onp.float32
    loader = gdata.DataLoader(ds.transform_first(T.ToTensor()), batch_size=2, num_workers=2)
    X, Y = next(iter(loader))
    assert X.shape == (2, 1, 28, 28) and Y.asnumpy().tolist() == [3, 1]
    onp.testing.assert_allclose(X.asnumpy()[1, 0], imgs[1] / 255.0, rtol=1e-6)


def test_default_root_is_dot_mxnet_without_mxnet_home(monkeypatch, tmp_path):
    monkeypatch.delenv("MXNET_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    from tracegrad.gluon.data.vision import datasets

    assert datasets.data_dir() == os.path.join(str(tmp_path), ".mxnet")


def _cifar_records(n, label_bytes, rng):
    labels = rng.integers(0, 10, (n, label_bytes), dtype=onp.uint8)
    chw = rng.integers(0, 256, (n, 3, 32, 32), dtype=onp.uint8)
    return onp.concatenate([labels, chw.reshape(n, -1)], axis=1), labels, chw


def test_cifar10_and_cifar100_binary_files(tmp_path):
    rng = onp.random.default_rng(0)
    c10 = tmp_path / "c10" / "cifar-10-batches-bin"
    c10.mkdir(parents=True)
    parts = []
    for i in range(1, 6):
        rec, lab, chw = _cifar_records(2, 1, rng)
        rec.tofile(str(c10 / f"data_batch_{i}.bin"))
        parts.append((lab, chw))
    _cifar_records(3, 1, rng)[0].tofile(str(c10 / "test_batch.bin"))
    ds = gdata.vision.CIFAR10(root=str(tmp_path / "c10"))
    assert len(ds) == 10
    x, y = ds[3]
    assert x.shape == (32, 32, 3) and (x == parts[1][1][1].transpose(1, 2, 0)).all() and y == parts[1][0][1, 0]
    assert len(gdata.vision.CIFAR10(root=str(tmp_path / "c10"), train=False)) == 3

    c100 = tmp_path / "c100"
    c100.mkdir()
    rec, lab, chw = _cifar_records(4, 2, rng)
    rec.tofile(str(c100 / "train.bin"))
    coarse = gdata.vision.CIFAR100(root=str(c100))
    fine = gdata.vision.CIFAR100(root=str(c100), fine_label=True)
    assert coarse[2][1] == lab[2, 0] and fine[2][1] == lab[2, 1]
    assert (fine[0][0] == chw[0].transpose(1, 2, 0)).all()


def test_missing_files_offline_name_the_files_and_the_folder(tmp_path, monkeypatch):
    from tracegrad.gluon import utils

    def offline(url, path=None, **kw):
        raise RuntimeError(f"download of {url} failed: no network")

    monkeypatch.setattr(utils, "download", offline)
    with pytest.raises(gdata.vision.DatasetNotFoundError) as e:
        gdata.vision.MNIST(root=str(tmp_path / "m"))
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and "train-labels-idx1-ubyte.gz" in msg and str(tmp_path / "m") in msg
    with pytest.raises(gdata.vision.DatasetNotFoundError, match=r"data_batch_1\.bin.*cifar-10-batches-bin"):
        gdata.vision.CIFAR10(root=str(tmp_path / "c"))


# ---- transforms -------------------------------------------------------------------------------
def _bilinear_ref(img, w, h):
    """A scalar-loop bilinear resize with half-pixel centres (the oracle)."""
    H, W, C = img.shape
    out = onp.zeros((h, w, C))
    for i in range(h):
        sy = min(max((i + 0.5) * H / h - 0.5, 0), H - 1)
        y0 = int(onp.floor(sy)); y1 = min(y0 + 1, H - 1); fy = sy - y0
        for j in range(w):
            sx = min(max((j + 0.5) * W / w - 0.5, 0), W - 1)
            x0 = int(onp.floor(sx)); x1 = min(x0 + 1, W - 1); fx = sx - x0
            top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
            bot = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
            out[i, j] = top * (1 - fy) + bot * fy
    return out


def test_resize_against_scalar_reference():
    rng = onp.random.default_rng(0)
    img = rng.uniform(0, 255, (7, 9, 3)).astype("float32")
    for w, h in [(4, 5), (13, 11), (9, 7)]:
        out = T.Resize((w, h))(img)
        assert out.shape == (h, w, 3)
        onp.testing.assert_allclose(out, _bilinear_ref(img.astype("float64"), w, h), rtol=1e-5, atol=1e-4)
    u8 = rng.integers(0, 256, (6, 8, 1), dtype=onp.uint8)
    out = T.Resize(4)(u8)
    assert out.dtype == onp.uint8 and out.shape == (4, 4, 1)
    # uint8 is OpenCV's fixed point (MXNet's bits: tests/gluon/test_transforms.py), within 1 of exact
    assert onp.abs(out - _bilinear_ref(u8.astype("float64"), 4, 4)).max() <= 1.0
    assert T.Resize(4, keep_ratio=True)(u8).shape == (4, 5, 1)


def test_tensor_transforms():
    rng = onp.random.default_rng(1)
    img = rng.integers(0, 256, (4, 6, 3), dtype=onp.uint8)
    t = T.ToTensor()(img)
    assert t.shape == (3, 4, 6) and t.dtype == onp.float32
    onp.testing.assert_allclose(t, img.transpose(2, 0, 1) / 255.0, rtol=1e-6)
    n = T.Normalize(mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 2.0))(t)
    onp.testing.assert_allclose(n, (t - onp.array([0.1, 0.2, 0.3])[:, None, None])
                                / onp.array([0.5, 0.25, 2.0])[:, None, None], rtol=1e-5, atol=1e-6)
    tg = T.ToTensor()(np.array(img, dtype="uint8"))
    assert hasattr(tg, "asnumpy") and tg.shape == (3, 4, 6)
    assert T.ToTensor()(rng.integers(0, 256, (2, 4, 6, 3), dtype=onp.uint8)).shape == (2, 3, 4, 6)
    assert T.Cast("float16")(img).dtype == onp.float16
    comp = T.Compose([T.Cast(), T.ToTensor(), T.Normalize(0.5, 0.5)])
    onp.testing.assert_allclose(comp(img), (img.transpose(2, 0, 1) / 255.0 - 0.5) / 0.5, rtol=1e-5)
    with pytest.raises(ValueError, match="Normalize: mean has 2 values for 3 channels"):
        T.Normalize(mean=(0.1, 0.2))(t)


def test_crops_and_flips():
    img = onp.arange(5 * 8 * 2, dtype="float32").reshape(5, 8, 2)
    c = T.CenterCrop((4, 3))(img)
    onp.testing.assert_array_equal(c, img[1:4, 2:6])
    assert T.CenterCrop(10)(img).shape == (10, 10, 2)
    onp.random.seed(0)
    r = T.RandomResizedCrop((6, 4))(img)
    assert r.shape == (4, 6, 2)
    full = T.RandomResizedCrop((8, 5), scale=(1.0, 1.0), ratio=(1.6, 1.6))(img)
    onp.testing.assert_allclose(full, img, rtol=1e-6)
    onp.testing.assert_array_equal(T.RandomFlipLeftRight(p=1.0)(img), img[:, ::-1])
    onp.testing.assert_array_equal(T.RandomFlipTopBottom(p=1.0)(img), img[::-1])
    onp.testing.assert_array_equal(T.RandomFlipLeftRight(p=0.0)(img), img)


def test_cifar10_from_the_archive_in_root(tmp_path):
    import tarfile

    rng = onp.random.default_rng(2)
    src = tmp_path / "src" / "cifar-10-batches-bin"
    src.mkdir(parents=True)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        _cifar_records(1, 1, rng)[0].tofile(str(src / name))
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(str(root / "cifar-10-binary.tar.gz"), "w:gz") as tar:
        tar.add(str(src), arcname="cifar-10-batches-bin")
    assert len(gdata.vision.CIFAR10(root=str(root))) == 5
    assert (root / "cifar-10-batches-bin" / "test_batch.bin").is_file()


def test_abstract_sampler_says_what_a_subclass_must_define() -> None:
    import pytest as _pytest

    from tracegrad.gluon.data.sampler import Sampler

    class Mine(Sampler):
        pass

    with _pytest.raises(NotImplementedError, match="Mine must define __iter__"):
        iter(Mine())
    with _pytest.raises(NotImplementedError, match="Mine must define __len__"):
        len(Mine())


def test_batchify_functions():
    from tracegrad.gluon.data import batchify

    a, b = onp.arange(6, dtype="f4").reshape(2, 3), onp.ones((2, 3), "f4")
    s = batchify.Stack()([a, b])
    assert hasattr(s, "asnumpy") and s.dtype == onp.float32
    onp.testing.assert_array_equal(s.asnumpy(), onp.stack([a, b]))
    pairs = batchify.Stack()([(a, 1), (b, 2)])
    onp.testing.assert_array_equal(pairs[1].asnumpy(), [1, 2])
    p = batchify.Pad(val=-1)([onp.array([1, 2, 3]), onp.array([4]), [5, 6]])
    onp.testing.assert_array_equal(p.asnumpy(), [[1, 2, 3], [4, -1, -1], [5, 6, -1]])
    p2 = batchify.Pad(round_to=4, dtype="float32")([onp.ones((2, 1)), onp.ones((3, 2))])
    assert p2.shape == (2, 4, 4) and p2.dtype == onp.float32 and float(p2.asnumpy().sum()) == 8.0
    with pytest.raises(NotImplementedError, match="Group"):
        batchify.Pad()([(a, 1)])
    ap = batchify.Append()([a, onp.ones((1, 3), "f4")])
    assert [x.shape for x in ap] == [(1, 2, 3), (1, 1, 3)]
    assert [x.shape for x in batchify.Append(expand=False)([a, b])] == [(2, 3), (2, 3)]
    g = batchify.Group(batchify.Pad(), batchify.Stack())([(onp.array([1, 2]), 0), (onp.array([3]), 1)])
    onp.testing.assert_array_equal(g[0].asnumpy(), [[1, 2], [3, 0]])
    onp.testing.assert_array_equal(g[1].asnumpy(), [0, 1])
    assert batchify.AsList()([1, "x"]) == [1, "x"]
    ds = gdata.SimpleDataset([(onp.arange(n, dtype="f4"), n) for n in (1, 3, 2, 4)])
    for workers in (0, 2):
        batches = list(gdata.DataLoader(ds, batch_size=2, num_workers=workers,
                                       batchify_fn=batchify.Group(batchify.Pad(), batchify.Stack())))
        assert [tuple(x.shape) for x, _ in batches] == [(2, 3), (2, 4)]
        onp.testing.assert_array_equal(batches[1][0].asnumpy(), [[0, 1, 0, 0], [0, 1, 2, 3]])


def test_abstract_dataset_names_the_missing_method() -> None:
    import pytest as _pytest

    from tracegrad.gluon.data import Dataset

    class Mine(Dataset):
        pass

    with _pytest.raises(NotImplementedError, match=r"Mine\.__getitem__"):
        Mine()[0]
    with _pytest.raises(NotImplementedError, match=r"Mine\.__len__"):
        len(Mine())
