"""`gluon.utils` (MXNet 2.x): split_data, split_and_load, clip_global_norm, check_sha1, download."""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings
from typing import Any, Optional, Sequence

from .. import np

__all__ = ["split_data", "split_and_load", "clip_global_norm", "check_sha1", "download"]


def split_data(data: Any, num_slice: int, batch_axis: int = 0, even_split: bool = True) -> list:
    """`num_slice` consecutive slices of `data` along `batch_axis` (the first ones one longer
    when the size does not divide and `even_split=False`)."""
    size = data.shape[batch_axis]
    if even_split and size % num_slice != 0:
        raise ValueError(
            f"data with shape {tuple(data.shape)} cannot be evenly split into {num_slice} slices along axis "
            f"{batch_axis}. Use a batch size that's multiple of {num_slice} or set even_split=False to allow "
            "uneven partitioning of data.")
    if size < num_slice:
        raise ValueError(f"Too many slices for data with shape {tuple(data.shape)}. Arguments are "
                         f"num_slice={num_slice} and batch_axis={batch_axis}.")
    each, extra = divmod(size, num_slice)
    bounds = [0]
    for i in range(num_slice):
        bounds.append(bounds[-1] + each + (1 if i < extra else 0))
    out = []
    for st, end in zip(bounds[:-1], bounds[1:]):
        key = (slice(None),) * batch_axis + (slice(st, end),)
        out.append(data[key])
    return out


def split_and_load(data: Any, ctx_list: Sequence[Any], batch_axis: int = 0, even_split: bool = True) -> list:
    """Split `data` into one slice per device in `ctx_list` and place each there."""
    ctx_list = list(ctx_list)
    if not hasattr(data, "as_in_ctx"):
        data = np.array(data, device=ctx_list[0])
    if len(ctx_list) == 1:
        return [data.as_in_ctx(ctx_list[0])]
    return [s.as_in_ctx(c) for s, c in zip(split_data(data, len(ctx_list), batch_axis, even_split), ctx_list)]


def clip_global_norm(arrays: Sequence[Any], max_norm: float, check_isfinite: bool = True) -> Any:
    """Scale `arrays` in place so their joint L2 norm is at most `max_norm`; returns the norm
    before scaling (a float, or a 0-d array when `check_isfinite=False`)."""
    if not arrays:
        raise ValueError("clip_global_norm: arrays must not be empty")
    total = None
    for a in arrays:
        s = np.sum(np.square(a))
        total = s if total is None else total + s
    total_norm = np.sqrt(total)
    scale = np.minimum(max_norm / (total_norm + 1e-8), 1.0)
    value = None
    if check_isfinite:
        value = float(total_norm)
        if not math.isfinite(value):
            warnings.warn(UserWarning("nan or inf is detected. Clipping results will be undefined."), stacklevel=2)
    for a in arrays:
        a *= scale.astype(a.dtype)
    return value if check_isfinite else total_norm


def check_sha1(filename: str, sha1_hash: str) -> bool:
    """Whether the file's SHA-1 equals `sha1_hash` (hex)."""
    sha1 = hashlib.sha1()
    with open(filename, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha1.update(chunk)
    return sha1.hexdigest() == sha1_hash


def download(url: str, path: Optional[str] = None, overwrite: bool = False, sha1_hash: Optional[str] = None,
             retries: int = 5, verify_ssl: bool = True, timeout: float = 30.0) -> str:
    """Download `url` to `path` (a file, or a folder to put it in; the current folder by
    default) and return the file name. An existing file is kept unless `overwrite` or its
    SHA-1 differs. Raises RuntimeError naming the URL and the cause when it cannot download
    (no network, say)."""
    fname = url.split("/")[-1] if path is None else path
    if path is not None and os.path.isdir(path):
        fname = os.path.join(path, url.split("/")[-1])
    if os.path.exists(fname) and not overwrite and (not sha1_hash or check_sha1(fname, sha1_hash)):
        return fname
    folder = os.path.dirname(os.path.abspath(fname))
    os.makedirs(folder, exist_ok=True)
    last: Exception = RuntimeError("no attempt")
    for _ in range(max(1, retries)):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                fd, tmp = tempfile.mkstemp(dir=folder, prefix=".download-")
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(resp, out)
            if sha1_hash and not check_sha1(tmp, sha1_hash):
                os.unlink(tmp)
                raise RuntimeError(f"the file downloaded from {url} has the wrong SHA-1 (expected {sha1_hash})")
            os.replace(tmp, fname)
            return fname
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last = exc
            if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
                break  # no network or no such host: retrying does not help
    raise RuntimeError(f"download of {url} to {fname} failed: {last}. Without network access, fetch the file "
                       "elsewhere and put it at that path.")
