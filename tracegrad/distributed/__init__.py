"""Data-parallel training across processes and machines, with Horovod's MXNet API, on MPI.

    import tracegrad.distributed as hvd        # serves code written for horovod.mxnet
    hvd.init()
    trainer = hvd.DistributedTrainer(net.collect_params(), 'sgd', {'learning_rate': 0.1})
    hvd.broadcast_parameters(net.collect_params(), root_rank=0)

Run with `mpiexec -n 4 python train.py` (the `dist` extra installs mpi4py and MPICH).
Plain `python train.py` is a one-rank world that needs no MPI at all.
"""

from __future__ import annotations

from typing import Any

from .collectives import (
    Adasum,
    Average,
    Max,
    Min,
    Product,
    ProcessSet,
    ReduceOp,
    Sum,
    allgather,
    allgather_object,
    allreduce,
    allreduce_,
    broadcast,
    broadcast_,
    broadcast_object,
    global_process_set,
    grouped_allreduce,
    grouped_allreduce_,
)
from .errors import CollectiveTimeoutError, DistributedError, MismatchError, RankFailedError
from .params import allreduce_grads, broadcast_parameters
from .world import WORLD, init, launched_by_mpi, require, shutdown


def is_initialized() -> bool:
    """Whether `init()` has been called (and not `shutdown()`)."""
    return WORLD.initialized


def rank() -> int:
    """This process's rank, 0 .. size()-1."""
    return require().rank


def size() -> int:
    """The number of ranks."""
    return require().size


def local_rank() -> int:
    """This process's rank among the ranks on its machine."""
    return require().local_rank


def local_size() -> int:
    """The number of ranks on this machine."""
    return require().local_size


def cross_rank() -> int:
    """The index of this machine among the machines (ranks with the same local rank)."""
    return require().cross_rank


def cross_size() -> int:
    """The number of machines (of ranks with this local rank)."""
    return require().cross_size


def mpi_enabled() -> bool:
    """Whether this world runs on MPI (False for the one-rank world without a launcher)."""
    return require().comm is not None


def mpi_built() -> bool:
    """Whether mpi4py can be imported."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def mpi_threads_supported() -> bool:
    """Whether MPI runs with MPI_THREAD_MULTIPLE."""
    w = require()
    return w.MPI is not None and w.MPI.Query_thread() == w.MPI.THREAD_MULTIPLE


def nccl_built() -> bool:
    """Horovod API: tracegrad never uses NCCL."""
    return False


def gloo_built() -> bool:
    """Horovod API: tracegrad never uses Gloo."""
    return False


def install_as_horovod() -> None:
    """Make `import horovod.mxnet as hvd` give this module (for code written for Horovod)."""
    import sys
    import types

    this = sys.modules[__name__]
    pkg = sys.modules.get("horovod")
    if pkg is None or not hasattr(pkg, "__path__"):
        pkg = types.ModuleType("horovod", "tracegrad.distributed standing in for Horovod")
        pkg.__path__ = []  # a package, so that `import horovod.mxnet` resolves the child below
        sys.modules["horovod"] = pkg
    pkg.mxnet = this  # type: ignore[attr-defined]
    sys.modules["horovod.mxnet"] = this


def __getattr__(name: str) -> Any:
    """`DistributedTrainer` imports Gluon: only on first use."""
    if name in ("DistributedTrainer", "DistributedOptimizer", "Compression"):
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'tracegrad.distributed' has no attribute {name!r}")


__all__ = [
    "init", "shutdown", "is_initialized", "rank", "size", "local_rank", "local_size",
    "cross_rank", "cross_size", "mpi_enabled", "mpi_built", "mpi_threads_supported",
    "nccl_built", "gloo_built", "allreduce", "allreduce_", "grouped_allreduce",
    "grouped_allreduce_", "allgather", "allgather_object", "broadcast", "broadcast_",
    "broadcast_object", "broadcast_parameters", "allreduce_grads", "DistributedTrainer",
    "DistributedOptimizer", "ReduceOp", "Average", "Sum", "Adasum", "Min", "Max", "Product",
    "ProcessSet", "global_process_set", "DistributedError", "MismatchError", "RankFailedError",
    "CollectiveTimeoutError", "launched_by_mpi", "install_as_horovod", "Compression",
]
