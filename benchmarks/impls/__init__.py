"""Implementations of the workloads, one module per framework, and the registry of modes.

Each module exposes ``setup(mode)`` (imports the framework, pins threads, points its compile
cache at ``BENCH_CACHE_DIR``; raises Skipped when the framework is not installed) and
``make(mode, wid, data, size)`` returning a step object with ``step()`` (one synchronous
step) and ``fetch()`` (the results as numpy arrays, keys as in benchmarks.workloads).
``make`` raises NotApplicable when the mode cannot express the workload.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Impl:
    """One row group of the table: an implementation mode and how to run it."""

    name: str                    # label in the table
    module: str                  # benchmarks.impls.<module>
    mode: str                    # passed to setup()/make()
    probe: str                   # top-level package whose absence means SKIP
    peer: bool = True            # counts for the "best peer" ratio
    venv: Optional[str] = None   # "mxnet": runs under the MXNet venv's python
    cache: bool = False          # has a disk compile cache (W6 runs it cold and warm)
    quick: bool = False          # part of the default --quick set
    workloads: tuple[str, ...] = ()  # the workloads it has rows for


CLASSIC = ("W1", "W2", "W3", "W4", "W5", "W6")
NN = ("W7", "W8", "W9", "W9c")


IMPLS: tuple[Impl, ...] = (
    Impl("numpy", "numpy_impl", "hand", "numpy", quick=True, workloads=CLASSIC + NN),
    Impl("autograd", "autograd_impl", "hips", "autograd", workloads=CLASSIC),
    Impl("torch", "torch_impl", "eager", "torch", workloads=CLASSIC + NN),
    Impl("torch.compile", "torch_impl", "compile", "torch", cache=True, workloads=CLASSIC + NN),
    Impl("jax", "jax_impl", "grad", "jax", workloads=("W1", "W2", "W3", "W4", "W5")),
    Impl("jax.jit", "jax_impl", "jit", "jax", cache=True, workloads=CLASSIC + NN),
    Impl("mxnet", "mxnet_impl", "eager", "mxnet", venv="mxnet", workloads=CLASSIC),
    Impl("mxnet.hybrid", "mxnet_impl", "hybrid", "mxnet", venv="mxnet",
         workloads=CLASSIC + ("W7", "W8")),
    Impl("numba-fused", "numba_impl", "fused", "numba", peer=False, cache=True, workloads=CLASSIC),
    Impl("tracegrad", "tracegrad_impl", "record", "tracegrad", peer=False, cache=True, quick=True,
         workloads=CLASSIC + ("W9", "W9c")),
    Impl("tracegrad.jit", "tracegrad_impl", "jit", "tracegrad", peer=False, cache=True,
         quick=True, workloads=CLASSIC + ("W7", "W9", "W9c")),
    Impl("tracegrad.gluon", "tracegrad_impl", "gluon", "tracegrad", peer=False, cache=True,
         quick=True, workloads=("W7", "W8")),
)

BY_NAME = {impl.name: impl for impl in IMPLS}
