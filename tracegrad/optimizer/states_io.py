"""Optimizer states to and from MXNet 2.x's states file (Trainer.save_states/load_states,
Updater.get_states/set_states): the states, checked against the Parameters they belong to."""

from __future__ import annotations

from typing import Any, Optional

import numpy as _onp

from .. import np
from ..serialization import FormatError
from . import states_file
from .mx_records import optimizer_from_mx, optimizer_to_mx
from .optimizer import Optimizer, _leaves

__all__ = ["dump", "load"]


def _to_mx(s: Any) -> Any:
    if s is None:
        return None
    if isinstance(s, (tuple, list)):
        return tuple(_to_mx(x) for x in s)
    return states_file.mx_array(s.asnumpy())


def dump(states: dict, optimizer: Optional[Optimizer]) -> bytes:
    """The bytes of a states file: `(states, optimizer)`, or the states alone without one."""
    body = {int(i): _to_mx(s) for i, s in states.items()}
    return states_file.write((body, optimizer_to_mx(optimizer)) if optimizer is not None else body)


def _structure(s: Any) -> Any:
    if s is None:
        return None
    if isinstance(s, (tuple, list)):
        return tuple(_structure(x) for x in s)
    return (tuple(s.shape), _onp.dtype(s.dtype).name)


def load(raw: bytes, source: str, param_dict: dict, optimizer: Optional[Optimizer] = None) -> tuple[dict, Any]:
    """(states as tracegrad arrays, the file's optimizer or None). Each state must have the
    structure, shapes and dtypes the optimizer creates for that Parameter."""
    found, record = states_file.read(raw, source)
    opt = optimizer_from_mx(record, param_dict, source) if record is not None else optimizer
    if opt is None:
        raise FormatError(f"{source}: holds no optimizer, and none was given to check the states against")
    states = {}
    for i, s in found.items():
        p = param_dict.get(i) if isinstance(i, int) else None
        if p is None:
            raise FormatError(f"{source}: has a state for parameter index {i!r}, but there are {len(param_dict)} "
                              "parameters; was it saved for another network?")
        w = p.data() if hasattr(p, "data") else p
        fresh = opt.create_state_multi_precision(i, w)
        want, got = _structure(fresh), _structure(s)
        if want != got:
            name = getattr(p, "name", i)
            raise FormatError(f"{source}: the state of parameter {i} ({name}) is {got}; {type(opt).__name__} "
                              f"keeps {want} for it; was it saved for another network or optimizer?")
        for dst, src in zip(_leaves(fresh), _leaves(s)):
            dst[...] = np.array(src, dtype=src.dtype, device=dst.device)
        states[i] = fresh
    return states, opt

