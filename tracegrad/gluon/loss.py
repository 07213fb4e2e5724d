"""Losses (MXNet 2.x `gluon.loss`): each returns one value per example, the mean over every
axis but `batch_axis`, after the global `weight` and the broadcastable `sample_weight`."""

from __future__ import annotations

from numbers import Number
from typing import Any, Optional

from .. import np, npx
from .block import HybridBlock

__all__ = ["Loss", "L2Loss", "L1Loss", "SigmoidBinaryCrossEntropyLoss", "SigmoidBCELoss",
           "SoftmaxCrossEntropyLoss", "SoftmaxCELoss", "KLDivLoss", "HuberLoss", "HingeLoss",
           "SquaredHingeLoss", "LogisticLoss", "CosineEmbeddingLoss"]

_EPS = 1e-12


def _weighted(loss: Any, weight: Optional[float], sample_weight: Any) -> Any:
    if sample_weight is not None:
        loss = loss * sample_weight
    if weight is not None:
        if not isinstance(weight, Number):
            raise TypeError(f"loss weight must be a number, got {type(weight).__name__}")
        loss = loss * weight
    return loss


def _batch_mean(loss: Any, batch_axis: int) -> Any:
    axes = [a for a in range(loss.ndim) if a != batch_axis % max(loss.ndim, 1)]
    return np.mean(loss, axis=tuple(axes)) if axes else loss


def _like(x: Any, y: Any) -> Any:
    return x.reshape(y.shape) if tuple(x.shape) != tuple(y.shape) else x


def _softrelu(x: Any) -> Any:
    return np.log1p(np.exp(x))


class Loss(HybridBlock):
    """Base class of the losses (a HybridBlock): `weight` (a global scalar factor or None),
    `batch_axis`. Called as `loss(pred, label, ...)`; a subclass implements `forward`."""

    def __init__(self, weight: Optional[float] = None, batch_axis: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._weight = weight
        self._batch_axis = batch_axis

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_axis={self._batch_axis}, w={self._weight})"


class L2Loss(Loss):
    """`weight/2 * (pred - label)**2`, averaged per example."""

    def __init__(self, weight: float = 1.0, batch_axis: int = 0, **kwargs: Any) -> None:
        super().__init__(weight, batch_axis, **kwargs)

    def forward(self, pred: Any, label: Any, sample_weight: Any = None) -> Any:
        loss = np.square(_like(label, pred) - pred)
        return _batch_mean(_weighted(loss, self._weight / 2, sample_weight), self._batch_axis)


class L1Loss(Loss):
    """`|pred - label|`, averaged per example."""

    def __init__(self, weight: Optional[float] = None, batch_axis: int = 0, **kwargs: Any) -> None:
        super().__init__(weight, batch_axis, **kwargs)

    def forward(self, pred: Any, label: Any, sample_weight: Any = None) -> Any:
        loss = np.abs(_like(label, pred) - pred)
        return _batch_mean(_weighted(loss, self._weight, sample_weight), self._batch_axis)


class SigmoidBinaryCrossEntropyLoss(Loss):
    """Binary cross entropy on logits (stable form) or, with `from_sigmoid`, on probabilities;
    `pos_weight` scales the positive term."""

    def __init__(self, from_sigmoid: bool = False, weight: Optional[float] = None, batch_axis: int = 0,
                 **kwargs: Any) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        self._from_sigmoid = from_sigmoid

    def forward(self, pred: Any, label: Any, sample_weight: Any = None, pos_weight: Any = None) -> Any:
        label = _like(label, pred)
        if not self._from_sigmoid:
            if pos_weight is None:
                loss = npx.relu(pred) - pred * label + _softrelu(-np.abs(pred))
            else:
                log_weight = 1 + (pos_weight - 1) * label
                loss = pred - pred * label + log_weight * (_softrelu(-np.abs(pred)) + npx.relu(-pred))
        else:
            pos = np.log(pred + _EPS) * label
            if pos_weight is not None:
                pos = pos * pos_weight
            loss = -(pos + np.log(1.0 - pred + _EPS) * (1.0 - label))
        return _batch_mean(_weighted(loss, self._weight, sample_weight), self._batch_axis)


SigmoidBCELoss = SigmoidBinaryCrossEntropyLoss


class SoftmaxCrossEntropyLoss(Loss):
    """Cross entropy of softmax(pred) along `axis` with class indices (`sparse_label`) or a
    distribution; `from_logits` means pred already holds log probabilities."""

    def __init__(self, axis: int = -1, sparse_label: bool = True, from_logits: bool = False,
                 weight: Optional[float] = None, batch_axis: int = 0, **kwargs: Any) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        self._axis = axis
        self._sparse_label = sparse_label
        self._from_logits = from_logits

    def forward(self, pred: Any, label: Any, sample_weight: Any = None) -> Any:
        if not self._from_logits:
            pred = npx.log_softmax(pred, axis=self._axis)
        if self._sparse_label:
            loss = -npx.pick(pred, label, axis=self._axis, keepdims=True)
        else:
            loss = -np.sum(pred * _like(label, pred), axis=self._axis, keepdims=True)
        return _batch_mean(_weighted(loss, self._weight, sample_weight), self._batch_axis)


SoftmaxCELoss = SoftmaxCrossEntropyLoss


class KLDivLoss(Loss):
    """`label * (log(label) - pred)` with pred log probabilities (`from_logits`, the default)
    or logits turned into them by log_softmax along `axis`."""

    def __init__(self, from_logits: bool = True, axis: int = -1, weight: Optional[float] = None,
                 batch_axis: int = 0, **kwargs: Any) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        self._from_logits = from_logits
        self._axis = axis

    def forward(self, pred: Any, label: Any, sample_weight: Any = None) -> Any:
        if not self._from_logits:
            pred = npx.log_softmax(pred, axis=self._axis)
        loss = label * (np.log(label + _EPS) - pred)
        return _batch_mean(_weighted(loss, self._weight, sample_weight), self._batch_axis)


class HuberLoss(Loss):
    """Smooth L1: `0.5/rho * err**2` where `|err| <= rho`, else `|err| - rho/2`."""

    def __init__(self, rho: float = 1, weight: Optional[float] = None, batch_axis: int = 0,
                 **kwargs: Any) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        self._rho = rho

    def forward(self, pred: Any, label: Any, sample_weight: Any = None) -> Any:
        err = np.abs(_like(label, pred) - pred)
        loss = np.where(err > self._rho, err - 0.5 * self._rho, (0.5 / self._rho) * np.square(err))
        return _batch_mean(_weighted(loss, self._weight, sample_weight), self._batch_axis)


class HingeLoss(Loss):
    """`max(0, margin - pred * label)` with labels -1/1."""

    def __init__(self, margin: float = 1, weight: Optional[float] = None, batch_axis: int = 0,
                 **kwargs: Any) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        self._margin = margin

    def forward(self, pred: Any, label: Any, sample_weight: Any = None) -> Any:
        loss = npx.relu(self._margin - pred * _like(label, pred))
        return _batch_mean(_weighted(loss, self._weight, sample_weight), self._batch_axis)


class SquaredHingeLoss(HingeLoss):
    """`max(0, margin - pred * label) ** 2` with labels -1/1."""

    def forward(self, pred: Any, label: Any, sample_weight: Any = None) -> Any:
        loss = np.square(npx.relu(self._margin - pred * _like(label, pred)))
        return _batch_mean(_weighted(loss, self._weight, sample_weight), self._batch_axis)


class LogisticLoss(Loss):
    """`log(1 + exp(-pred * label))` with labels -1/1 (`label_format='signed'`) or 0/1
    (`'binary'`), in a stable form."""

    def __init__(self, weight: Optional[float] = None, batch_axis: int = 0, label_format: str = "signed",
                 **kwargs: Any) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        if label_format not in ("signed", "binary"):
            raise ValueError(f"LogisticLoss: label_format must be 'signed' or 'binary', got {label_format!r}")
        self._label_format = label_format

    def forward(self, pred: Any, label: Any, sample_weight: Any = None) -> Any:
        label = _like(label, pred)
        if self._label_format == "signed":
            label = (label + 1.0) / 2.0
        loss = npx.relu(pred) - pred * label + _softrelu(-np.abs(pred))
        return _batch_mean(_weighted(loss, self._weight, sample_weight), self._batch_axis)


class CosineEmbeddingLoss(Loss):
    """`1 - cos(input1, input2)` where label is 1, `max(0, cos - margin)` where it is -1;
    the cosine is taken over the last axis, one value per example."""

    def __init__(self, weight: Optional[float] = None, batch_axis: int = 0, margin: float = 0,
                 **kwargs: Any) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        self._margin = margin

    def forward(self, input1: Any, input2: Any, label: Any, sample_weight: Any = None) -> Any:
        input1 = _like(input1, input2)
        label = label.reshape((-1, 1))
        cos = self._cosine_similarity(input1, input2)
        pos = (1 - cos) * (label == 1)
        neg = np.maximum(0.0, (label == -1) * (cos - self._margin))
        loss = _weighted(pos + neg, self._weight, sample_weight)
        return _batch_mean(loss, self._batch_axis)

    @staticmethod
    def _cosine_similarity(x: Any, y: Any, axis: int = -1) -> Any:
        xn = np.sqrt(np.sum(x * x, axis=axis)).reshape((-1, 1))
        yn = np.sqrt(np.sum(y * y, axis=axis)).reshape((-1, 1))
        dot = np.sum(x * y, axis=axis).reshape((-1, 1))
        return dot / np.maximum(xn * yn, _EPS)
