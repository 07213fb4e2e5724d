"""Parameters across ranks: broadcast at the start, gradients reduced before each update.

Works on Gluon `Parameter`s and on anything shaped like them (`.data()`, `.set_data()`,
`.grad()`, `.grad_req`), and on dicts of plain arrays.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy

from ..tracer.array import Array
from ..where import user_line_long
from .collectives import (ReduceOp, _storage, broadcast_storage, captured, record_allreduce,
                          reduce_storage, write_back)
from .errors import DistributedError
from .world import require


def _items(params: Any) -> list[tuple[str, Any]]:
    if isinstance(params, dict):
        return sorted(((str(k), v) for k, v in params.items()), key=lambda kv: kv[0])
    if hasattr(params, "items") and callable(params.items):  # ParameterDict-like
        return sorted(((str(k), v) for k, v in params.items()), key=lambda kv: kv[0])
    if isinstance(params, (list, tuple)):
        return [(str(getattr(p, "name", i)), p) for i, p in enumerate(params)]
    raise TypeError(f"broadcast_parameters: expected a dict of parameters or arrays, or a list, "
                    f"got {type(params).__name__} (at {user_line_long()})")


def _live_array(name: str, p: Any) -> Any:
    if isinstance(p, (Array, numpy.ndarray)):
        return p
    data = getattr(p, "data", None)
    if not callable(data):
        raise TypeError(f"broadcast_parameters: {name!r} is a {type(p).__name__}, neither an array "
                        f"nor a parameter with .data() (at {user_line_long()})")
    try:
        return data()
    except Exception as exc:  # a parameter whose shape is not known yet (deferred init)
        raise DistributedError(
            f"broadcast_parameters: parameter {name!r} has no data yet ({type(exc).__name__}: "
            f"{exc}); initialize it with known shapes, or run one forward pass before "
            f"broadcasting (at {user_line_long()})"
        ) from None


def broadcast_parameters(params: Any, root_rank: int = 0, prefix: Optional[str] = None) -> None:
    """Overwrite every parameter (or array) in `params` with the root rank's values.

    `params`: `block.collect_params()`, a dict of Parameters or arrays, or a list of them;
    dicts are broadcast in the order of their sorted keys (the same on every rank).
    """
    require()
    items = _items(params)
    arrays = [(name, p, _live_array(name, p)) for name, p in items]
    bufs = [_storage(a, "broadcast_parameters", write=True) for _, _, a in arrays]
    names = [f"{prefix or ''}{name}" for name, _, _ in arrays]
    broadcast_storage(bufs, root_rank, names, what="broadcast_parameters")
    for _, p, a in arrays:
        copies = getattr(p, "list_data", None)
        if callable(copies) and len(copies()) > 1:  # other devices' copies follow the first
            p.set_data(a)


def grads_of(params: Sequence[Any]) -> tuple[list[int], list[str], list[Any]]:
    """The indices, names and live gradient arrays of the parameters that have gradients."""
    index, names, grads = [], [], []
    for i, p in enumerate(params):
        if getattr(p, "grad_req", "write") == "null":
            continue
        g = p.grad() if callable(getattr(p, "grad", None)) else p.grad
        if g is None:
            continue
        index.append(i)
        names.append(str(getattr(p, "name", i)))
        grads.append(g)
    return index, names, grads


def allreduce_grads(
    params: Sequence[Any],
    average: bool = True,
    prescale: float = 1.0,
    on_ready: Optional[Callable[[list[int]], None]] = None,
) -> list[int]:
    """Sum (or average) the gradients of `params` across ranks, in place, fused.

    Returns the indices into `params` of the reduced parameters. The first call exchanges
    the parameters' names, shapes and dtypes: a difference between ranks raises
    `MismatchError` there, naming the parameter and the ranks.
    """
    require()
    index, names, grads = grads_of(params)
    rop = ReduceOp.AVERAGE if average else ReduceOp.SUM
    if captured(grads, "allreduce_grads"):  # a step under tracegrad.jit: one eqn of its program
        write_back(grads, record_allreduce(grads, rop, names, prescale, what="gradient allreduce"))
        if on_ready is not None:
            on_ready(index)
        return index
    bufs = [_storage(g, "allreduce_grads", write=True) for g in grads]
    done = None if on_ready is None else (lambda ks: on_ready([index[k] for k in ks]))
    reduce_storage(bufs, bufs, rop, names,
                   prescale=prescale, what="gradient allreduce", on_ready=done)
    return index
