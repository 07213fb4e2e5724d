"""Evaluation metrics (MXNet 2.x `gluon.metric`, also `tracegrad.metric` for `mx.metric`).

`update(labels, preds)` takes arrays or lists of arrays (tracegrad or numpy) and
accumulates on the host; `get()` gives `(name, value)` (nan before any update).
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as _onp

__all__ = ["EvalMetric", "Accuracy", "TopKAccuracy", "F1", "Fbeta", "MCC", "BinaryAccuracy", "MAE", "MSE", "RMSE", "CrossEntropy", "Perplexity",
           "Loss", "CompositeEvalMetric", "create", "register"]

_REGISTRY: dict[str, type] = {}


def register(klass: type) -> type:
    """Register a metric class under its lower-cased name (for `create`)."""
    _REGISTRY[klass.__name__.lower()] = klass
    return klass


def _alias(*names: str) -> Any:
    def deco(klass: type) -> type:
        for n in names:
            _REGISTRY[n] = klass
        return klass
    return deco


def create(metric: Any, *args: Any, **kwargs: Any) -> "EvalMetric":
    """A metric from a name ('acc', 'top_k_accuracy', 'f1', 'mae', 'mse', 'rmse', 'ce',
    'perplexity', 'loss'), an EvalMetric, a callable `f(label, pred)` or a list of these."""
    if isinstance(metric, EvalMetric):
        return metric
    if callable(metric) and not isinstance(metric, type):
        return CustomMetric(metric, *args, **kwargs)
    if isinstance(metric, (list, tuple)):
        comp = CompositeEvalMetric()
        for m in metric:
            comp.add(create(m, *args, **kwargs))
        return comp
    key = str(metric).lower()
    if key not in _REGISTRY:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[key](*args, **kwargs)


def _host(x: Any) -> _onp.ndarray:
    return x.asnumpy() if hasattr(x, "asnumpy") else _onp.asarray(x)


def _pairs(labels: Any, preds: Any, same_count: bool = True) -> list:
    if not isinstance(labels, (list, tuple)):
        labels = [labels]
    if not isinstance(preds, (list, tuple)):
        preds = [preds]
    if same_count and len(labels) != len(preds):
        raise ValueError(f"metric: {len(labels)} label arrays but {len(preds)} prediction arrays")
    return [(_host(lab), _host(p)) for lab, p in zip(labels, preds)]


class EvalMetric:
    """Base class: `sum_metric / num_inst`, reset by `reset()`; `global_*` survive `reset_local()`."""

    def __init__(self, name: str, output_names: Any = None, label_names: Any = None, **kwargs: Any) -> None:
        self.name = str(name)
        self.output_names, self.label_names = output_names, label_names
        self._kwargs = kwargs
        self.reset()

    def __str__(self) -> str:
        return f"EvalMetric: {dict(self.get_name_value())}"

    def get_config(self) -> dict:
        cfg = dict(self._kwargs)
        cfg.update(metric=type(self).__name__, name=self.name, output_names=self.output_names,
                   label_names=self.label_names)
        return cfg

    def update_dict(self, label: dict, pred: dict) -> None:
        preds = [pred[n] for n in self.output_names] if self.output_names is not None else list(pred.values())
        labels = [label[n] for n in self.label_names] if self.label_names is not None else list(label.values())
        self.update(labels, preds)

    def update(self, labels: Any, preds: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__}.update")

    def _add(self, value: float, n: int) -> None:
        self.sum_metric += value
        self.global_sum_metric += value
        self.num_inst += n
        self.global_num_inst += n

    def reset(self) -> None:
        self.num_inst = 0
        self.sum_metric = 0.0
        self.global_num_inst = 0
        self.global_sum_metric = 0.0

    def reset_local(self) -> None:
        self.num_inst = 0
        self.sum_metric = 0.0

    def get(self) -> tuple:
        if self.num_inst == 0:
            return self.name, float("nan")
        return self.name, self.sum_metric / self.num_inst

    def get_global(self) -> tuple:
        if self.global_num_inst == 0:
            return self.name, float("nan")
        return self.name, self.global_sum_metric / self.global_num_inst

    def get_name_value(self) -> list:
        name, value = self.get()
        if not isinstance(name, list):
            name, value = [name], [value]
        return list(zip(name, value))


@_alias("acc")
@register
class Accuracy(EvalMetric):
    """Fraction of predictions equal to the label; class scores are argmax'ed along `axis`."""

    def __init__(self, axis: int = 1, name: str = "accuracy", output_names: Any = None, label_names: Any = None) -> None:
        self.axis = axis
        super().__init__(name, output_names, label_names, axis=axis)

    def update(self, labels: Any, preds: Any) -> None:
        for label, pred in _pairs(labels, preds):
            if pred.shape != label.shape:
                pred = pred.argmax(axis=self.axis)
            pred = pred.astype(_onp.int64).reshape(-1)
            label = label.astype(_onp.int64).reshape(-1)
            if pred.shape != label.shape:
                raise ValueError(f"Accuracy: {label.size} labels but {pred.size} predictions")
            self._add(float((pred == label).sum()), label.size)


@_alias("top_k_accuracy", "top_k_acc")
@register
class TopKAccuracy(EvalMetric):
    """Fraction of labels among the `top_k` highest scores."""

    def __init__(self, top_k: int = 1, name: str = "top_k_accuracy", output_names: Any = None,
                 label_names: Any = None) -> None:
        if top_k < 1:
            raise ValueError(f"TopKAccuracy: top_k must be >= 1, got {top_k}")
        self.top_k = top_k
        super().__init__(f"{name}_{top_k}", output_names, label_names, top_k=top_k)

    def update(self, labels: Any, preds: Any) -> None:
        for label, pred in _pairs(labels, preds):
            label = label.astype(_onp.int64).reshape(-1)
            if pred.ndim == 1:
                hit = pred.astype(_onp.int64) == label
            else:
                k = min(self.top_k, pred.shape[1])
                top = _onp.argsort(-pred, axis=1, kind="stable")[:, :k]
                hit = (top == label[:, None]).any(axis=1)
            self._add(float(hit.sum()), label.size)


class _Counts:
    """Per-class true/false positive/negative counts over all updates, with MXNet 2.x's
    conventions: 'binary' (labels 0/1; scores (N,) or (N, 2), whose column 1 is compared
    with `threshold`), 'multiclass' (scores (N, k) argmax'ed, one class per example) and
    'multilabel' (scores (N, k) > threshold against 0/1 labels (N, k))."""

    TYPES = ("binary", "multiclass", "multilabel")

    def __init__(self, owner: str, class_type: str, threshold: Any, beta: float = 1.0) -> None:
        if class_type not in self.TYPES:
            raise ValueError(f"{owner}: class_type must be one of {self.TYPES}, got {class_type!r}")
        self.owner, self.class_type, self.threshold, self.beta = owner, class_type, threshold, float(beta)
        self.reset()

    def reset(self) -> None:
        self.tp = self.fp = self.fn = self.tn = None

    def _decide(self, label: _onp.ndarray, pred: _onp.ndarray) -> tuple:
        label = label.astype(_onp.int64)
        if self.class_type == "binary":
            if label.size and (label.max() > 1 or label.min() < 0):
                raise ValueError(f"{self.owner} (binary) supports binary labels 0/1 only, got labels "
                                 f"{_onp.unique(label).tolist()}")
            if pred.shape != label.shape and pred.shape[-1:] == (2,):
                pred = pred.reshape(-1, 2)[:, 1]
            elif pred.shape != label.shape and pred.size != label.size:
                raise ValueError(f"{self.owner} (binary): predictions of shape {pred.shape} do not match "
                                 f"labels of shape {label.shape} (expected the same shape or (N, 2))")
            return (pred.reshape(-1) > self.threshold).reshape(-1, 1), label.reshape(-1, 1)
        k = pred.shape[-1]
        if self.class_type == "multiclass":
            if label.size and (label.max() >= k or label.min() < 0):
                raise ValueError(f"{self.owner} (multiclass): labels {_onp.unique(label).tolist()} "
                                 f"outside the {k} classes of the predictions")
            eye = _onp.eye(k, dtype=bool)
            return eye[pred.reshape(-1, k).argmax(axis=1)], eye[label.reshape(-1)]
        if pred.shape != label.shape:
            raise ValueError(f"{self.owner} (multilabel): labels {label.shape} and predictions {pred.shape} "
                             "must have the same shape")
        return pred.reshape(-1, k) > self.threshold, label.reshape(-1, k) == 1

    def update(self, label: _onp.ndarray, pred: _onp.ndarray) -> None:
        guess, truth = self._decide(label, pred)
        if guess.shape != truth.shape:
            raise ValueError(f"{self.owner}: {guess.shape[0]} predictions for {truth.shape[0]} labels")
        counts = [(guess & truth).sum(0), (guess & ~truth).sum(0), (~guess & truth).sum(0), (~guess & ~truth).sum(0)]
        if self.tp is None:
            self.tp, self.fp, self.fn, self.tn = (c.astype(_onp.float64) for c in counts)
        elif self.tp.shape != counts[0].shape:
            raise ValueError(f"{self.owner}: the number of classes changed from {self.tp.size} to {counts[0].size}")
        else:
            for mine, c in zip((self.tp, self.fp, self.fn, self.tn), counts):
                mine += c

    @property
    def total(self) -> int:
        return 0 if self.tp is None else int(self.tp[0] + self.fp[0] + self.fn[0] + self.tn[0])

    def _f(self, tp: Any, fp: Any, fn: Any) -> Any:
        p = tp / _onp.maximum(tp + fp, 1e-12)
        r = tp / _onp.maximum(tp + fn, 1e-12)
        b2 = self.beta ** 2
        return (1 + b2) * p * r / _onp.maximum(b2 * p + r, 1e-12)

    def fscore(self, average: Optional[str]) -> Any:
        """'micro': from the summed counts; 'macro': the mean of per-class scores; None: per class."""
        if average == "micro":
            return float(self._f(self.tp.sum(), self.fp.sum(), self.fn.sum()))
        per_class = self._f(self.tp, self.fp, self.fn)
        return float(per_class.mean()) if average == "macro" else per_class

    def matthews(self) -> float:
        tp, fp, fn, tn = (float(c[0]) for c in (self.tp, self.fp, self.fn, self.tn))
        terms = [t for t in (tp + fp, tp + fn, tn + fp, tn + fn) if t != 0.0]
        return (tp * tn - fp * fn) / math.sqrt(math.prod(terms))


class _CountingMetric(EvalMetric):
    """A metric computed from `_Counts` after every update: value = score, weight = examples."""

    def _score(self) -> Any:
        raise NotImplementedError

    def reset(self) -> None:
        super().reset()
        counts = self.__dict__.get("counts")
        if counts is not None:
            counts.reset()

    reset_local = reset

    def update(self, labels: Any, preds: Any) -> None:
        for label, pred in _pairs(labels, preds):
            self.counts.update(label, pred)
        n = self.counts.total
        self.sum_metric = self.global_sum_metric = self._score() * n
        self.num_inst = self.global_num_inst = n


@register
class F1(_CountingMetric):
    """F1 score (MXNet 2.x): `class_type` 'binary', 'multiclass' or 'multilabel'; `average`
    'micro' (from the counts summed over classes), 'macro' (the mean of per-class F1) or
    None (per-class F1, an array); counts accumulate over all updates until `reset()`."""

    _beta = 1.0

    def __init__(self, name: str = "f1", output_names: Any = None, label_names: Any = None,
                 class_type: str = "binary", threshold: Any = 0.5, average: Optional[str] = "micro",
                 beta: Optional[float] = None) -> None:
        if average not in ("micro", "macro", None):
            raise ValueError(f"{type(self).__name__}: average must be 'micro', 'macro' or None, got {average!r}")
        self.average, self.threshold = average, threshold
        self.counts = _Counts(type(self).__name__, class_type, threshold, self._beta if beta is None else beta)
        super().__init__(name, output_names, label_names, class_type=class_type, average=average)

    def _score(self) -> Any:
        return self.counts.fscore(self.average)


@register
class Fbeta(F1):
    """F-beta score: `(1 + beta^2) p r / (beta^2 p + r)`; otherwise as F1."""

    def __init__(self, name: str = "fbeta", output_names: Any = None, label_names: Any = None,
                 class_type: str = "binary", beta: float = 1, threshold: Any = 0.5,
                 average: Optional[str] = "micro") -> None:
        super().__init__(name, output_names, label_names, class_type, threshold, average, beta=beta)


@register
class MCC(_CountingMetric):
    """Matthews correlation coefficient of binary predictions (zero factors of the
    denominator count as one, as MXNet does)."""

    def __init__(self, name: str = "mcc", output_names: Any = None, label_names: Any = None) -> None:
        self.counts = _Counts("MCC", "binary", 0.5)
        super().__init__(name, output_names, label_names)

    def _score(self) -> Any:
        return self.counts.matthews()


@register
class BinaryAccuracy(EvalMetric):
    """Fraction of `pred > threshold` equal to the 0/1 label, elementwise (binary or multilabel)."""

    def __init__(self, name: str = "binary_accuracy", output_names: Any = None, label_names: Any = None,
                 threshold: Any = 0.5) -> None:
        self.threshold = threshold
        super().__init__(name, output_names, label_names, threshold=threshold)

    def update(self, labels: Any, preds: Any) -> None:
        for label, pred in _pairs(labels, preds):
            guess = (pred > self.threshold).astype(_onp.int64).reshape(-1)
            label = label.astype(_onp.int64).reshape(-1)
            if guess.shape != label.shape:
                raise ValueError(f"BinaryAccuracy: {guess.size} predictions for {label.size} labels")
            self._add(float((guess == label).sum()), guess.size)


def _columns(label: _onp.ndarray, pred: _onp.ndarray) -> tuple:
    n = label.shape[0]
    return label.reshape(n, -1).astype(_onp.float64), pred.reshape(n, -1).astype(_onp.float64)


@register
class MAE(EvalMetric):
    """Mean absolute error (per-example mean, averaged over examples)."""

    def __init__(self, name: str = "mae", output_names: Any = None, label_names: Any = None) -> None:
        super().__init__(name, output_names, label_names)

    def update(self, labels: Any, preds: Any) -> None:
        for label, pred in _pairs(labels, preds):
            lab, p = _columns(label, pred)
            self._add(float(_onp.abs(lab - p).mean(axis=1).sum()), lab.shape[0])


@register
class MSE(EvalMetric):
    """Mean squared error (per-example mean, averaged over examples)."""

    def __init__(self, name: str = "mse", output_names: Any = None, label_names: Any = None) -> None:
        super().__init__(name, output_names, label_names)

    def update(self, labels: Any, preds: Any) -> None:
        for label, pred in _pairs(labels, preds):
            lab, p = _columns(label, pred)
            self._add(float(((lab - p) ** 2).mean(axis=1).sum()), lab.shape[0])


@register
class RMSE(MSE):
    """Square root of the mean squared error."""

    def __init__(self, name: str = "rmse", output_names: Any = None, label_names: Any = None) -> None:
        super().__init__(name, output_names, label_names)

    def get(self) -> tuple:
        name, v = super().get()
        return name, math.sqrt(v) if v == v else v

    def get_global(self) -> tuple:
        name, v = super().get_global()
        return name, math.sqrt(v) if v == v else v


@_alias("ce")
@register
class CrossEntropy(EvalMetric):
    """Mean of `-log(p[label])` over examples; `pred` holds probabilities (or logits with
    `from_logits=True`)."""

    def __init__(self, eps: float = 1e-12, name: str = "cross-entropy", output_names: Any = None,
                 label_names: Any = None, from_logits: bool = False) -> None:
        self.eps, self.from_logits = eps, from_logits
        super().__init__(name, output_names, label_names, eps=eps, from_logits=from_logits)

    def _nll(self, label: _onp.ndarray, pred: _onp.ndarray) -> _onp.ndarray:
        pred = pred.reshape(-1, pred.shape[-1]).astype(_onp.float64)
        label = label.reshape(-1).astype(_onp.int64)
        if self.from_logits:
            m = pred.max(axis=1, keepdims=True)
            logp = pred - m - _onp.log(_onp.exp(pred - m).sum(axis=1, keepdims=True))
            return -logp[_onp.arange(label.size), label]
        return -_onp.log(pred[_onp.arange(label.size), label] + self.eps)

    def update(self, labels: Any, preds: Any) -> None:
        for label, pred in _pairs(labels, preds):
            nll = self._nll(label, pred)
            self._add(float(nll.sum()), nll.size)


@register
class Perplexity(CrossEntropy):
    """`exp` of the mean cross entropy; positions whose label is `ignore_label` do not count."""

    def __init__(self, ignore_label: Optional[int] = None, axis: int = -1, name: str = "perplexity",
                 output_names: Any = None, label_names: Any = None, eps: float = 1e-12, from_logits: bool = False) -> None:
        self.ignore_label, self.axis = ignore_label, axis
        super().__init__(eps, name, output_names, label_names, from_logits)

    def update(self, labels: Any, preds: Any) -> None:
        for label, pred in _pairs(labels, preds):
            pred = _onp.moveaxis(pred, self.axis, -1)
            nll = self._nll(label, pred)
            if self.ignore_label is not None:
                keep = label.reshape(-1) != self.ignore_label
                nll = nll[keep]
            self._add(float(nll.sum()), nll.size)

    def get(self) -> tuple:
        name, v = super().get()
        return name, math.exp(v) if v == v else v

    def get_global(self) -> tuple:
        name, v = super().get_global()
        return name, math.exp(v) if v == v else v


@register
class Loss(EvalMetric):
    """Mean of the loss values passed as `preds` (labels are ignored)."""

    def __init__(self, name: str = "loss", output_names: Any = None, label_names: Any = None) -> None:
        super().__init__(name, output_names, label_names)

    def update(self, _: Any, preds: Any) -> None:
        if not isinstance(preds, (list, tuple)):
            preds = [preds]
        for p in preds:
            p = _host(p)
            self._add(float(p.sum()), p.size)


class CustomMetric(EvalMetric):
    """A metric from `feval(label, pred) -> value` (or `(sum, count)`), averaged per update."""

    def __init__(self, feval: Any, name: Optional[str] = None, allow_extra_outputs: bool = False,
                 output_names: Any = None, label_names: Any = None) -> None:
        self._feval = feval
        super().__init__(name or getattr(feval, "__name__", "custom"), output_names, label_names)

    def update(self, labels: Any, preds: Any) -> None:
        for label, pred in _pairs(labels, preds):
            r = self._feval(label, pred)
            if isinstance(r, tuple):
                self._add(float(r[0]), int(r[1]))
            else:
                self._add(float(r), 1)


@_alias("composite")
@register
class CompositeEvalMetric(EvalMetric):
    """Several metrics updated together; `get()` gives lists of names and values."""

    def __init__(self, metrics: Any = None, name: str = "composite", output_names: Any = None,
                 label_names: Any = None) -> None:
        self.metrics = [create(m) for m in (metrics or [])]
        super().__init__(name, output_names, label_names)

    def add(self, metric: Any) -> None:
        self.metrics.append(create(metric))

    def get_metric(self, index: int) -> EvalMetric:
        try:
            return self.metrics[index]
        except IndexError:
            raise ValueError(f"Metric index {index} is out of range 0 and {len(self.metrics)}") from None

    def update(self, labels: Any, preds: Any) -> None:
        for m in self.metrics:
            m.update(labels, preds)

    def reset(self) -> None:
        for m in getattr(self, "metrics", []):
            m.reset()

    def reset_local(self) -> None:
        for m in self.metrics:
            m.reset_local()

    def get(self) -> tuple:
        names, values = [], []
        for m in self.metrics:
            n, v = m.get()
            names.extend(n if isinstance(n, list) else [n])
            values.extend(v if isinstance(v, list) else [v])
        return names, values

    def get_global(self) -> tuple:
        names, values = [], []
        for m in self.metrics:
            n, v = m.get_global()
            names.extend(n if isinstance(n, list) else [n])
            values.extend(v if isinstance(v, list) else [v])
        return names, values


