"""MNIST, FashionMNIST, CIFAR10 and CIFAR100 read from MXNet's standard files.

`root` defaults to `$MXNET_HOME/datasets/<name>` (`~/.mxnet/datasets/<name>` without
MXNET_HOME). Files that are missing are downloaded from MXNet's dataset repository when
the network allows; otherwise the error names the files and the folder to put them in.
Items are `(image, label)`: images numpy uint8 HWC (28x28x1 or 32x32x3), labels int32.
File hashes are not checked (any file in the right format is read).
"""

from __future__ import annotations

import gzip
import os
import struct
import tarfile
from typing import Any, Callable, Optional

import numpy as _onp

from ..dataset import Dataset

__all__ = ["MNIST", "FashionMNIST", "CIFAR10", "CIFAR100", "data_dir"]

_REPO = "https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/gluon/dataset/"


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are neither in its folder nor downloadable."""


def data_dir() -> str:
    """MXNet's data folder: $MXNET_HOME, else ~/.mxnet."""
    return os.environ.get("MXNET_HOME") or os.path.join(os.path.expanduser("~"), ".mxnet")


def _default_root(name: str) -> str:
    return os.path.join(data_dir(), "datasets", name)


class _DownloadedDataset(Dataset):
    """Holds `_data` (N, H, W, C) uint8 and `_label` (N,) int32; applies `transform(x, y)`."""

    def __init__(self, root: Optional[str], transform: Optional[Callable], name: str) -> None:
        self._root = os.path.expanduser(root) if root else _default_root(name)
        self._transform = transform
        self._data: Any = None
        self._label: Any = None
        self._get_data()

    def __getitem__(self, idx: int) -> Any:
        if self._transform is not None:
            return self._transform(self._data[idx], self._label[idx])
        return self._data[idx], self._label[idx]

    def __len__(self) -> int:
        return len(self._label)

    def _get_data(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define _get_data (reads its files into _data, _label)")

    def _fetch(self, names: list[str], remote: Callable[[str], str]) -> list[str]:
        """Paths of `names` under root, downloading the missing ones, or a clear error."""
        paths = [os.path.join(self._root, n) for n in names]
        missing = [n for n, p in zip(names, paths) if not os.path.isfile(p)]
        if not missing:
            return paths
        from ...utils import download

        try:
            os.makedirs(self._root, exist_ok=True)
            for n in missing:
                download(remote(n), path=os.path.join(self._root, n))
        except (OSError, RuntimeError) as exc:
            raise DatasetNotFoundError(
                f"{type(self).__name__}: missing {', '.join(missing)} in {self._root} and could not download "
                f"them ({exc}). Put MXNet's files there (or pass root=) and retry.") from None
        return paths


def _read_idx(path: str, images: bool) -> _onp.ndarray:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        if images:
            _magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
            return _onp.frombuffer(f.read(), dtype=_onp.uint8).reshape(n, rows, cols, 1)
        _magic, n = struct.unpack(">II", f.read(8))
        return _onp.frombuffer(f.read(), dtype=_onp.uint8).astype(_onp.int32)


class MNIST(_DownloadedDataset):
    """MNIST handwritten digits: 60000 training / 10000 test 28x28 images from the gzipped
    idx files `train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`, `t10k-...`."""

    _name = "mnist"
    _namespace = "mnist"

    def __init__(self, root: Optional[str] = None, train: bool = True, transform: Optional[Callable] = None) -> None:
        self._train = train
        super().__init__(root, transform, self._name)

    def _get_data(self) -> None:
        prefix = "train" if self._train else "t10k"
        names = [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"]
        img, lab = self._fetch(names, lambda n: _REPO + self._namespace + "/" + n)
        self._data = _read_idx(img, True)
        self._label = _read_idx(lab, False)
        if len(self._data) != len(self._label):
            raise ValueError(f"{type(self).__name__}: {img} holds {len(self._data)} images but {lab} "
                             f"{len(self._label)} labels")


class FashionMNIST(MNIST):
    """Fashion-MNIST: the MNIST file layout with clothing images (root .../fashion-mnist)."""

    _name = "fashion-mnist"
    _namespace = "fashion-mnist"


def _read_cifar(path: str, label_bytes: int, label_at: int) -> tuple:
    raw = _onp.fromfile(path, dtype=_onp.uint8)
    rec = 3072 + label_bytes
    if raw.size % rec:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of {rec}-byte CIFAR records")
    raw = raw.reshape(-1, rec)
    return raw[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), raw[:, label_at].astype(_onp.int32)


class CIFAR10(_DownloadedDataset):
    """CIFAR-10: 50000 training / 10000 test 32x32 colour images in 10 classes, from the binary
    batches `data_batch_1.bin` .. `data_batch_5.bin`, `test_batch.bin` (in root or in
    root/cifar-10-batches-bin, as the archive `cifar-10-binary.tar.gz` unpacks)."""

    _archive = "cifar-10-binary.tar.gz"
    _sub = "cifar-10-batches-bin"

    def __init__(self, root: Optional[str] = None, train: bool = True, transform: Optional[Callable] = None) -> None:
        self._train = train
        super().__init__(root, transform, "cifar10")

    def _names(self) -> list[str]:
        return [f"data_batch_{i}.bin" for i in range(1, 6)] if self._train else ["test_batch.bin"]

    def _locate(self) -> list[str]:
        names = self._names()
        for folder in (self._root, os.path.join(self._root, self._sub)):
            if all(os.path.isfile(os.path.join(folder, n)) for n in names):
                return [os.path.join(folder, n) for n in names]
        try:
            (archive,) = self._fetch([self._archive], lambda n: _REPO + type(self).__name__.lower() + "/" + n)
        except DatasetNotFoundError:
            raise DatasetNotFoundError(
                f"{type(self).__name__}: missing {', '.join(names)} in {self._root} (or its {self._sub} folder), "
                f"and {self._archive} could not be downloaded. Put MXNet's files there (or pass root=) and retry."
            ) from None
        with tarfile.open(archive) as tar:
            for m in tar.getmembers():  # Pythons without extraction filters: refuse unsafe names
                if m.name.startswith(("/", "\\")) or ".." in m.name.split("/") or not (m.isfile() or m.isdir()):
                    raise ValueError(f"{archive}: refusing to extract {m.name!r}")
            tar.extractall(self._root)
        return self._locate()

    def _get_data(self) -> None:
        parts = [_read_cifar(p, 1, 0) for p in self._locate()]
        self._data = _onp.concatenate([d for d, _ in parts])
        self._label = _onp.concatenate([lab for _, lab in parts])


class CIFAR100(CIFAR10):
    """CIFAR-100: `train.bin` / `test.bin` (root or root/cifar-100-binary); `fine_label`
    picks the 100 fine classes instead of the 20 coarse ones."""

    _archive = "cifar-100-binary.tar.gz"
    _sub = "cifar-100-binary"

    def __init__(self, root: Optional[str] = None, fine_label: bool = False, train: bool = True,
                 transform: Optional[Callable] = None) -> None:
        self._fine_label = fine_label
        self._train = train
        _DownloadedDataset.__init__(self, root, transform, "cifar100")

    def _names(self) -> list[str]:
        return ["train.bin" if self._train else "test.bin"]

    def _get_data(self) -> None:
        (path,) = self._locate()
        self._data, self._label = _read_cifar(path, 2, 1 if self._fine_label else 0)
