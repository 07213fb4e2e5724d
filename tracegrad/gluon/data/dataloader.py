"""`DataLoader` (MXNet 2.x): batches from a dataset, optionally built by worker processes.

With `num_workers > 0` a pool of processes (forked once per DataLoader, or threads with
`thread_pool=True`) builds whole batches in parallel, up to `prefetch` batches ahead, and
they are returned in sampler order: the batches equal those of `num_workers=0`. Workers
return numpy arrays; the loader turns them into tracegrad arrays. Each worker reseeds
numpy's generator (base seed from the main process plus the worker's pid), so random
transforms differ between workers.
"""

from __future__ import annotations

import collections
import multiprocessing
import multiprocessing.pool
import os
from typing import Any, Callable, Iterator, Optional

import numpy as _onp

from ... import np
from .dataset import ArrayDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler

__all__ = ["DataLoader", "default_batchify_fn", "default_mp_batchify_fn"]


def _np_batchify(data: list) -> Any:
    """Stack a list of items into numpy arrays (tuples become lists of stacked fields)."""
    first = data[0]
    if isinstance(first, tuple):
        return [_np_batchify(list(field)) for field in zip(*data)]
    if hasattr(first, "asnumpy"):
        data = [d.asnumpy() for d in data]
    if isinstance(first, _onp.ndarray) or hasattr(first, "asnumpy"):
        return _onp.stack(data)
    return _onp.asarray(data)


def to_tracegrad(x: Any) -> Any:
    """numpy arrays (in lists/tuples) as tracegrad arrays of the same dtype."""
    if isinstance(x, _onp.ndarray):
        return np.array(x, dtype=x.dtype)
    if isinstance(x, (list, tuple)):
        return type(x)(to_tracegrad(y) for y in x)
    return x


def to_numpy(x: Any) -> Any:
    """tracegrad arrays (in lists/tuples) as numpy (what a worker sends back)."""
    if hasattr(x, "asnumpy"):
        return x.asnumpy()
    if isinstance(x, (list, tuple)):
        return type(x)(to_numpy(y) for y in x)
    return x


def default_batchify_fn(data: list) -> Any:
    """Stack items into tracegrad arrays; tuple items give a list with one array per field."""
    return to_tracegrad(_np_batchify(data))


default_mp_batchify_fn = default_batchify_fn

_WORKER: dict = {}


def _worker_init(dataset: Any, batchify_fn: Optional[Callable], seed: int) -> None:
    _WORKER["dataset"], _WORKER["batchify"] = dataset, batchify_fn
    _onp.random.seed((seed + os.getpid()) % (2 ** 32))


def _build(dataset: Any, batchify_fn: Optional[Callable], indices: list) -> Any:
    """One batch as numpy: the default batchify stacks in numpy; a user's runs as given."""
    if batchify_fn is None:
        if type(dataset) is ArrayDataset:
            fast = dataset._batch(indices)
            if fast is not None:
                return list(fast) if isinstance(fast, tuple) else fast
        return _np_batchify([dataset[i] for i in indices])
    return to_numpy(batchify_fn([dataset[i] for i in indices]))


def _worker_batch(indices: list) -> Any:
    return _build(_WORKER["dataset"], _WORKER["batchify"], indices)


class DataLoader:
    """DataLoader(dataset, batch_size=None, shuffle=False, sampler=None, last_batch=None,
    batch_sampler=None, batchify_fn=None, num_workers=0, pin_memory=False, pin_device_id=0,
    prefetch=None, thread_pool=False, timeout=120)."""

    def __init__(self, dataset: Any, batch_size: Optional[int] = None, shuffle: bool = False, sampler: Any = None,
                 last_batch: Optional[str] = None, batch_sampler: Any = None, batchify_fn: Optional[Callable] = None,
                 num_workers: int = 0, pin_memory: bool = False, pin_device_id: int = 0,
                 prefetch: Optional[int] = None, thread_pool: bool = False, timeout: float = 120,
                 try_nopython: Any = None, auto_reload: bool = True) -> None:
        self._dataset = dataset
        self._pin_memory, self._pin_device_id = pin_memory, pin_device_id  # one host memory: nothing to pin
        if batch_sampler is None:
            if batch_size is None:
                raise ValueError("batch_size must be specified unless batch_sampler is specified")
            if sampler is None:
                sampler = RandomSampler(len(dataset)) if shuffle else SequentialSampler(len(dataset))
            elif shuffle:
                raise ValueError("shuffle must not be specified if sampler is specified")
            batch_sampler = BatchSampler(sampler, batch_size, last_batch if last_batch else "keep")
        elif batch_size is not None or shuffle or sampler is not None or last_batch is not None:
            raise ValueError("batch_size, shuffle, sampler and last_batch must not be specified if "
                             "batch_sampler is specified.")
        self._batch_sampler = batch_sampler
        self._batchify_fn = batchify_fn
        self._num_workers = max(0, int(num_workers))
        self._prefetch = max(1, int(prefetch) if prefetch is not None else 2 * max(1, self._num_workers))
        self._timeout = timeout
        self._thread_pool = thread_pool
        self._pool: Any = None
        if self._num_workers > 0:
            seed = int(_onp.random.randint(0, 2 ** 31 - 1))
            if thread_pool:
                self._pool = multiprocessing.pool.ThreadPool(self._num_workers)
            else:
                ctx = multiprocessing.get_context("fork")
                self._pool = ctx.Pool(self._num_workers, initializer=_worker_init,
                                      initargs=(dataset, batchify_fn, seed))

    def __len__(self) -> int:
        return len(self._batch_sampler)

    def __iter__(self) -> Iterator[Any]:
        if self._pool is None:
            for indices in self._batch_sampler:
                if self._batchify_fn is not None:
                    yield self._batchify_fn([self._dataset[i] for i in indices])
                else:
                    yield to_tracegrad(_build(self._dataset, None, indices))
            return
        yield from self._parallel()

    def _parallel(self) -> Iterator[Any]:
        pending: collections.deque = collections.deque()
        batches = iter(self._batch_sampler)
        if self._thread_pool:
            def submit(ix: list) -> Any:
                return self._pool.apply_async(_build, (self._dataset, self._batchify_fn, ix))
        else:
            def submit(ix: list) -> Any:
                return self._pool.apply_async(_worker_batch, (ix,))
        for indices in batches:
            pending.append(submit(indices))
            if len(pending) >= self._prefetch:
                break
        while pending:
            res = pending.popleft()
            try:
                out = res.get(self._timeout)
            except multiprocessing.TimeoutError:
                raise RuntimeError(f"DataLoader: a worker gave no batch within timeout={self._timeout} s "
                                   f"({self._num_workers} workers); raise timeout= or check the dataset") from None
            nxt = next(batches, None)
            if nxt is not None:
                pending.append(submit(nxt))
            yield to_tracegrad(out)

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            try:
                pool.terminate()
            except Exception:  # noqa: BLE001  (interpreter shutdown)
                pass
