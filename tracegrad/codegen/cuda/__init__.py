"""The CUDA renderer: traces as numba-cuda kernels (see plan.py for the grouping).

Choices:
* elementwise groups are grid-stride loops; layout ops are strided views read in place;
* reductions use one block per (output, part) and a shared-memory tree with a fixed
  combine order (results repeat bitwise run to run); big reductions into few outputs take
  two launches (per-block partials, then their combine);
* scatter-add uses atomic adds: race-free, but the order in which repeated indices add up
  is not fixed, so float sums over repeated indices may differ in the last bits run to run;
* matmul is a simple shared-memory tiled kernel (16x16 tiles on a GPU, 4x4 under the
  simulator). It is always used, even where CuPy or PyTorch is installed: one code path,
  no extra dependency, deterministic; on an H100 cuBLAS (through CuPy/torch zero-copy via
  `__cuda_array_interface__`) will be much faster for big matrices. Its speed on W3 is not
  measured yet (no GPU was lent to this task).
"""

from .runtime import COUNTERS, execute_cuda, runner

__all__ = ["execute_cuda", "runner", "COUNTERS", "sources"]


def sources(trace) -> list[str]:  # type: ignore[no-untyped-def]
    """The kernel sources the CUDA renderer makes for `trace` (for inspection)."""
    return list(runner(trace).sources)
