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

from typing import Any, Optional

from .. import optimizer as opt
from ..optimizer import states_io
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
        if isinstance(params, dict):  # indices follow the sorted names, as MXNet 2.x (states files use them)
            params = [params[k] for k in sorted(params)]
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
        if self._distributed:  # dist (issue 12): the average over ranks runs inside the update
            from .. import distributed

            self._scale /= distributed.size()
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
        if self._distributed:  # dist (issue 12): summed in fused buffers; 1/size is in _scale
            from .. import distributed

            if distributed.size() > 1:
                distributed.allreduce_grads(self._params, average=False)

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
        """Write the optimizer (hyperparameters, schedule, update counts) and every state in
        MXNet 2.x's format (what its `Trainer.save_states` writes; it loads either way)."""
        for i, p in enumerate(self._params):  # MXNet creates every state before saving
            if p.grad_req != "null" and i not in self._states:
                self._states[i] = self._optimizer.create_state_multi_precision(i, p.data())
        with open(fname, "wb") as f:
            f.write(states_io.dump(self._states, self._optimizer))

    def load_states(self, fname: str) -> None:
        """Read a states file MXNet 2.x or tracegrad wrote into this Trainer (checked against
        its Parameters; only MXNet's optimizer, scheduler and array records are read)."""
        with open(fname, "rb") as f:
            raw = f.read()
        param_dict = {i: p for i, p in enumerate(self._params)}
        states, optimizer = states_io.load(raw, fname, param_dict)
        if optimizer is not None:
            self._optimizer = optimizer
        self._optimizer.param_dict = param_dict
        self._states = states
