"""The CUDA renderer: traces as numba-cuda kernels (plan.py groups, render.py writes source,
runtime.py compiles and launches).

It plans from the Trace itself (after the IR passes: folding, CSE, dead code), not from the
CPU fusion plan (codegen/fusion.py): that plan's kernels accumulate reductions inside serial
loop nests, a shape that does not map to grid-stride loops and block trees. Choices:
* elementwise groups are grid-stride loops; layout ops are strided views read in place;
  a value from an earlier group is recomputed from that group's inputs rather than stored
  and re-read (memory traffic, not arithmetic, bounds these kernels);
* a reduction of a whole loop-shaped value accumulates inside the loop kernel: each block
  leaves a partial (its threads' strided sums, then a shared-memory tree), a second small
  kernel combines them; other reductions take one block per output (a tree), or one thread
  per output for rows of 32 elements or fewer. Combine orders depend only on the launch
  shape, so results repeat bitwise run to run;
* elementwise eqns over a reduction's or a matmul's result run in that kernel (epilogue:
  a mean's division, a bias add and tanh);
* gathers are loads inside loop groups (index arithmetic on the fly);
* scatter-add uses atomic adds: race-free, but the order in which repeated indices add up
  is not fixed, so float sums over repeated indices may differ in the last bits run to run;
* matmul is a simple shared-memory tiled kernel (16x16 tiles on a GPU, 4x4 under the
  simulator). It is always used, even where CuPy or PyTorch is installed: one code path,
  no extra dependency, deterministic, epilogue fusion. On an H100, cuBLAS (reachable
  zero-copy through `__cuda_array_interface__`) will be faster for big matrices; W3's speed
  with this kernel is not measured yet (no GPU was lent to this task);
* ops without a CUDA rendering (argmax/argmin, prod's gradient helper, autograd.Function
  callbacks, guards, index templates the gather load does not cover) run as host steps with
  the op table's numpy rule, each logged with its reason on `tracegrad.codegen.cuda`.
"""

from .runtime import COUNTERS, execute_cuda, runner

__all__ = ["execute_cuda", "runner", "COUNTERS", "sources"]


def sources(trace) -> list[str]:  # type: ignore[no-untyped-def]
    """The kernel sources the CUDA renderer makes for `trace` (for inspection)."""
    return list(runner(trace).sources)
