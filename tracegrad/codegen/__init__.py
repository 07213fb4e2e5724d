"""The code generator: traces -> fusion plans -> Numba CPU modules -> runnable programs.

    compile_trace(trace)   a `Program` (raises CompileError when it cannot)
    explain(trace)         the trace, its fusion plan and the generated source, as text
    stats()                counters: programs (built for a trace), compiles (of those, the
                           ones that needed a new module: a Numba compile or a disk cache
                           load), module_reuses (a held module, e.g. the same trace at
                           another size), compile_seconds, mem/disk hits and misses,
                           fallbacks, compiled_runs, interpreted_runs, background_compiles
                           (started in a child process), background_waits (runs
                           interpreted while one was compiling)
    reset_stats(), set_num_threads(n), get_num_threads()

`tracegrad.explain_compile(x)` gives the same text for a lazy array;
`tracegrad.cache` shows and clears the disk cache; `TRACEGRAD_LOG=compile,cache,fallback`
logs compiles (with seconds), cache hits/misses and fallbacks (tracegrad.log).
numba is imported only when the first trace is compiled: `import tracegrad` stays fast.

Pipeline: `ir.passes` (fold, cse, dce) -> `fusion.plan` (target-independent: realized
values, kernels as loop nests over domains with scalar statement bodies, host steps,
guards) -> `cpu.render` (module source) -> `cache.load_module` (disk cache, imported by
name) -> `runner.Program` (slots, pre-built argument lists, thread pool for large kernels)
-> `driver.generate` (the program's call as straight-line Python; `Program.call_generic`
is the reference slot loop). A second renderer (numba-cuda) can consume the same plan.

Design decisions (measured on the 2-core machine, often under heavy load from other jobs):
- No `parallel=True`: kernels are serial `nogil` njit functions over work units, and a
  pool of plain threads runs the units of large kernels. A parfor kernel took 70 ms where
  the serial one took 13 ms under load (OpenMP threads spin), and parfor compile is 2-4x
  slower. Consecutive serial kernels render as one function (fewer compiles).
- Flat loops index with an unsigned `i` (numba's negative-index wraparound otherwise
  blocks vectorization: 22 ms -> 4 ms for W1's kernel).
- float32 tanh/exp/sigmoid are float64 polynomials inlined into the loop (vectorized,
  <= 1.05 ulp for tanh); math.tanh is a scalar libm call.
- Small programs are dominated by per-call Python work, not by the kernels: guards are
  checked inside the generated functions (return the failing guard's index, before any
  later kernel runs), buffers a function alone uses are its locals (one-element ones are
  scalars), small temporaries are kept per program (outputs stay fresh), host steps over
  literals run once, and the driver is generated code. W5 through the jit: 42 -> 11 us,
  W4: 8.3 -> 4.6 us (the program call itself ~2 us).
- Sizes are runtime arguments (`plan(generic=True)`, `cpu.Sizes`): one module per trace
  structure, rank and size pattern (which dims are 1, which broadcast), shared by every
  size; float literals are arguments too (a mean's 1/n). Programs (the per-shape driver
  and buffers) are cheap to bind to a held module (`programs.py`: an LRU of modules,
  released when they fall out). Traces whose values all hold at most `SPECIALIZE_MAX`
  elements keep literal sizes (see `_generic`).
- Matmul, gather, scatter-add (numpy.add.at: serial, race-free), concatenate, slice_vjp and
  host callbacks run as numpy host steps between kernels; matmul writes destinations
  directly (`out=`).
"""

from __future__ import annotations

import os
import time
from typing import Any

from ..errors import CompileError
from ..ir.core import Trace
from ..log import channel, debug_level
from .fusion import Plan, plan

LOG = channel("compile")

_STATS_KEYS = (
    "programs",
    "compiles",
    "module_reuses",
    "compile_seconds",
    "mem_hits",
    "mem_misses",
    "disk_hits",
    "disk_misses",
    "fallbacks",
    "compiled_runs",
    "interpreted_runs",
    "background_compiles",
    "background_waits",
)
STATS: dict[str, Any] = dict.fromkeys(_STATS_KEYS, 0)
STATS["compile_seconds"] = 0.0


def stats() -> dict[str, Any]:
    """A copy of the codegen counters."""
    return dict(STATS)


def reset_stats() -> None:
    for k in _STATS_KEYS:
        STATS[k] = 0
    STATS["compile_seconds"] = 0.0


# Traces whose values all hold at most this many elements keep literal sizes: a call takes
# 2-10 us there, and the generic function's extra arguments (the size and literal arrays,
# unboxed per call) are a visible part of it. Measured under load (2 cores, load ~8): a
# gelu-mse program at 64..65,536 elements, generic/literal 0.85-1.39 at <= 256 elements
# (noise), 1.03-1.07 above; the W3 MLP step (2,048 rows) 379 vs 376 ms (medians). Such
# small traces are interpreted until their exact shape repeats (tracer tiering), so a
# varying small shape does not compile either way.
SPECIALIZE_MAX = int(os.environ.get("TRACEGRAD_SPECIALIZE_MAX", "256") or 0)


def _generic(trace: Trace) -> bool:
    """Whether `trace` is rendered with sizes as runtime arguments."""
    biggest = max((v.size for v in trace.inputs), default=0)
    for e in trace.eqns:
        for o in e.outs:
            if o.size > biggest:
                biggest = o.size
    return biggest > SPECIALIZE_MAX


def render_source(trace: Trace, par_min: int | None = None, generic: bool | None = None) -> tuple[Plan, str, list]:
    """The plan, the module source (without the hash header) and its calls for `trace`."""
    from . import cpu

    kw: dict[str, Any] = {"generic": _generic(trace) if generic is None else generic}
    if par_min is not None:
        kw["par_min"] = par_min
    p = plan(trace, **kw)
    src, calls = cpu.render(p)
    return p, src, calls


class Prepared:
    """A trace planned and rendered, its module not loaded yet: `cached` says whether loading
    it is cheap (held in memory, or an entry in the disk cache), `source` is the module's
    source, `build()` loads it (or compiles it) and returns the `Program`."""

    def __init__(self, trace: Trace, par_min: int | None, generic: bool | None) -> None:
        from .cache import has_entry
        from .programs import is_held

        self.t0 = time.perf_counter()
        self.trace = trace
        self.plan, self.source, self.calls = render_source(trace, par_min, generic)
        self.cached = not self.plan.kernels() or is_held(self.source) or has_entry(self.source)

    def build(self, t0: float | None = None):
        """The `Program` (its compile seconds counted from `t0`, default: from planning)."""
        return _build(self.trace, self.plan, self.source, self.calls, self.t0 if t0 is None else t0)


def prepare(trace: Trace, par_min: int | None = None, generic: bool | None = None) -> Prepared:
    """Plan and render `trace` (raises CompileError when it cannot); see `Prepared`."""
    return Prepared(trace, par_min, generic)


def compile_trace(trace: Trace, par_min: int | None = None, generic: bool | None = None):
    """Plan, render, load (held module, else disk cache or Numba) and wrap `trace` as a
    `Program`. `generic` (default: by size, see `_generic`) passes sizes as arguments."""
    return prepare(trace, par_min, generic).build()


def _build(trace: Trace, p: Plan, src: str, calls: list, t0: float):
    from .cache import load_module, module_name
    from .programs import get_module
    from .runner import Program

    new = False
    mod = None
    if p.kernels():  # host steps only: no module
        mod, new = get_module(module_name(src)[0], lambda: load_module(src, STATS))
        src = mod.__dict__.setdefault("_TG_SOURCE", src)  # programs of one module share its text
    prog = Program(p, mod, src, calls)
    dt = time.perf_counter() - t0
    STATS["programs"] += 1
    STATS["compiles" if new else "module_reuses"] += 1 if mod is not None else 0
    STATS["compile_seconds"] += dt
    LOG.info("%s %d eqns into %d kernel(s), %d step(s) in %.3f s",
             "compiled" if new else "bound (held module)" if mod is not None else "planned",
             len(trace.eqns), len(p.kernels()), len(p.steps), dt)
    lvl = debug_level()
    if lvl >= 1:
        LOG.info("plan:\n%s", p)
    if lvl >= 2:
        LOG.info("source:\n%s", src)
    return prog


def explain(trace: Trace) -> str:
    """The trace, its fusion plan and the generated Numba source, as one text."""
    try:
        p, src, calls = render_source(trace)
    except CompileError as exc:
        return f"{trace}\n\nnot compiled: {exc} (runs in the interpreter)"
    from .cpu import FASTMATH, PRELUDE, RENDERER_VERSION

    prelude = PRELUDE.format(version=RENDERER_VERSION, fastmath=FASTMATH)
    body = src.replace(prelude, "# (prelude: imports and math helpers, tracegrad.codegen.cpu.PRELUDE)\n")
    args = "".join(f"\n# {c.name}: " + ", ".join(f"{n}={x.tolist()}" for n, x in zip(c.extra_names, c.extra))
                   for c in calls if c.extra)
    if args:
        body += "\n# the size and literal arguments of this trace's calls:" + args
    return f"{trace}\n\n{p}\n\n{body}"


from .pool import get_num_threads, set_num_threads  # noqa: E402

__all__ = [
    "CompileError", "Prepared", "compile_trace", "explain", "get_num_threads", "plan", "prepare", "reset_stats",
    "set_num_threads", "stats",
]
