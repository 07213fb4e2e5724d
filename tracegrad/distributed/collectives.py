"""Horovod's collectives on tracegrad arrays: allreduce, allgather, broadcast (and in place).

Arrays travel from their own numpy storage (no pickling); groups of arrays go through the
fusion buffers (`fusion.py`). Every blocking step polls with the world's timeout and failure
channel (`world.wait`). In a one-rank world the collectives are copies. Inside a `tracegrad.jit`
capture an allreduce records one ALLREDUCE eqn (`ir/rules_dist.py`) instead, whose host code
(`reduce_in_program`) runs inside the compiled step on every replay.
"""

from __future__ import annotations

import enum
import pickle
import time
from typing import Any, Optional, Sequence

import numpy

from ..device import array_device
from ..errors import DTypeError, ShapeError, UnsupportedError
from ..ir.ops import Op
from ..tracer import array as _array
from ..tracer import lazy as _lazy
from ..tracer.array import Array
from ..tracer.hooks import capturing, hooks
from ..where import user_line_long
from . import fusion
from .errors import DistributedError
from .signature import agree, layout
from .world import require, wait


class ReduceOp(enum.IntEnum):
    """Reduction operations (Horovod's `hvd.Average`, `hvd.Sum`, ...)."""

    AVERAGE = 0
    SUM = 1
    ADASUM = 2
    MIN = 3
    MAX = 4
    PRODUCT = 5


Average, Sum, Adasum, Min, Max, Product = (ReduceOp.AVERAGE, ReduceOp.SUM, ReduceOp.ADASUM,
                                           ReduceOp.MIN, ReduceOp.MAX, ReduceOp.PRODUCT)


class ProcessSet:
    """The ranks a collective runs on; only the global set (every rank) is supported."""

    def __repr__(self) -> str:
        return "global_process_set"


global_process_set = ProcessSet()


def _at() -> str:
    return user_line_long()


def _resolve_op(average: Optional[bool], op: Optional[ReduceOp], what: str) -> ReduceOp:
    if average is not None and op is not None:
        raise ValueError(f"{what}: pass either average= or op=, not both (at {_at()})")
    if op is None:
        return ReduceOp.SUM if average is False else ReduceOp.AVERAGE
    op = ReduceOp(op)
    if op == ReduceOp.ADASUM:
        raise UnsupportedError(f"{what}: op=Adasum is not supported; use Average or Sum (at {_at()})")
    return op


def _check_process_set(process_set: Any, what: str) -> None:
    if process_set is not None and process_set is not global_process_set:
        raise UnsupportedError(f"{what}: only the global process set is supported (at {_at()})")


def _storage(x: Any, what: str, write: bool = False) -> numpy.ndarray:
    """The numpy storage of a tracegrad (CPU) or numpy array, its value computed."""
    if isinstance(x, numpy.ndarray):
        arr = x
    elif isinstance(x, Array):
        if x._dev is not None and array_device(x).is_gpu:
            raise UnsupportedError(
                f"{what}: arrays on {array_device(x)} are not supported yet; "
                f"reduce a CPU copy (x.as_in_ctx(npx.cpu())) (at {_at()})"
            )
        hooks().fail(f"{what} at {_at()} is a collective across ranks; a replay would skip it")
        if write:
            x._prepare_write()
        x._value()
        arr = x._data
    else:
        raise TypeError(f"{what}: expected a tracegrad or numpy array, got {type(x).__name__} (at {_at()})")
    if arr.dtype not in fusion.SUPPORTED:
        raise DTypeError(
            f"{what}: dtype {arr.dtype} is not supported; use one of "
            f"{[str(d) for d in fusion.SUPPORTED]} (at {_at()})"
        )
    return arr


# ---- inside a compiled step (`tracegrad.jit`): the allreduce is an eqn of the program -----
def captured(tensors: Sequence[Any], what: str) -> bool:
    """Whether a jit capture is recording this collective (as an ALLREDUCE host step)."""
    if not capturing():
        return False
    if all(isinstance(t, Array) for t in tensors):
        return True
    hooks().fail(f"{what} at {_at()} reduces numpy arrays, a collective across ranks that a replay "
             "would skip (pass tracegrad arrays)")
    return False


def record_allreduce(tensors: Sequence[Array], op: ReduceOp, names: Sequence[Optional[str]],
                     prescale: float = 1.0, postscale: float = 1.0, what: str = "allreduce") -> list:
    """The ALLREDUCE eqn over `tensors` (lazy results), for the step being captured."""
    for t in tensors:
        if t._dev is not None and array_device(t).is_gpu:
            raise UnsupportedError(f"{what}: arrays on {array_device(t)} are not supported yet (at {_at()})")
        if t._dtype not in fusion.SUPPORTED:
            raise DTypeError(f"{what}: dtype {t._dtype} is not supported; use one of "
                             f"{[str(d) for d in fusion.SUPPORTED]} (at {_at()})")
    params = {"reduce": int(op), "names": tuple(n or "" for n in names),
              "prescale": float(prescale), "postscale": float(postscale)}
    return _lazy.apply(Op.ALLREDUCE, list(tensors), params)


def write_back(tensors: Sequence[Array], values: Sequence[Array]) -> None:
    """`t[...] = v` for each pair: recorded as writes of the captured step."""
    for t, v in zip(tensors, values):
        t[...] = v


PROGRAM_STATS = {"calls": 0, "seconds": 0.0}  # ALLREDUCE host steps run, and their time


def reduce_in_program(xs: Sequence[numpy.ndarray], reduce: int, names: Sequence[str],
                      prescale: float, postscale: float) -> list:
    """The host code of an ALLREDUCE eqn: new arrays holding the reduction of `xs`."""
    t0 = time.perf_counter()
    srcs = [x if x.flags.c_contiguous else numpy.ascontiguousarray(x) for x in xs]
    dsts = [numpy.empty(x.shape, x.dtype) for x in srcs]
    reduce_storage(srcs, dsts, ReduceOp(reduce), [n or None for n in names], prescale, postscale,
                   what="allreduce (compiled step)")
    PROGRAM_STATS["calls"] += 1
    PROGRAM_STATS["seconds"] += time.perf_counter() - t0
    return dsts


def _like(x: Any, data: numpy.ndarray) -> Any:
    """A result of the same kind as the input (tracegrad array in, tracegrad array out)."""
    return data if isinstance(x, numpy.ndarray) else _array.ARRAY_CLS._wrap(data)


def _entries(names: Sequence[Optional[str]], arrays: Sequence[numpy.ndarray]) -> tuple:
    return tuple((n or "", tuple(a.shape), a.dtype.name) for n, a in zip(names, arrays))


def _names(name: Optional[str], n: int) -> list[Optional[str]]:
    if name is None:
        return [None] * n
    return [name] if n == 1 else [f"{name}.{i}" for i in range(n)]


# ---- allreduce ------------------------------------------------------------------------
def reduce_storage(
    srcs: Sequence[numpy.ndarray],
    dsts: Sequence[numpy.ndarray],
    op: ReduceOp,
    names: Sequence[Optional[str]],
    prescale: float = 1.0,
    postscale: float = 1.0,
    what: str = "allreduce",
    on_ready: Any = None,
) -> None:
    """Reduce numpy buffers across ranks into `dsts` (fused; `dsts[i] is srcs[i]` in place)."""
    w = require()
    if any(a.dtype.kind != "f" for a in srcs) and (prescale != 1.0 or postscale != 1.0):
        raise DTypeError(f"{what}: prescale/postscale factors need floating-point arrays (at {_at()})")
    if op == ReduceOp.AVERAGE:
        postscale = postscale / w.size
    if w.size == 1:
        for i, (s, d) in enumerate(zip(srcs, dsts)):
            factor = prescale * postscale
            if factor != 1.0 and d.dtype.kind == "f":
                numpy.multiply(s, d.dtype.type(factor), out=d)
            elif d is not s:
                numpy.copyto(d, s)
        if on_ready is not None:
            on_ready(list(range(len(srcs))))
        return
    limit, direct = fusion.threshold(), fusion.direct_min()
    key = (what, op, tuple(names), tuple((a.shape, a.dtype.num, a.flags.c_contiguous) for a in srcs),
           limit, direct)
    buckets = layout(key, lambda: (what, f"op={op.name.lower()}", _entries(names, srcs)),
                     lambda: fusion.plan(srcs, limit, direct))
    MPI = w.MPI
    mpi_op = _mpi_op(MPI, op)
    comm = w.comm

    def start(buf: numpy.ndarray, out: Optional[numpy.ndarray]) -> Any:
        if out is None:
            return comm.Iallreduce(MPI.IN_PLACE, buf, op=mpi_op)
        return comm.Iallreduce(buf, out, op=mpi_op)

    fusion.run(srcs, dsts, start, what, buckets, prescale=prescale, postscale=postscale,
               on_ready=on_ready)


def _mpi_op(MPI: Any, op: ReduceOp) -> Any:
    return (MPI.SUM, MPI.SUM, None, MPI.MIN, MPI.MAX, MPI.PROD)[op]


def allreduce(tensor: Any, average: Optional[bool] = None, name: Optional[str] = None,
              priority: int = 0, prescale_factor: float = 1.0, postscale_factor: float = 1.0,
              process_set: Any = None, op: Optional[ReduceOp] = None) -> Any:
    """The reduction (average by default) of `tensor` over all ranks, as a new array."""
    return grouped_allreduce([tensor], average, name, priority, prescale_factor, postscale_factor,
                             process_set, op)[0]


def allreduce_(tensor: Any, average: Optional[bool] = None, name: Optional[str] = None,
               priority: int = 0, prescale_factor: float = 1.0, postscale_factor: float = 1.0,
               process_set: Any = None, op: Optional[ReduceOp] = None) -> Any:
    """`allreduce` written into `tensor` itself; returns `tensor`."""
    return grouped_allreduce_([tensor], average, name, priority, prescale_factor, postscale_factor,
                              process_set, op)[0]


def grouped_allreduce(tensors: Sequence[Any], average: Optional[bool] = None,
                      name: Optional[str] = None, priority: int = 0, prescale_factor: float = 1.0,
                      postscale_factor: float = 1.0, process_set: Any = None,
                      op: Optional[ReduceOp] = None) -> list:
    """`allreduce` of several arrays at once (fused into few messages); new arrays."""
    rop = _resolve_op(average, op, "grouped_allreduce")
    _check_process_set(process_set, "grouped_allreduce")
    if captured(tensors, "allreduce"):
        return record_allreduce(tensors, rop, _names(name, len(tensors)), prescale_factor,
                                postscale_factor)
    srcs = [_storage(t, "allreduce") for t in tensors]
    dsts = [numpy.empty(s.shape, s.dtype) for s in srcs]
    reduce_storage(srcs, dsts, rop, _names(name, len(srcs)), prescale_factor, postscale_factor)
    return [_like(t, d) for t, d in zip(tensors, dsts)]


def grouped_allreduce_(tensors: Sequence[Any], average: Optional[bool] = None,
                       name: Optional[str] = None, priority: int = 0, prescale_factor: float = 1.0,
                       postscale_factor: float = 1.0, process_set: Any = None,
                       op: Optional[ReduceOp] = None) -> list:
    """`grouped_allreduce` written into the arrays themselves; returns them."""
    rop = _resolve_op(average, op, "grouped_allreduce_")
    _check_process_set(process_set, "grouped_allreduce_")
    if captured(tensors, "allreduce_"):
        write_back(tensors, record_allreduce(tensors, rop, _names(name, len(tensors)),
                                             prescale_factor, postscale_factor, "allreduce_"))
        return list(tensors)
    bufs = [_storage(t, "allreduce_", write=True) for t in tensors]
    reduce_storage(bufs, bufs, rop, _names(name, len(bufs)), prescale_factor, postscale_factor,
                   what="allreduce_")
    return list(tensors)


# ---- allgather ------------------------------------------------------------------------
def allgather(tensor: Any, name: Optional[str] = None, priority: int = 0,
              process_set: Any = None) -> Any:
    """The arrays of all ranks concatenated along the first axis, in rank order.

    Ranks may differ in the first dimension only.
    """
    _check_process_set(process_set, "allgather")
    w = require()
    src = _storage(tensor, "allgather")
    if src.ndim == 0:
        raise ShapeError(f"allgather: a 0-d array cannot be concatenated; reshape it to (1,) (at {_at()})")
    agree(("allgather", "", ((name or "", (-1,) + tuple(src.shape[1:]), src.dtype.name),)), _at())
    if w.size == 1:
        return _like(tensor, numpy.array(src, copy=True))
    rows = numpy.zeros(w.size, numpy.int64)
    wait([w.comm.Iallgather(numpy.array([src.shape[0]], numpy.int64), rows)], "allgather sizes")
    row = int(numpy.prod(src.shape[1:], dtype=numpy.int64))
    out = numpy.empty((int(rows.sum()),) + src.shape[1:], src.dtype)
    counts = [int(r) * row for r in rows]
    displs = [int(d) for d in numpy.concatenate([[0], numpy.cumsum(counts)[:-1]])]
    send = numpy.ascontiguousarray(src).reshape(-1)
    from mpi4py.util.dtlib import from_numpy_dtype

    recv = [out.reshape(-1), (counts, displs), from_numpy_dtype(src.dtype)]
    wait([w.comm.Iallgatherv(send, recv)], f"allgather {name or ''}".strip())
    return _like(tensor, out)


def allgather_object(obj: Any, name: Optional[str] = None) -> list:
    """Any picklable object from every rank, as a list in rank order."""
    from .signature import gather_objects

    require()
    return gather_objects(obj, f"allgather_object {name or ''}".strip())


# ---- broadcast ------------------------------------------------------------------------
def broadcast_storage(arrays: Sequence[numpy.ndarray], root_rank: int,
                      names: Sequence[Optional[str]], what: str = "broadcast") -> None:
    """Overwrite `arrays` on every rank with the root's values (fused, in place)."""
    w = require()
    if not 0 <= root_rank < w.size:
        raise DistributedError(f"{what}: root_rank {root_rank} is not a rank of this world of "
                               f"size {w.size} (at {_at()})")
    if w.size == 1:
        return
    limit, direct = fusion.threshold(), fusion.direct_min()
    key = (what, root_rank, tuple(names),
           tuple((a.shape, a.dtype.num, a.flags.c_contiguous) for a in arrays), limit, direct)
    buckets = layout(key, lambda: (what, f"root_rank={root_rank}", _entries(names, arrays)),
                     lambda: fusion.plan(arrays, limit, direct))
    comm, is_root = w.comm, w.rank == root_rank

    def start(buf: numpy.ndarray, out: Optional[numpy.ndarray]) -> Any:
        return comm.Ibcast(buf, root=root_rank)

    fusion.run(arrays, arrays, start, what, buckets, pack=is_root, unpack=not is_root)


def broadcast(tensor: Any, root_rank: int, name: Optional[str] = None, priority: int = 0,
              process_set: Any = None) -> Any:
    """The root rank's `tensor` on every rank, as a new array."""
    _check_process_set(process_set, "broadcast")
    src = _storage(tensor, "broadcast")
    out = numpy.array(src, copy=True)
    broadcast_storage([out], root_rank, _names(name, 1))
    return _like(tensor, out)


def broadcast_(tensor: Any, root_rank: int, name: Optional[str] = None, priority: int = 0,
               process_set: Any = None) -> Any:
    """`broadcast` written into `tensor` itself; returns `tensor`."""
    _check_process_set(process_set, "broadcast_")
    broadcast_storage([_storage(tensor, "broadcast_", write=True)], root_rank, _names(name, 1),
                      what="broadcast_")
    return tensor


def broadcast_object(obj: Any, root_rank: int = 0, name: Optional[str] = None) -> Any:
    """The root rank's picklable `obj` on every rank."""
    w = require()
    if w.size == 1:
        return obj
    what = f"broadcast_object {name or ''}".strip()
    payload = numpy.frombuffer(pickle.dumps(obj), numpy.uint8) if w.rank == root_rank else None
    n = numpy.array([payload.size if payload is not None else 0], numpy.int64)
    wait([w.comm.Ibcast(n, root=root_rank)], what)
    buf = numpy.array(payload, copy=True) if payload is not None else numpy.empty(int(n[0]), numpy.uint8)
    wait([w.comm.Ibcast(buf, root=root_rank)], what)
    return obj if w.rank == root_rank else pickle.loads(buf.tobytes())
