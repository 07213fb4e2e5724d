"""`gluon.data` (MXNet 2.x): datasets, samplers, the DataLoader, and `vision`."""

from . import batchify, vision  # noqa: F401
from .dataloader import DataLoader, default_batchify_fn, default_mp_batchify_fn  # noqa: F401
from .dataset import ArrayDataset, Dataset, SimpleDataset  # noqa: F401
from .sampler import (BatchSampler, FilterSampler, IntervalSampler, RandomSampler, Sampler,  # noqa: F401
                      SequentialSampler)

__all__ = ["Dataset", "SimpleDataset", "ArrayDataset", "Sampler", "SequentialSampler", "RandomSampler",
           "BatchSampler", "FilterSampler", "IntervalSampler", "DataLoader", "default_batchify_fn",
           "default_mp_batchify_fn", "vision", "batchify"]
