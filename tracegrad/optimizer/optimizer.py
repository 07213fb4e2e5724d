"""The optimizer base class (MXNet 2.x `mx.optimizer.Optimizer`), its registry, and the fused
update program.

`update(indices, weights, grads, states)` runs ONE compiled program (a `tracegrad.jit`
function over the lists of weights, gradients and states) that updates every parameter.
What changes from step to step lives in small arrays the program reads and writes: the
per-parameter update counts, the global `num_update`, the base learning rate and
`rescale_grad`. So a learning-rate schedule, `set_learning_rate` or a new batch size never
recompiles, and inside a user's `@tracegrad.jit` step the whole update is captured with the
forward and backward and replays correctly without Python. Hyperparameters (momentum,
betas, wd, clip_gradient, lr_mult/wd_mult) are compile-time constants of that program:
changing one compiles a new variant.

A subclass defines `create_state(index, weight)` and `_rule(weight, grad, state, lr, wd, t)`,
which writes the new weight and states in place (`w[...] = ...`); `grad` arrives rescaled
and clipped, `lr` (float64 scalar array, lr_mult applied) and `t` (this parameter's update
count, float64 scalar array) are traced values, `wd` a Python float.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Optional, Sequence

import numpy as _onp

from .. import np
from ..errors import UnsupportedError
from ..jit import jit, persistent
from ..lr_scheduler import LRScheduler

__all__ = ["Optimizer", "register", "create", "registry"]

registry: dict[str, type] = {}


def register(klass: type) -> type:
    """Register an optimizer class under its lower-cased name (a decorator, as MXNet)."""
    name = klass.__name__.lower()
    if name in registry and registry[name] is not klass:
        warnings.warn(f"optimizer {name!r} is already registered ({registry[name].__module__}."
                      f"{registry[name].__name__}); replacing it with {klass.__module__}.{klass.__name__}",
                      UserWarning, stacklevel=2)
    registry[name] = klass
    return klass


def create(name: Any, **kwargs: Any) -> "Optimizer":
    """An optimizer by registered name (case-insensitive), or `name` itself if an Optimizer."""
    if isinstance(name, Optimizer):
        return name
    key = str(name).lower()
    if key not in registry:
        raise ValueError(f"unknown optimizer {name!r}; registered: {', '.join(sorted(registry))}")
    return registry[key](**kwargs)


def _scalar(v: float) -> Any:
    return np.array(v, dtype="float64")


class Optimizer:
    """Base class of the optimizers; see the module docstring."""

    _default_lr = 0.01

    def __init__(self, rescale_grad: float = 1.0, param_idx2name: Optional[dict] = None, wd: float = 0.0,
                 clip_gradient: Optional[float] = None, learning_rate: Optional[float] = None,
                 lr_scheduler: Optional[LRScheduler] = None, sym: Any = None, begin_num_update: int = 0,
                 multi_precision: bool = False, param_dict: Optional[dict] = None, aggregate_num: Any = None,
                 use_fused_step: Any = None, **kwargs: Any) -> None:
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected arguments {sorted(kwargs)}")
        self._lr_buf = _scalar(0.0)
        self._rescale_buf = _scalar(1.0)
        self._nu_buf = _scalar(float(begin_num_update))
        self._counts: dict[int, Any] = {}
        self.lr_scheduler = lr_scheduler
        if lr_scheduler is None and learning_rate is None:
            learning_rate = self._default_lr
        if lr_scheduler is not None and learning_rate is not None and lr_scheduler.base_lr != learning_rate:
            warnings.warn("learning rate from ``lr_scheduler`` has been overwritten by ``learning_rate`` in "
                          "optimizer.", UserWarning, stacklevel=3)
            lr_scheduler.base_lr = learning_rate
        self._lr = learning_rate if learning_rate is not None else lr_scheduler.base_lr
        self._lr_buf[...] = self._lr
        self.rescale_grad = rescale_grad
        self.wd = wd
        self.clip_gradient = clip_gradient
        self.begin_num_update = begin_num_update
        self.multi_precision = multi_precision
        self.aggregate_num = aggregate_num
        self.use_fused_step = True if use_fused_step is None else use_fused_step
        self.lr_mult: dict = {}
        self.wd_mult: dict = {}
        self.idx2name = dict(param_idx2name or {})
        self.param_dict = dict(param_dict or {})
        self.sym_info = ()
        self._program: Callable = jit(_fused_update)
        self._scratch: list = []
        self._scratch_i = 0

    # ---- learning rate, counts ----------------------------------------------------------
    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = value
        self._lr_buf[...] = value

    @property
    def rescale_grad(self) -> float:
        return self._rescale

    @rescale_grad.setter
    def rescale_grad(self, value: float) -> None:
        self._rescale = value
        self._rescale_buf[...] = value

    @property
    def num_update(self) -> int:
        """The largest update count of any parameter (reads the count array)."""
        return int(self._nu_buf.item())

    @num_update.setter
    def num_update(self, value: int) -> None:
        self._nu_buf[...] = float(value)

    @property
    def _index_update_count(self) -> dict:
        return {i: int(c.item()) for i, c in self._counts.items()}

    @property
    def learning_rate(self) -> float:
        """The current learning rate (the schedule's value at `num_update` when there is one)."""
        if self.lr_scheduler is not None:
            return self.lr_scheduler(self.num_update)
        return self.lr

    def set_learning_rate(self, lr: float) -> None:
        """Set the learning rate; not allowed when an lr_scheduler drives it (as MXNet)."""
        if self.lr_scheduler is not None:
            raise UserWarning("LRScheduler of the optimizer has already been defined. Note that "
                              "set_learning_rate can mutate the value of the learning rate of the optimizer "
                              "only when the LRScheduler of the optimizer is undefined.")
        self.lr = lr

    def set_lr_mult(self, args_lr_mult: dict) -> None:
        """Per-parameter learning-rate factors by index or name (Parameter.lr_mult wins)."""
        self.lr_mult = dict(args_lr_mult)

    def set_wd_mult(self, args_wd_mult: dict) -> None:
        """Per-parameter weight-decay factors by index or name (Parameter.wd_mult wins)."""
        self.wd_mult = dict(args_wd_mult)

    def _mult(self, table: dict, attr: str, index: int) -> float:
        if index in self.param_dict:
            return float(getattr(self.param_dict[index], attr, 1.0))
        if index in table:
            return float(table[index])
        name = self.idx2name.get(index)
        return float(table.get(name, 1.0)) if name is not None else 1.0

    def _get_lr(self, index: int) -> float:
        return self.learning_rate * self._mult(self.lr_mult, "lr_mult", index)

    def _get_wd(self, index: int) -> float:
        return self.wd * self._mult(self.wd_mult, "wd_mult", index)

    def _count(self, index: int) -> Any:
        c = self._counts.get(index)
        if c is None:
            c = self._counts[index] = _scalar(float(self.begin_num_update))
            persistent(c)  # made inside a compiled step: still state, not a constant
        return c

    # ---- states ---------------------------------------------------------------------------
    def create_state(self, index: int, weight: Any) -> Any:
        """The state of parameter `index` (None when the rule keeps none)."""
        return None

    def create_state_multi_precision(self, index: int, weight: Any) -> Any:
        if self.multi_precision and _onp.dtype(weight.dtype) == _onp.float16:
            raise UnsupportedError(f"{type(self).__name__}: multi_precision float16 weights are not supported; "
                                   "train in float32")
        state = self.create_state(index, weight)
        persistent(*_leaves(state))  # made inside a compiled step: still state, not a constant
        return state

    # ---- the update -------------------------------------------------------------------------
    def update(self, indices: Any, weights: Any, grads: Any, states: Any) -> None:
        """Update every weight in place, all in one compiled program (lists, as MXNet 2.x;
        single values are accepted too)."""
        if not isinstance(indices, (list, tuple)):
            indices, weights, grads, states = [indices], [weights], [grads], [states]
        indices = list(indices)
        if not indices:
            return
        for w, g in zip(weights, grads):
            if tuple(w.shape) != tuple(g.shape):
                raise ValueError(f"{type(self).__name__}.update: weight shape {tuple(w.shape)} != gradient "
                                 f"shape {tuple(g.shape)}")
        counts = [self._count(i) for i in indices]
        traced = self.lr_scheduler is None or self.lr_scheduler.traceable
        if not traced:  # a user schedule runs in Python on the count it will have
            nu = max([self.num_update] + [int(c.item()) + 1 for c in counts])
            self._lr_buf[...] = self.lr_scheduler(nu)
        self._rescale_buf[...] = self.rescale_grad
        static = (
            tuple(self._mult(self.lr_mult, "lr_mult", i) for i in indices),
            tuple(self._get_wd(i) for i in indices),
            self._static_config(),
            self.lr_scheduler.config() if traced and self.lr_scheduler is not None else None,
        )
        self._program(self, static, list(weights), list(grads), list(states), counts,
                      [self._lr_buf, self._rescale_buf, self._nu_buf])

    def update_multi_precision(self, indices: Any, weights: Any, grads: Any, states: Any) -> None:
        self.update(indices, weights, grads, states)

    step = update
    fused_step = update

    def _static_config(self) -> tuple:
        """The hyperparameters a compiled update bakes in (a change compiles a new variant)."""
        skip = {"_scratch", "_scratch_i", "_lr", "_rescale", "_lr_buf", "_rescale_buf", "_nu_buf", "_counts", "_program", "lr_scheduler",
                "lr_mult", "wd_mult", "idx2name", "param_dict", "sym_info"}
        return tuple(sorted((k, v) for k, v in vars(self).items()
                            if k not in skip and isinstance(v, (int, float, bool, str, type(None)))))

    def hoist(self, value: Any, like: Any) -> Any:
        """A traced scalar cast to `like`'s dtype and stored in a small persistent buffer: the
        compiled program computes it once instead of inside every element loop."""
        value = as_dtype(value, like)
        i = self._scratch_i
        self._scratch_i += 1
        if i == len(self._scratch):
            buf = np.zeros((), dtype=like.dtype)
            persistent(buf)
            self._scratch.append(buf)
        buf = self._scratch[i]
        if buf.dtype != like.dtype:
            buf = self._scratch[i] = np.zeros((), dtype=like.dtype)
            persistent(buf)
        buf[...] = value
        return buf

    def _rule(self, weight: Any, grad: Any, state: Any, lr: Any, wd: float, t: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define _rule")

    def __getstate__(self) -> dict:
        d = dict(self.__dict__)
        for k in ("_lr_buf", "_rescale_buf", "_nu_buf", "_program", "_scratch"):
            d.pop(k, None)
        d["param_dict"] = {}  # the Parameters stay with their Trainer
        d["_counts"] = {i: float(c.item()) for i, c in self._counts.items()}
        d["_num_update"] = float(self._nu_buf.item())
        return d

    def __setstate__(self, d: dict) -> None:
        counts = d.pop("_counts", {})
        nu = d.pop("_num_update", 0.0)
        self.__dict__.update(d)
        self._lr_buf, self._rescale_buf, self._nu_buf = _scalar(self._lr), _scalar(self._rescale), _scalar(nu)
        self._counts = {i: _scalar(v) for i, v in counts.items()}
        self._program = jit(_fused_update)
        self._scratch, self._scratch_i = [], 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(learning_rate={self.lr}, wd={self.wd})"


def _leaves(state: Any) -> list:
    if isinstance(state, (tuple, list)):
        return [a for s in state for a in _leaves(s)]
    return [] if state is None else [state]


def as_dtype(x: Any, like: Any) -> Any:
    """A traced float64 scalar cast to `like`'s dtype (so float32 math stays float32)."""
    return x.astype(like.dtype) if hasattr(x, "astype") else x


def _fused_update(opt: Optimizer, static: tuple, weights: list, grads: list, states: list, counts: list,
                  scalars: list) -> None:
    lr_mults, wds, _config, sched = static
    lr_buf, rescale_buf, nu_buf = scalars
    nu = nu_buf
    ts = []
    for c in counts:
        t = c + 1.0
        c[...] = t
        ts.append(t)
        nu = np.maximum(nu, t)
    nu_buf[...] = nu
    base = opt.lr_scheduler.expression(nu, np) if sched is not None else lr_buf
    clip = opt.clip_gradient
    opt._scratch_i = 0
    rescale = {}
    for w, g, s, t, lr_mult, wd in zip(weights, grads, states, ts, lr_mults, wds):
        r = rescale.get(g.dtype)
        if r is None:
            r = rescale[g.dtype] = opt.hoist(rescale_buf, g)
        g = g * r
        if clip is not None:
            g = np.clip(g, -clip, clip)
        opt._rule(w, g, s, base * lr_mult if lr_mult != 1.0 else base, wd, t)
