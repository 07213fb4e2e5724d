"""Datasets (MXNet 2.x `gluon.data`): Dataset with transform/transform_first/filter/shard/take,
SimpleDataset and ArrayDataset. Items are numpy arrays or Python values (fast to index and
to send to worker processes); the DataLoader turns batches into tracegrad arrays."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as _onp

__all__ = ["Dataset", "SimpleDataset", "ArrayDataset"]


def _host(x: Any) -> Any:
    """A tracegrad array as numpy (other values unchanged)."""
    return x.asnumpy() if hasattr(x, "asnumpy") else x


class Dataset:
    """Abstract dataset: `__getitem__(idx)` and `__len__()`."""

    def __getitem__(self, idx: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.__getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__}.__len__")

    def filter(self, fn: Callable[[Any], bool]) -> "Dataset":
        """The items for which `fn(item)` is true."""
        return SimpleDataset([self[i] for i in range(len(self)) if fn(self[i])])

    def shard(self, num_shards: int, index: int) -> "Dataset":
        """Shard `index` of `num_shards` contiguous shards (the first ones one item longer)."""
        if not 0 <= index < num_shards:
            raise ValueError(f"shard index {index} out of range for {num_shards} shards")
        n = len(self)
        size, extra = divmod(n, num_shards)
        start = index * size + min(index, extra)
        end = start + size + (1 if index < extra else 0)
        return _Indexed(self, range(start, end))

    def take(self, count: Any) -> "Dataset":
        """The first `count` items (all when count is None or larger)."""
        n = len(self) if count is None or count > len(self) else count
        return _Indexed(self, range(n))

    def sample(self, sampler: Any) -> "Dataset":
        """The items at the indices `sampler` yields."""
        return _Indexed(self, list(sampler))

    def transform(self, fn: Callable, lazy: bool = True) -> "Dataset":
        """Each item passed through `fn` (a tuple item is unpacked into its arguments)."""
        trans = _LazyTransformDataset(self, fn)
        if lazy:
            return trans
        return SimpleDataset([trans[i] for i in range(len(trans))])

    def transform_first(self, fn: Callable, lazy: bool = True) -> "Dataset":
        """`fn` applied to the first element of each item (the data, not the label)."""
        return self.transform(_TransformFirst(fn), lazy)


class SimpleDataset(Dataset):
    """A dataset over a list (or anything indexable with a length)."""

    def __init__(self, data: Sequence) -> None:
        self._data = data

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, idx: int) -> Any:
        return self._data[idx]


class ArrayDataset(Dataset):
    """Several arrays of equal length zipped: item i is `(a[i], b[i], ...)` (just `a[i]` for
    one array). tracegrad arrays are held as numpy."""

    def __init__(self, *args: Any) -> None:
        if not args:
            raise ValueError("ArrayDataset needs at least 1 array")
        self._length = len(args[0])
        self._data = []
        for i, data in enumerate(args):
            if len(data) != self._length:
                raise ValueError(f"ArrayDataset: all arrays must have the same length; array 0 has "
                                 f"{self._length}, array {i} has {len(data)}")
            data = _host(data)
            if isinstance(data, list) and data and not isinstance(data[0], (list, tuple, dict, str)):
                try:
                    data = _onp.asarray(data)
                except (ValueError, TypeError):
                    pass
            self._data.append(data)

    def __getitem__(self, idx: int) -> Any:
        if len(self._data) == 1:
            return self._data[0][idx]
        return tuple(data[idx] for data in self._data)

    def __len__(self) -> int:
        return self._length

    def _batch(self, indices: Sequence[int]) -> Any:
        """Items at `indices`, stacked (numpy fancy indexing), or None when not all numpy."""
        if not all(isinstance(d, _onp.ndarray) for d in self._data):
            return None
        idx = _onp.asarray(indices, dtype=_onp.int64)
        out = tuple(d[idx] for d in self._data)
        return out[0] if len(out) == 1 else out


class _Indexed(Dataset):
    def __init__(self, base: Dataset, indices: Sequence[int]) -> None:
        self._base, self._indices = base, indices

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, idx: int) -> Any:
        return self._base[self._indices[idx]]


class _LazyTransformDataset(Dataset):
    def __init__(self, data: Dataset, fn: Callable) -> None:
        self._data, self._fn = data, fn

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, idx: int) -> Any:
        item = self._data[idx]
        if isinstance(item, tuple):
            return self._fn(*item)
        return self._fn(item)


class _TransformFirst:
    """A picklable `fn` on the first element (workers receive it)."""

    def __init__(self, fn: Callable) -> None:
        self._fn = fn

    def __call__(self, x: Any, *args: Any) -> Any:
        if args:
            return (self._fn(x),) + args
        return self._fn(x)
