"""`DistributedTrainer` (a `gluon.Trainer`) and `DistributedOptimizer`, as in horovod.mxnet.

The gradients are summed across ranks in fused buffers (in place); the averaging is folded
into the optimizer's `rescale_grad` (`1/size` times the Trainer's own scale), so it runs
inside the one fused update program instead of as a pass of its own.
"""

from __future__ import annotations

from typing import Any, Optional

from ..errors import UnsupportedError
from ..gluon.trainer import Trainer
from .collectives import ReduceOp, _storage, captured, record_allreduce, reduce_storage, write_back
from .params import allreduce_grads
from .world import require


class Compression:
    """Horovod's gradient compression choices; only `none` is supported."""

    none = None


def _no_compression(compression: Any) -> None:
    if compression is not None and compression is not Compression.none:
        raise UnsupportedError("DistributedTrainer: gradient compression is not supported "
                               "(compression must be Compression.none)")


class DistributedTrainer(Trainer):
    """A Trainer whose `step` sums the gradients over all ranks before the update.

    Each rank calls `step(batch_size)` with its own (local) batch size; the update then
    uses the average over ranks of the per-rank mean gradients, which for equal shards is
    the gradient of the whole batch. `gradient_predivide_factor` splits the averaging into
    a division before the sum and the rest after it (as Horovod).
    """

    def __init__(self, params: Any, optimizer: Any, optimizer_params: Optional[dict] = None,
                 compression: Any = None, gradient_predivide_factor: float = 1.0,
                 prefix: Optional[str] = None, num_groups: int = 0) -> None:
        _no_compression(compression)
        world = require()
        super().__init__(params, optimizer, optimizer_params, kvstore=None)
        self._gradient_predivide_factor = float(gradient_predivide_factor)
        self._scale *= self._gradient_predivide_factor / world.size  # averaging, fused into the update
        self._prefix = prefix or ""

    def _allreduce_grads(self) -> None:
        if require().size == 1:
            return
        allreduce_grads(self._params, average=False, prescale=1.0 / self._gradient_predivide_factor)


class DistributedOptimizer:
    """Wraps an optimizer: `update` first averages the gradients over all ranks (in place)."""

    def __init__(self, optimizer: Any, gradient_predivide_factor: float = 1.0, num_groups: int = 0) -> None:
        require()
        self._optimizer = optimizer
        self._predivide = float(gradient_predivide_factor)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._optimizer, name)

    def _reduce(self, grads: Any) -> None:
        grads = grads if isinstance(grads, (list, tuple)) else [grads]
        size = require().size
        if captured(grads, "DistributedOptimizer"):
            write_back(grads, record_allreduce(grads, ReduceOp.SUM, [None] * len(grads),
                                               1.0 / self._predivide, self._predivide / size,
                                               "gradient allreduce"))
            return
        bufs = [_storage(g, "DistributedOptimizer", write=True) for g in grads]
        reduce_storage(bufs, bufs, ReduceOp.SUM, [None] * len(bufs), prescale=1.0 / self._predivide,
                       postscale=self._predivide / size, what="gradient allreduce")

    def update(self, index: Any, weight: Any, grad: Any, state: Any) -> None:
        self._reduce(grad)
        self._optimizer.update(index, weight, grad, state)

    def update_multi_precision(self, index: Any, weight: Any, grad: Any, state: Any) -> None:
        self._reduce(grad)
        self._optimizer.update_multi_precision(index, weight, grad, state)
