"""Block parameter files: `save_parameters` / `load_parameters` / `load_dict`.

Saved as MXNet 2.x does (a zip of `.npy` named by structural keys). Loading accepts that,
and MXNet 1.x files: the structural names 1.x `save_parameters` wrote, or the prefixed
names of `ParameterDict.save` / `export` (`dense0_weight`, `arg:conv0_bias`,
`aux:batchnorm0_moving_mean`). Prefixed names are matched to this network's 1.x names
when they agree; otherwise block by block in order (each 1.x prefix group against each
block's Parameters, by parameter name and shape), which does not depend on the counters
that numbered the original blocks.
"""

from __future__ import annotations

import re
from typing import Any, Optional

import numpy

from .. import serialization

__all__ = ["save_parameters", "load_parameters", "load_dict", "assign", "map_legacy_names"]

_ALIASES = {"moving_mean": "running_mean", "moving_var": "running_var"}


def save_parameters(block: Any, filename: str, deduplicate: bool = False) -> None:
    params = block._collect_params_with_prefix()
    if deduplicate:  # a shared Parameter is written once, under its last structural name
        inverse = {id(p): k for k, p in params.items()}
        params = {k: p for k, p in params.items() if inverse[id(p)] == k}
    serialization.savez(filename, **{k: p._reduce() for k, p in params.items()})


def load_parameters(block: Any, filename: str, device: Any, allow_missing: bool, ignore_extra: bool,
                    cast_dtype: bool, dtype_source: str) -> None:
    loaded = serialization.load_dict(filename)
    assign(block._collect_params_with_prefix(), loaded, device, allow_missing, ignore_extra, cast_dtype,
           dtype_source, filename)


def load_dict(block: Any, param_dict: dict, device: Any, allow_missing: bool, ignore_extra: bool,
              cast_dtype: bool, dtype_source: str) -> None:
    loaded = {k: (v.asnumpy() if hasattr(v, "asnumpy") else numpy.asarray(v)) for k, v in param_dict.items()}
    assign(block._collect_params_with_prefix(), loaded, device, allow_missing, ignore_extra, cast_dtype,
           dtype_source, "the dict")


def _brief(names: Any) -> str:
    names = list(names)
    s = ", ".join(names[:8])
    return s + (f", ... ({len(names)} in all)" if len(names) > 8 else "")


def assign(params: dict, loaded: dict, device: Any, allow_missing: bool, ignore_extra: bool, cast_dtype: bool,
           dtype_source: str, source: str) -> None:
    """Load `loaded` ({name: numpy array}) into `params` ({structural name: Parameter})."""
    if loaded and not all(k in params for k in loaded):
        loaded = map_legacy_names(params, loaded, source)
    if not allow_missing:
        have = {id(params[k]) for k in loaded if k in params}
        for name, p in params.items():
            if id(p) not in have:
                raise ValueError(f"Parameter {name!r} is missing in file {source!r}, which contains parameters: "
                                 f"{_brief(loaded)}. Set allow_missing=True to ignore missing parameters.")
    for name, value in loaded.items():
        if name not in params:
            if ignore_extra:
                continue
            raise ValueError(f"Parameter {name!r} loaded from file {source!r} is not present in this network, "
                             f"which contains parameters {_brief(params)}. Set ignore_extra=True to ignore.")
        params[name]._load_init(value, device, cast_dtype=cast_dtype, dtype_source=dtype_source)


def _strip(key: str) -> str:
    return key.split(":", 1)[1] if key.startswith(("arg:", "aux:")) else key


def map_legacy_names(params: dict, loaded: dict, source: str = "the file") -> dict:
    """{structural name: array} for a file keyed by 1.x prefixed names (see module doc);
    names that match nothing keep their key (reported as extra by the caller)."""
    loaded = _fuse_rnn_pieces(params, {_strip(k): v for k, v in loaded.items()})
    if all(k in params for k in loaded):
        return loaded
    by_old = {p._structure: k for k, p in params.items() if p._structure}
    if all(k in params or k in by_old for k in loaded):
        return {(k if k in params else by_old[k]): v for k, v in loaded.items()}
    mapped = _map_by_groups(params, loaded)
    if mapped is not None:
        return mapped
    return {(by_old.get(k, k)): v for k, v in loaded.items()}


_RNN_PIECE = re.compile(r"^(.*?)([lr]\d+_(?:i2h|h2h)_(?:weight|bias))$")


def _fuse_rnn_pieces(params: dict, loaded: dict) -> dict:
    """MXNet 1.x RNN layers kept one Parameter per piece ('lstm0_l0_i2h_weight',
    'rnn.l0_h2h_bias'); 2.x and tracegrad keep one flat `rnn_param`. Concatenates each 1.x
    layer's pieces (in file order of layers) into the flat layout of ours, in order."""
    ours = [(k, p) for k, p in params.items() if _attr(k) == "rnn_param" and hasattr(p.init, "_layer")]
    groups: dict[str, dict[str, Any]] = {}
    for k, v in loaded.items():
        m = _RNN_PIECE.match(k)
        if m:
            groups.setdefault(m.group(1), {})[m.group(2)] = (k, v)
    if not ours or len(groups) != len(ours):
        return loaded
    out = dict(loaded)
    for (key, p), pieces in zip(ours, groups.values()):
        first = pieces.get("l0_i2h_weight")
        if first is None:
            return loaded
        order = p.init._layer._pieces(int(numpy.shape(first[1])[1]))
        if sorted(n for n, _ in order) != sorted(pieces):
            return loaded
        if any(tuple(numpy.shape(pieces[n][1])) != tuple(shape) for n, shape in order):
            return loaded
        out[key] = numpy.concatenate([numpy.asarray(pieces[n][1]).reshape(-1) for n, _ in order])
        for n, _ in order:
            del out[pieces[n][0]]
    return out


def _attr(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _split(key: str, attrs: list[str]) -> Optional[tuple[str, str]]:
    for a in attrs:  # longest first
        for old, new in list(_ALIASES.items()) + [(a, a)]:
            if new != a:
                continue
            if key == old or key.endswith("_" + old):
                return key[: len(key) - len(old)], a
    return None


def _map_by_groups(params: dict, loaded: dict) -> Optional[dict]:
    attrs = sorted({_attr(k) for k in params}, key=len, reverse=True)
    file_groups: dict[str, list[tuple[str, str]]] = {}
    for k in loaded:
        sp = _split(k, attrs)
        if sp is None:
            return None
        file_groups.setdefault(sp[0], []).append((sp[1], k))
    ours: dict[str, list[tuple[str, str]]] = {}
    seen: set[int] = set()
    for k, p in params.items():
        if id(p) in seen:
            continue
        seen.add(id(p))
        ours.setdefault(k[: len(k) - len(_attr(k))], []).append((_attr(k), k))
    if len(file_groups) != len(ours):
        return None
    out = {}
    for (fp, fitems), (op, oitems) in zip(file_groups.items(), ours.items()):
        if sorted(a for a, _ in fitems) != sorted(a for a, _ in oitems):
            return None
        where = dict(oitems)
        for a, fk in fitems:
            p = params[where[a]]
            shape = numpy.shape(loaded[fk])
            if p.shape is not None and (len(p.shape) != len(shape) or any(d not in (-1, s) for d, s in zip(p.shape, shape))):
                return None
            out[where[a]] = loaded[fk]
    return out
