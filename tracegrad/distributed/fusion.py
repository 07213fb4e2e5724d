"""Tensor fusion: many arrays reduced (or broadcast) in few large in-place MPI messages.

Arrays are packed in order into per-dtype fusion buffers of at most the fusion threshold
(`TRACEGRAD_FUSION_THRESHOLD` or Horovod's `HOROVOD_FUSION_THRESHOLD`, bytes; default
64 MiB). Each buffer's non-blocking collective starts as soon as it is packed, while the
next one is packed; buffers are unpacked (with the scale factor fused into the copy) in
order as their collectives complete, and a callback can consume each finished group (the
trainer's update) while later groups are still on the wire. A contiguous array of at least
1 MiB (`direct_min`), or one larger than the threshold, goes on the wire directly from its
own storage, unpacked: on CPU a copy in and out costs as much as the reduction itself.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional, Sequence

import numpy

from .world import WORLD, on_shutdown, wait

DEFAULT_THRESHOLD = 64 * 1024 * 1024
SUPPORTED = tuple(numpy.dtype(t) for t in ("float32", "float64", "int32", "int64", "int8", "uint8"))


DEFAULT_DIRECT = 1024 * 1024


def threshold() -> int:
    """The fusion buffer size in bytes (0 disables fusion: one message per array)."""
    for var in ("TRACEGRAD_FUSION_THRESHOLD", "HOROVOD_FUSION_THRESHOLD"):
        v = os.environ.get(var)
        if v:
            return int(v)
    return DEFAULT_THRESHOLD


def direct_min() -> int:
    """Arrays of at least this many bytes travel from their own storage, unpacked.

    On CPU, packing costs a copy in and a copy out, as much memory traffic as the shared-
    memory reduction itself; from 1 MiB up a message is long enough that its latency does
    not matter, so such arrays are not fused (`TRACEGRAD_FUSION_DIRECT`, bytes).
    """
    v = os.environ.get("TRACEGRAD_FUSION_DIRECT")
    return int(v) if v else DEFAULT_DIRECT


class Bucket:
    """One message: the arrays (by index) it carries and where each sits in the buffer."""

    __slots__ = ("dtype", "items", "total", "direct")

    def __init__(self, dtype: numpy.dtype) -> None:
        self.dtype = dtype
        self.items: list[tuple[int, int, int]] = []  # (array index, offset, size)
        self.total = 0
        self.direct = False


def plan(arrays: Sequence[numpy.ndarray], limit: int, direct: Optional[int] = None) -> list[Bucket]:
    """Group arrays, in order, into buckets of one dtype and at most `limit` bytes each;
    contiguous arrays of at least `direct` bytes (and any over `limit`) go on their own."""
    limit = max(limit, 1)
    direct = limit if direct is None else min(direct, limit)
    buckets: list[Bucket] = []
    open_by_dtype: dict[numpy.dtype, Bucket] = {}
    for i, a in enumerate(arrays):
        n, dt = a.size, a.dtype
        nbytes = n * dt.itemsize
        if nbytes >= limit or (nbytes >= direct and a.flags.c_contiguous):  # a message of its own
            b = Bucket(dt)
            b.items.append((i, 0, n))
            b.total, b.direct = n, True
            buckets.append(b)
            continue
        b = open_by_dtype.get(dt)
        if b is None or (b.total + n) * dt.itemsize > limit:
            b = open_by_dtype[dt] = Bucket(dt)
            buckets.append(b)
        b.items.append((i, b.total, n))
        b.total += n
    return buckets


class BufferPool:
    """Fusion buffers kept between calls (one per bucket position and dtype), grown on demand."""

    def __init__(self) -> None:
        self._bufs: dict[tuple[int, numpy.dtype], numpy.ndarray] = {}

    def get(self, slot: int, dtype: numpy.dtype, n: int) -> numpy.ndarray:
        buf = self._bufs.get((slot, dtype))
        if buf is None or buf.size < n:
            buf = self._bufs[(slot, dtype)] = numpy.empty(max(n, 1), dtype)
        return buf[:n]

    def clear(self) -> None:
        self._bufs.clear()


POOL = BufferPool()
on_shutdown(POOL.clear)


def run(
    srcs: Sequence[numpy.ndarray],
    dsts: Sequence[numpy.ndarray],
    start: Callable[[numpy.ndarray, Optional[numpy.ndarray]], Any],
    what: str,
    buckets: list[Bucket],
    prescale: float = 1.0,
    postscale: float = 1.0,
    pack: bool = True,
    unpack: bool = True,
    on_ready: Optional[Callable[[list[int]], None]] = None,
) -> None:
    """Run one collective over many arrays (grouped as `buckets`, from `plan`): `dsts[i]`
    receives the result for `srcs[i]`.

    `start(buf, out)` starts the non-blocking collective on a buffer (in place when `out`
    is None) and returns its request. `pack=False` skips packing (a broadcast's receivers),
    `unpack=False` the copy back (a broadcast's root: its arrays already hold the result).
    `postscale` multiplies the results, fused into the unpacking copy.
    """
    reqs: list[Any] = []
    bufs: list[Optional[numpy.ndarray]] = []
    for slot, b in enumerate(buckets):
        # an array alone in its bucket needs no packing either
        if (b.direct or len(b.items) == 1) and _direct_ok(srcs[b.items[0][0]], dsts[b.items[0][0]], prescale):
            i = b.items[0][0]
            src, dst = srcs[i], dsts[i]
            if src is dst or not pack:
                reqs.append(start(dst.reshape(-1), None))
            else:
                reqs.append(start(src.reshape(-1), dst.reshape(-1)))
            bufs.append(None)
        else:
            buf = POOL.get(slot, b.dtype, b.total)
            if pack:
                for i, off, n in b.items:
                    view = buf[off : off + n].reshape(srcs[i].shape)
                    if prescale != 1.0:
                        numpy.multiply(srcs[i], prescale, out=view, casting="unsafe")
                    else:
                        numpy.copyto(view, srcs[i])
            reqs.append(start(buf, None))
            bufs.append(buf)
        if len(reqs) > 1:  # MPI progresses only inside MPI calls: move the earlier ones on
            WORLD.MPI.Request.Testall(reqs[:-1])
    for slot, b in enumerate(buckets):
        wait([reqs[slot]], what)
        buf = bufs[slot]
        for i, off, n in b.items if unpack else ():
            dst = dsts[i]
            if buf is None:
                if postscale != 1.0:
                    _scale_in_place(dst, postscale)
            else:
                view = buf[off : off + n].reshape(dst.shape)
                if postscale != 1.0:
                    _scale_into(view, postscale, dst)
                else:
                    numpy.copyto(dst, view)
        if on_ready is not None:
            on_ready([i for i, _, _ in b.items])


def _direct_ok(src: numpy.ndarray, dst: numpy.ndarray, prescale: float) -> bool:
    return prescale == 1.0 and src.flags.c_contiguous and dst.flags.c_contiguous


def _scale_into(view: numpy.ndarray, factor: float, dst: numpy.ndarray) -> None:
    if dst.dtype.kind == "f":
        numpy.multiply(view, dst.dtype.type(factor), out=dst)
    else:  # integer averages: floor division, as Horovod's integer Average
        numpy.floor_divide(view, int(round(1.0 / factor)), out=dst)


def _scale_in_place(dst: numpy.ndarray, factor: float) -> None:
    _scale_into(dst, factor, dst)
