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


IMPLS: tuple[Impl, ...] = (
    Impl("numpy", "numpy_impl", "hand", "numpy", quick=True),
    Impl("autograd", "autograd_impl", "hips", "autograd"),
    Impl("torch", "torch_impl", "eager", "torch"),
    Impl("torch.compile", "torch_impl", "compile", "torch", cache=True),
    Impl("jax.jit", "jax_impl", "jit", "jax", cache=True),
    Impl("mxnet", "mxnet_impl", "eager", "mxnet", venv="mxnet"),
    Impl("mxnet.hybrid", "mxnet_impl", "hybrid", "mxnet", venv="mxnet"),
    Impl("numba-fused", "numba_impl", "fused", "numba", peer=False, cache=True),
    Impl("tracegrad", "tracegrad_impl", "record", "tracegrad", peer=False, cache=True, quick=True),
    Impl("tracegrad.jit", "tracegrad_impl", "jit", "tracegrad", peer=False, cache=True,
         quick=True),
)

BY_NAME = {impl.name: impl for impl in IMPLS}
