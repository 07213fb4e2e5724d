"""Compiled launch plans: kernels compiled once, launch configurations and argument slot
lists built once, scratch buffers allocated once; a call binds inputs and outputs and runs.

Host cost per call: one pass over the prebuilt launches (`configured_kernel(*buffers)`),
with the flat views of arrays that come back every call (parameters, .grad buffers)
cached per slot. numba-cuda still type-checks and packs the arguments of every launch
(15-37 us per launch on an H100 by the issue author's measurement), which is why the
planner fuses hard (W1: 1 launch, W2: 3).

Not done yet (needs a GPU to develop and check):
* CUDA-graph replay of a whole plan (about 1.4 us per kernel, measured by the issue
  author): numba-cuda 0.30.4 has no graph API; the way is the driver's stream capture
  through cuda-bindings (cuStreamBeginCapture on a non-default stream, run the launches on
  it, cuStreamEndCapture, cuGraphInstantiate, then cuGraphLaunch per call), with the output
  buffers fixed per plan (or bound through .grad destinations) so the captured pointers stay
  valid, and host steps (guards) splitting the graph;
* packing kernel parameters once per plan and calling cuLaunchKernel directly, bypassing
  the dispatcher's per-launch argument handling.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Optional, Sequence

import numpy

from ... import device as _device
from ...errors import GuardFailure
from ...ir.core import Lit, Trace
from ...ir.ops import TABLE
from . import render
from .plan import HostStep, LoopStep, MatmulStep, Plan, Planner, ReduceStep, ScatterStep
from .views import View, size_of

log = logging.getLogger("tracegrad.codegen.cuda")

MAX_RUNNERS = 256  # plans kept (least recently used dropped; their kernels stay cached)
MAX_KERNELS = 2048
_KERNELS: "OrderedDict[str, Any]" = OrderedDict()  # source -> compiled dispatcher
_RUNNERS: "OrderedDict[Any, Runner]" = OrderedDict()  # trace key -> runner
_LOCK = threading.Lock()
COUNTERS = {"plans": 0, "kernels": 0, "launches": 0, "host_steps": 0, "compile_s": 0.0}


class Config:
    """Launch shapes: real-GPU sizes, or a few small blocks under the simulator."""

    def __init__(self, cuda: Any) -> None:
        if _device.simulator_enabled():
            self.tpb, self.max_blocks, self.tile, self.sms = 32, 2, 4, 1
        else:
            try:
                self.sms = int(cuda.get_current_device().MULTIPROCESSOR_COUNT)
            except Exception:  # an unusual driver: keep a safe grid
                self.sms = 16
            self.tpb, self.max_blocks, self.tile = 256, self.sms * 8, 16
        self.target_blocks = self.sms * 4


_CONFIG: Optional[Config] = None


def config() -> Config:
    global _CONFIG
    if _CONFIG is None:
        _CONFIG = Config(_device.cuda_module())
    return _CONFIG


def _globals(cuda: Any) -> dict[str, Any]:
    import math

    from numba import from_dtype

    g: dict[str, Any] = {"cuda": cuda, "math": math}
    for dt in (numpy.float16, numpy.float32, numpy.float64, numpy.int8, numpy.uint8, numpy.int32, numpy.int64):
        name = numpy.dtype(dt).name
        g[name] = dt
        g[f"nb_{name}"] = from_dtype(numpy.dtype(dt))
    g["bool_"] = numpy.bool_
    g["nb_bool_"] = from_dtype(numpy.dtype(bool))
    return g


def kernel(src: str, name: str) -> Any:
    """The compiled kernel of `src` (one dispatcher per distinct source)."""
    k = _KERNELS.get(src)
    if k is None:
        cuda = _device.cuda_module()
        ns = _globals(cuda)
        exec(compile(src, f"<tracegrad-cuda:{name}>", "exec"), ns)
        k = cuda.jit(ns[name])
        with _LOCK:
            _KERNELS[src] = k
            while len(_KERNELS) > MAX_KERNELS:
                _KERNELS.popitem(last=False)
        COUNTERS["kernels"] += 1
        log.debug("cuda kernel %s:\n%s", name, src)
    return k


class Runner:
    """One trace's compiled plan: prebuilt launches over slot indices."""

    def __init__(self, trace: Trace) -> None:
        t0 = time.perf_counter()
        cfg = config()
        self.plan: Plan = Planner(trace, cfg.tpb, cfg.target_blocks, cfg.max_blocks).build()
        self.sources: list[str] = []
        self.launches: list[tuple[Any, tuple[int, ...]]] = []  # (configured kernel | HostStep, slots)
        self.lock = threading.Lock()  # calls from several threads share the scratch buffers
        self.template: Optional[list[Any]] = None  # per-call buffer list, scratch slots filled
        self.in_slots: list[tuple[int, int, int, Any]] = []
        self.flat_cache: dict[int, tuple[Any, Any, int]] = {}
        for i, step in enumerate(self.plan.steps):
            self._prepare(step, f"k{i}", cfg)
        COUNTERS["plans"] += 1
        COUNTERS["compile_s"] += time.perf_counter() - t0

    def _prepare(self, step: Any, name: str, cfg: Config) -> None:
        slots_of = self.plan.slots
        if isinstance(step, HostStep):
            self.launches.append((step, ()))
            return
        if isinstance(step, LoopStep):
            n = size_of(step.shape)
            if n == 0 or not (step.stores or step.reductions):
                return  # nothing left to write (its values were recomputed where needed)
            src, slots = render.loop_source(step, name, cfg.tpb)
            grid, block = min((n + cfg.tpb - 1) // cfg.tpb, cfg.max_blocks), cfg.tpb
        elif isinstance(step, ReduceStep):
            n_out = slots_of[step.dst].size // step.parts
            if n_out == 0:
                return
            dt = slots_of[step.dst].dtype
            src, slots, per_thread = render.reduce_source(step, name, dt, n_out, cfg.tpb)
            if per_thread:
                grid, block = min((n_out + cfg.tpb - 1) // cfg.tpb, cfg.max_blocks), cfg.tpb
            else:
                grid, block = min(n_out * step.parts, 65535), cfg.tpb
        elif isinstance(step, MatmulStep):
            if slots_of[step.dst].size == 0:
                return
            src, slots, grid = render.matmul_source(step, name, slots_of[step.dst].dtype, cfg.tile)
            block = (cfg.tile, cfg.tile)
        elif isinstance(step, ScatterStep):
            n = size_of(step.g.shape)
            if n == 0:
                return
            src, slots = render.scatter_source(step, name)
            grid, block = min((n + cfg.tpb - 1) // cfg.tpb, cfg.max_blocks), cfg.tpb
        else:  # pragma: no cover - the planner makes only the kinds above
            raise TypeError(f"unknown step {step!r}")
        self.sources.append(src)
        self.launches.append((kernel(src, name)[grid, block], tuple(slots)))

    # ---- a call ---------------------------------------------------------------------
    def run(self, args: Sequence[Any], dests: Optional[Sequence[Any]]) -> list[Any]:
        with self.lock:
            return self._run(args, dests)

    def _run(self, args: Sequence[Any], dests: Optional[Sequence[Any]]) -> list[Any]:
        cuda = _device.cuda_module()
        slots = self.plan.slots
        if self.template is None:  # scratch buffers: allocated once, in every call's list
            self.template = [None] * len(slots)
            for s, slot in enumerate(slots):
                if slot.kind == "tmp":
                    self.template[s] = cuda.device_array(max(slot.size, 1), slot.dtype)
            self.in_slots = [(s, slot.arg, slot.size, slot.dtype) for s, slot in enumerate(slots) if slot.kind == "in"]
        bufs: list[Any] = list(self.template)
        in_ptrs = set()
        for s, j, size, dt in self.in_slots:
            a = args[j]
            if not _device.is_device_array(a):
                log.debug("cuda: uploading a host constant of shape %s", numpy.shape(a))
                a = cuda.to_device(numpy.ascontiguousarray(numpy.asarray(a, dt)))
            bufs[s], ptr = self._flat_of(s, a, size)
            in_ptrs.add(ptr)
        bound = [False] * len(self.plan.outputs)
        for k, (s, shape) in enumerate(self.plan.outputs):
            d = dests[k] if dests is not None else None
            if d is not None and _bindable(d, slots[s], shape):
                flat, ptr = self._flat_of(s, d, slots[s].size)
                if ptr not in in_ptrs:
                    bufs[s] = flat
                    bound[k] = True
                    continue
            bufs[s] = cuda.device_array(max(slots[s].size, 1), slots[s].dtype)
        for launch, arg_slots in self.launches:
            if isinstance(launch, HostStep):
                self._host(launch, bufs, cuda)
            else:
                launch(*[bufs[s] for s in arg_slots])
                COUNTERS["launches"] += 1
        results = []
        for k, (s, shape) in enumerate(self.plan.outputs):
            d = dests[k] if dests is not None else None
            if bound[k]:
                results.append(d)
                continue
            out = _shaped(bufs[s], slots[s].size, shape)
            if d is not None:
                if _device.is_device_array(d):
                    d.copy_to_device(out)
                else:
                    d[...] = out.copy_to_host()
                results.append(d)
            else:
                results.append(out)
        return results

    def _flat_of(self, s: int, a: Any, size: int) -> tuple[Any, int]:
        """The flat view and device address of array `a` bound to slot `s`, cached for the
        array last bound there (parameters and .grad buffers come back every call)."""
        hit = self.flat_cache.get(s)
        if hit is not None and hit[0] is a:
            return hit[1], hit[2]
        flat, ptr = _flat(a, size), _ptr(a)
        self.flat_cache[s] = (a, flat, ptr)
        return flat, ptr

    def _host(self, step: HostStep, bufs: list[Any], cuda: Any) -> None:
        COUNTERS["host_steps"] += 1
        host: dict[int, numpy.ndarray] = {}
        vals = []
        for x in step.ins:
            if isinstance(x, Lit):
                vals.append(x.dtype.type(x.value))
            else:
                vals.append(_to_host(x, bufs, host, self.plan))
        e = step.eqn
        row = TABLE[e.op]
        if step.guard_index >= 0:
            try:
                row.impl(*vals, **e.p)
            except GuardFailure as exc:
                raise GuardFailure(step.guard_index, exc.seen) from None
            return
        out = row.impl(*vals, **e.p)
        if len(e.outs) == 1:
            out = (out,)
        for v, o, s in zip(e.outs, out, step.dsts):
            arr = numpy.ascontiguousarray(numpy.asarray(o, dtype=v.dtype)).reshape(-1)
            bufs[s] = cuda.to_device(arr if arr.size else numpy.zeros(1, v.dtype))


def _to_host(v: View, bufs: list[Any], cache: dict[int, numpy.ndarray], plan: Plan) -> numpy.ndarray:
    if v.is_lit:
        return numpy.broadcast_to(v.lit.dtype.type(v.lit.value), v.shape).copy()
    base = cache.get(v.slot)
    if base is None:
        base = cache[v.slot] = numpy.ascontiguousarray(bufs[v.slot].copy_to_host()).reshape(-1)
    it = base.itemsize
    return numpy.ndarray(v.shape, base.dtype, buffer=base, offset=v.offset * it,
                         strides=tuple(s * it for s in v.strides)).copy()  # fmt: skip


def _flat(a: Any, size: int) -> Any:
    if len(a.shape) == 1 and a.shape[0] == size:
        return a
    return a.reshape(size) if size else a.reshape(0)


def _shaped(buf: Any, size: int, shape: tuple[int, ...]) -> Any:
    if size == 0:
        cuda = _device.cuda_module()
        return cuda.device_array(shape, buf.dtype)
    if tuple(buf.shape) == tuple(shape):
        return buf
    return buf.reshape(shape)


def _ptr(a: Any) -> int:
    """The device address of a device array's first element (the simulator's host address)."""
    try:
        return int(a.device_ctypes_pointer.value or 0)
    except AttributeError:
        ary = getattr(a, "_ary", a)
        return int(numpy.asarray(ary).__array_interface__["data"][0])


def _bindable(d: Any, slot: Any, shape: tuple[int, ...]) -> bool:
    if not _device.is_device_array(d) or numpy.dtype(d.dtype) != slot.dtype or tuple(d.shape) != tuple(shape):
        return False
    if slot.size == 0:
        return False
    try:
        return bool(d.is_c_contiguous())
    except AttributeError:
        return bool(d.flags["C_CONTIGUOUS"])


_BY_ID: "OrderedDict[int, tuple[Trace, Runner]]" = OrderedDict()  # the same Trace object again


def runner(trace: Trace, key: Any = None) -> Runner:
    """The cached runner of a trace (built and compiled on first use). A caller that keeps
    its Trace object (fastgrad, jit variants) skips hashing it; `key` is a precomputed
    `trace.key()` (or a wrapper that hashes and compares like it)."""
    hit = _BY_ID.get(id(trace))
    if hit is not None and hit[0] is trace:
        return hit[1]
    if key is None:
        key = trace.key()
    r = _RUNNERS.get(key)
    if r is None:
        r = Runner(trace)
        with _LOCK:
            _RUNNERS[key] = r
            while len(_RUNNERS) > MAX_RUNNERS:
                _RUNNERS.popitem(last=False)
    else:
        with _LOCK:
            if key in _RUNNERS:
                _RUNNERS.move_to_end(key)
    with _LOCK:
        _BY_ID[id(trace)] = (trace, r)
        while len(_BY_ID) > 64:
            _BY_ID.popitem(last=False)
    return r


def execute_cuda(trace: Trace, args: Sequence[Any], dests: Optional[Sequence[Any]] = None, key: Any = None) -> list[Any]:
    """Run `trace` on the GPU; outputs with a destination buffer are written into it."""
    return runner(trace, key).run(args, dests)
