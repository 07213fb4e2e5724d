"""`gluon.Trainer` (MXNet 2.x): applies an optimizer to a set of Parameters.

`step(batch_size)` rescales gradients by `1/batch_size`, all-reduces them when training is
distributed (`kvstore='horovod'` goes through `tracegrad.distributed`, imported only then),
and updates every parameter in one fused compiled program (see `tracegrad.optimizer`).
Under `@tracegrad.jit`, a whole Gluon step (forward, backward, `trainer.step`) is captured
as one program.

Stale gradients: a parameter whose gradient no backward has written since the last update
raises (as MXNet) unless `ignore_stale_grad=True`, which skips it. Freshness is the array's
`_fresh_grad` flag, set by backward and cleared here after each update; inside a replayed
compiled step the captured update runs as recorded.
"""

from __future__ import annotations

import pickle
from typing import Any, Optional

import numpy as _onp

from .. import np
from .. import optimizer as opt
from .parameter import Parameter

__all__ = ["Trainer"]

_LOCAL_KVSTORES = (None, False, "device", "local", "local_update_cpu", "local_allreduce_cpu",
                   "local_allreduce_device", "nccl")


class Trainer:
    """Trainer(params, optimizer, optimizer_params=None, kvstore='device', compression_params=None,
    update_on_kvstore=None); `params` is a dict from `collect_params()` or a list of Parameters."""

    def __init__(self, params: Any, optimizer: Any, optimizer_params: Optional[dict] = None,
                 kvstore: Any = "device", compression_params: Optional[dict] = None,
                 update_on_kvstore: Optional[bool] = None) -> None:
        if isinstance(params, dict):
            params = list(params.values())
        if not isinstance(params, (list, tuple)):
            raise ValueError(f"First argument must be a list or dict of Parameters, got {type(params).__name__}.")
        self._params: list[Parameter] = []
        seen: set[int] = set()
        for p in params:
            if not isinstance(p, Parameter):
                raise ValueError(f"First argument must be a list or dict of Parameters, got list of {type(p).__name__}.")
            if id(p) in seen:  # a shared parameter is updated once
                continue
            seen.add(id(p))
            self._params.append(p)
        if compression_params:
            raise ValueError("Trainer: gradient compression is not supported (compression_params must be None)")
        if update_on_kvstore:
            raise ValueError("Trainer: update_on_kvstore=True is not supported; updates run in this process")
        self._kvstore_type = kvstore if isinstance(kvstore, (str, type(None), bool)) else getattr(kvstore, "type", kvstore)
        if self._kvstore_type not in _LOCAL_KVSTORES and self._kvstore_type != "horovod":
            raise ValueError(f"Trainer: kvstore {kvstore!r} is not supported; use 'device' (one process) or "
                             "'horovod' (tracegrad.distributed)")
        self._distributed = self._kvstore_type == "horovod"
        self._update_on_kvstore = False
        optimizer_params = dict(optimizer_params or {})
        self._scale = float(optimizer_params.get("rescale_grad", 1.0))
        self._states: dict[int, Any] = {}
        self._init_optimizer(optimizer, optimizer_params)

    def _init_optimizer(self, optimizer: Any, optimizer_params: dict) -> None:
        param_dict = {i: p for i, p in enumerate(self._params)}
        if isinstance(optimizer, opt.Optimizer):
            if optimizer_params:
                raise ValueError("optimizer_params must be None if optimizer is an instance of Optimizer "
                                 "instead of str")
            self._optimizer = optimizer
            self._optimizer.param_dict = param_dict
        else:
            self._optimizer = opt.create(optimizer, param_dict=param_dict, **optimizer_params)

    # ---- facts ----------------------------------------------------------------------------
    @property
    def optimizer(self) -> opt.Optimizer:
        return self._optimizer

    @property
    def learning_rate(self) -> float:
        return self._optimizer.learning_rate

    def set_learning_rate(self, lr: float) -> None:
        """Set the optimizer's learning rate (not allowed when an lr_scheduler drives it)."""
        self._optimizer.set_learning_rate(lr)

    # ---- the step -------------------------------------------------------------------------
    def step(self, batch_size: float, ignore_stale_grad: bool = False) -> None:
        """All-reduce the gradients (when distributed), then update with them scaled by
        `rescale_grad / batch_size`."""
        self._optimizer.rescale_grad = self._scale / batch_size
        self._allreduce_grads()
        self._update(ignore_stale_grad)

    def allreduce_grads(self) -> None:
        """All-reduce the gradients (a no-op in one process); then call `update`."""
        self._allreduce_grads()

    def update(self, batch_size: float, ignore_stale_grad: bool = False) -> None:
        """Update with the gradients as they are (after `allreduce_grads`)."""
        self._optimizer.rescale_grad = self._scale / batch_size
        self._update(ignore_stale_grad)

    def _allreduce_grads(self) -> None:
        """The hook `tracegrad.distributed.DistributedTrainer` overrides."""
        if self._distributed:
            from .. import distributed

            distributed.allreduce_grads(self._params, average=True)

    def _update(self, ignore_stale_grad: bool = False) -> None:
        indices, weights, grads, states = [], [], [], []
        fresh_arrays = []
        for i, p in enumerate(self._params):
            if p.grad_req == "null":
                continue
            w = p.data()
            if not w._fresh_grad:
                if not ignore_stale_grad:
                    raise UserWarning(
                        f"Gradient of Parameter `{p.name}` on context {w.device} has not been updated by backward "
                        "since last `step`. This could mean a bug in your model that made it only use a subset of "
                        "the Parameters (Blocks) for this iteration. If you are intentionally only using a subset, "
                        "call step with ignore_stale_grad=True to suppress this warning and skip updating of "
                        "Parameters with stale gradient")
                continue
            if i not in self._states:
                self._states[i] = self._optimizer.create_state_multi_precision(i, w)
            indices.append(i)
            weights.append(w)
            grads.append(p.grad())
            states.append(self._states[i])
            fresh_arrays.append(w)
        if indices:
            self._optimizer.update(indices, weights, grads, states)
        for w in fresh_arrays:
            w._fresh_grad = False

    # ---- optimizer states -----------------------------------------------------------------
    def save_states(self, fname: str) -> None:
        """Write the optimizer (its hyperparameters and update counts) and every state."""
        blob = {"format": "tracegrad-trainer-states-1", "optimizer": self._optimizer,
                "states": {i: _to_numpy(s) for i, s in self._states.items()}}
        with open(fname, "wb") as f:
            pickle.dump(blob, f)

    def load_states(self, fname: str) -> None:
        """Read what `save_states` wrote (optimizer and states) into this Trainer."""
        with open(fname, "rb") as f:
            blob = pickle.load(f)
        if not isinstance(blob, dict) or blob.get("format") != "tracegrad-trainer-states-1":
            raise ValueError(f"{fname}: not a tracegrad Trainer states file (written by Trainer.save_states)")
        self._optimizer = blob["optimizer"]
        self._optimizer.param_dict = {i: p for i, p in enumerate(self._params)}
        self._states = {i: _from_numpy(s, self._params[i]) for i, s in blob["states"].items()}


def _to_numpy(s: Any) -> Any:
    if s is None:
        return None
    if isinstance(s, (tuple, list)):
        return tuple(_to_numpy(x) for x in s)
    return s.asnumpy()


def _from_numpy(s: Any, p: Parameter) -> Any:
    if s is None:
        return None
    if isinstance(s, tuple):
        return tuple(_from_numpy(x, p) for x in s)
    return np.array(_onp.asarray(s), dtype=s.dtype, device=p.data().device)
