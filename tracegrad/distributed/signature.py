"""Agreement between ranks on what a collective carries, checked once per layout.

Before the first message of a new layout (kind, op, root, names, shapes, dtypes), the ranks
compare a 62-bit hash of it with one tiny MAX-allreduce; on a mismatch every rank gathers
the full signatures and raises the same `MismatchError` naming the first difference.
"""

from __future__ import annotations

import hashlib
import pickle
from typing import Any, Callable

import numpy

from ..where import user_line_long
from .errors import MismatchError
from .world import WORLD, on_shutdown, wait

_AGREED: set[int] = set()
_LAYOUTS: dict[tuple, Any] = {}


def layout(key: tuple, sig: Callable[[], tuple], build: Callable[[], Any]) -> Any:
    """What `build()` made for this layout `key` (e.g. its fusion plan), checked with the
    other ranks (`agree(sig())`) the first time the key is seen on this rank."""
    got = _LAYOUTS.get(key)
    if got is None:
        agree(sig(), user_line_long())
        if len(_LAYOUTS) > 4096:
            _LAYOUTS.clear()
        got = _LAYOUTS[key] = build()
    return got


def layout_hash(sig: tuple) -> int:
    digest = hashlib.blake2b(repr(sig).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 2


def agree(sig: tuple, where: str) -> None:
    """Check that every rank calls this collective with the same signature `sig`.

    `sig` is (kind, detail, entries) with entries a tuple of (name, shape, dtype).
    """
    w = WORLD
    if w.size == 1:
        return
    key = layout_hash(sig)
    if key in _AGREED:
        return
    a = numpy.array([key, -key], numpy.int64)
    wait([w.comm.Iallreduce(w.MPI.IN_PLACE, a, op=w.MPI.MAX)], f"{sig[0]} signature check")
    if a[0] == -a[1]:
        _AGREED.add(key)
        return
    sigs = gather_objects(sig, f"{sig[0]} signature exchange")
    raise MismatchError(describe(sigs) + f" (rank {w.rank} at {where})")


def describe(sigs: list) -> str:
    """The first difference between rank 0's signature and another rank's, in words."""
    ref = sigs[0]
    for r, s in enumerate(sigs[1:], 1):
        if s == ref:
            continue
        if s[:2] != ref[:2]:
            return (f"ranks called different collectives: rank 0 {_call(ref)}, rank {r} {_call(s)}")
        a, b = ref[2], s[2]
        if len(a) != len(b):
            return (f"{ref[0]}: rank 0 passes {len(a)} arrays, rank {r} passes {len(b)} "
                    "(every rank must reduce the same parameters in the same order)")
        for k, (ea, eb) in enumerate(zip(a, b)):
            if ea != eb:
                same = ea[0] == eb[0]
                name = f" {ea[0]!r}" if same and ea[0] else ""
                return (f"{ref[0]}: array #{k}{name} is {_entry(ea, not same)} on rank 0 but "
                        f"{_entry(eb, not same)} on rank {r} (every rank must pass the same names, "
                        "shapes and dtypes)")
    return "ranks disagree on the collective's signature"


def _call(sig: tuple) -> str:
    return f"{sig[0]}({sig[1]}) of {len(sig[2])} arrays"


def _entry(e: tuple, with_name: bool) -> str:
    name, shape, dtype = e
    label = f"{name!r} " if name and with_name else ""
    return f"{label}shape {tuple(shape)} {dtype}"


def gather_objects(obj: Any, what: str) -> list:
    """`obj` from every rank, in rank order (pickled; for small control data only)."""
    w = WORLD
    if w.size == 1:
        return [obj]
    payload = numpy.frombuffer(pickle.dumps(obj), numpy.uint8)
    sizes = numpy.zeros(w.size, numpy.int64)
    wait([w.comm.Iallgather(numpy.array([payload.size], numpy.int64), sizes)], what)
    out = numpy.empty(int(sizes.sum()), numpy.uint8)
    counts = [int(n) for n in sizes]
    displs = [int(d) for d in numpy.concatenate([[0], numpy.cumsum(sizes)[:-1]])]
    wait([w.comm.Iallgatherv(payload, [out, counts, displs, w.MPI.BYTE])], what)
    return [pickle.loads(out[d : d + n].tobytes()) for d, n in zip(displs, counts)]


def reset() -> None:
    """Forget the agreed layouts (after the world changes)."""
    _AGREED.clear()
    _LAYOUTS.clear()


on_shutdown(reset)
