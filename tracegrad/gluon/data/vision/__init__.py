"""`gluon.data.vision`: the standard image datasets and transforms."""

from . import transforms  # noqa: F401
from .datasets import CIFAR10, CIFAR100, MNIST, DatasetNotFoundError, FashionMNIST  # noqa: F401

__all__ = ["MNIST", "FashionMNIST", "CIFAR10", "CIFAR100", "DatasetNotFoundError", "transforms"]
