"""Array files MXNet reads and writes: `npx.save` / `npx.savez` / `npx.load`.

MXNet 2.x (numpy mode) writes numpy formats: `.npy` for one array, a zip of `.npy` files
(`.npz`, also what `save_parameters` writes) for several. MXNet 1.x (and 2.x's legacy
`mx.nd.save`) writes a binary NDArray list: `load` reads both, telling them apart by
their first bytes; `save_legacy` writes the binary list for tools that want the old format.

The 1.x binary list (little endian): uint64 0x112, uint64 0, uint64 count, count arrays,
uint64 name count, names (uint64 length + bytes). One array: uint32 magic (0xF993FAC9 V2,
0xF993FACA V3 = numpy shapes; 0xF993FAC8 V1 has no storage type; anything else is the
ndim of the oldest format, with uint32 dims), int32 storage type (0 = dense), int32 ndim,
int64 dims, int32 device type, int32 device id, int32 type flag, then the raw data.
"""

from __future__ import annotations

import io
import os
import struct
from typing import Any, BinaryIO, Union

import numpy

from .errors import TracegradError, UnsupportedError

__all__ = ["save", "savez", "load", "load_dict", "save_legacy", "read_raw_array", "raw_array_bytes", "FormatError"]

LIST_MAGIC = 0x112
V1_MAGIC, V2_MAGIC, V3_MAGIC = 0xF993FAC8, 0xF993FAC9, 0xF993FACA
_TYPE_FLAGS = {
    0: numpy.float32, 1: numpy.float64, 2: numpy.float16, 3: numpy.uint8, 4: numpy.int32, 5: numpy.int8,
    6: numpy.int64, 7: numpy.bool_, 8: numpy.int16, 9: numpy.uint16, 10: numpy.uint32, 11: numpy.uint64,
}  # fmt: skip
_FLAG_OF = {numpy.dtype(v): k for k, v in _TYPE_FLAGS.items()}


class FormatError(TracegradError, ValueError):
    """A file is not an array file MXNet or tracegrad writes (or is truncated)."""


def _host(a: Any) -> numpy.ndarray:
    return a.asnumpy() if hasattr(a, "asnumpy") else numpy.asarray(a)


def save(file: Union[str, BinaryIO], arr: Any) -> None:
    """One array as `.npy` (MXNet 2.x `npx.save`; the file name is used as given)."""
    if isinstance(arr, (dict, list, tuple)):
        raise TypeError("npx.save saves one array; use npx.savez(file, *arrays, **named_arrays) for several")
    if isinstance(file, str):
        with open(file, "wb") as fh:
            numpy.save(fh, _host(arr), allow_pickle=False)
    else:
        numpy.save(file, _host(arr), allow_pickle=False)


def savez(file: Union[str, BinaryIO], *args: Any, **kwds: Any) -> None:
    """Several arrays as a zip of `.npy` (positional ones named arr_0, arr_1, ...)."""
    named = {f"arr_{i}": _host(a) for i, a in enumerate(args)}
    for k, v in kwds.items():
        if k in named:
            raise ValueError(f"npx.savez: cannot use un-named variables and keyword {k}")
        named[k] = _host(v)
    if isinstance(file, str):
        with open(file, "wb") as fh:  # numpy would append '.npz' to a bare name; MXNet does not
            numpy.savez(fh, **named)
    else:
        numpy.savez(file, **named)


def load(file: Union[str, BinaryIO]) -> Any:
    """An array (`.npy`), a dict of arrays (zip), or what a 1.x binary list holds (a dict when
    it has names, else a list); values are tracegrad arrays."""
    from . import np as tnp

    def keep(a: numpy.ndarray) -> Any:
        return tnp.array(a, dtype=a.dtype)

    raw = _read_all(file)
    kind = _kind(raw, file)
    if kind == "npy":
        return keep(numpy.load(io.BytesIO(raw), allow_pickle=False))
    if kind == "zip":
        with numpy.load(io.BytesIO(raw), allow_pickle=False) as z:
            return {k: keep(z[k]) for k in z.files}
    arrays, names = read_legacy(raw, file)
    wrapped = [keep(a) for a in arrays]
    return dict(zip(names, wrapped)) if names else wrapped


def load_dict(file: Union[str, BinaryIO]) -> dict:
    """{name: numpy array} from any format `load` reads (a 1.x list without names is an error)."""
    raw = _read_all(file)
    kind = _kind(raw, file)
    if kind == "npy":
        raise FormatError(f"{_name(file)} holds one array (.npy), not named parameters")
    if kind == "zip":
        with numpy.load(io.BytesIO(raw), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    arrays, names = read_legacy(raw, file)
    if not names:
        raise FormatError(f"{_name(file)} is an MXNet 1.x array list without names; parameters need names")
    return dict(zip(names, arrays))


def _name(file: Any) -> str:
    return file if isinstance(file, str) else getattr(file, "name", "<stream>")


def _read_all(file: Union[str, BinaryIO]) -> bytes:
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as fh:
            return fh.read()
    return file.read()


def _kind(raw: bytes, file: Any) -> str:
    if raw[:6] == b"\x93NUMPY":
        return "npy"
    if raw[:4] == b"PK\x03\x04" or (raw[:4] == b"PK\x05\x06"):
        return "zip"
    if len(raw) >= 8 and struct.unpack_from("<Q", raw, 0)[0] == LIST_MAGIC:
        return "legacy"
    raise FormatError(f"{_name(file)}: not an array file (neither numpy .npy/.npz nor an MXNet NDArray list)")


class _Reader:
    def __init__(self, raw: bytes, file: Any) -> None:
        self.raw, self.pos, self.file = raw, 0, file

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.raw):
            raise FormatError(f"{_name(self.file)}: truncated MXNet NDArray file (at byte {self.pos})")
        out = struct.unpack_from(fmt, self.raw, self.pos)
        self.pos += size
        return out

    def bytes(self, n: int) -> bytes:
        if self.pos + n > len(self.raw):
            raise FormatError(f"{_name(self.file)}: truncated MXNet NDArray file (at byte {self.pos})")
        out = self.raw[self.pos:self.pos + n]
        self.pos += n
        return out


def read_legacy(raw: bytes, file: Any = "<bytes>") -> tuple[list[numpy.ndarray], list[str]]:
    """The arrays and names of an MXNet 1.x binary NDArray list."""
    r = _Reader(raw, file)
    magic, _reserved = r.take("<QQ")
    if magic != LIST_MAGIC:
        raise FormatError(f"{_name(file)}: not an MXNet NDArray list (magic {magic:#x})")
    (count,) = r.take("<Q")
    arrays = [_read_one(r) for _ in range(count)]
    (nnames,) = r.take("<Q")
    names = []
    for _ in range(nnames):
        (n,) = r.take("<Q")
        names.append(r.bytes(n).decode("utf-8"))
    if names and len(names) != len(arrays):
        raise FormatError(f"{_name(file)}: {len(arrays)} arrays but {len(names)} names")
    return arrays, names


def _read_one(r: _Reader) -> numpy.ndarray:
    (magic,) = r.take("<I")
    if magic in (V2_MAGIC, V3_MAGIC, V1_MAGIC):
        if magic != V1_MAGIC:
            (stype,) = r.take("<i")
            if stype != 0:
                raise UnsupportedError(f"{_name(r.file)}: sparse arrays (storage type {stype}) are not supported")
        (ndim,) = r.take("<i")
        shape = r.take(f"<{ndim}q") if ndim > 0 else ()
        if ndim < 0 or (ndim == 0 and magic != V3_MAGIC):
            return numpy.zeros((0,), numpy.float32)  # an empty (none) array
    else:  # the oldest format: the magic is ndim, dims are uint32
        ndim = magic
        shape = r.take(f"<{ndim}I") if ndim > 0 else ()
        if ndim == 0:
            return numpy.zeros((0,), numpy.float32)
    _dev_type, _dev_id, flag = r.take("<iii")
    if flag not in _TYPE_FLAGS:
        raise UnsupportedError(f"{_name(r.file)}: array type flag {flag} (e.g. bfloat16) is not supported")
    dt = numpy.dtype(_TYPE_FLAGS[flag])
    n = int(numpy.prod(shape, dtype=numpy.int64)) if shape else 1
    data = r.bytes(n * dt.itemsize)
    return numpy.frombuffer(data, dtype=dt.newbyteorder("<")).astype(dt).reshape(shape)


def save_legacy(file: Union[str, BinaryIO], data: Any) -> None:
    """Write an MXNet 1.x binary NDArray list (a dict of named arrays or a list), V2 format."""
    if isinstance(data, dict):
        names, arrays = list(data.keys()), [_host(v) for v in data.values()]
    else:
        names, arrays = [], [_host(v) for v in (data if isinstance(data, (list, tuple)) else [data])]
    out = io.BytesIO()
    out.write(struct.pack("<QQQ", LIST_MAGIC, 0, len(arrays)))
    for a in arrays:
        a = numpy.ascontiguousarray(a)
        _write_one(out, a.reshape(1) if a.ndim == 0 else a, V2_MAGIC)  # V2 cannot hold 0-d arrays
    out.write(struct.pack("<Q", len(names)))
    for nm in names:
        b = nm.encode("utf-8")
        out.write(struct.pack("<Q", len(b)) + b)
    if isinstance(file, str):
        with open(file, "wb") as fh:
            fh.write(out.getvalue())
    else:
        file.write(out.getvalue())


def _write_one(out: BinaryIO, a: numpy.ndarray, magic: int) -> None:
    if a.dtype not in _FLAG_OF:
        raise UnsupportedError(f"dtype {a.dtype} has no MXNet type flag")
    out.write(struct.pack("<Iii", magic, 0, a.ndim))
    out.write(struct.pack(f"<{a.ndim}q", *a.shape))
    out.write(struct.pack("<iii", 1, 0, _FLAG_OF[a.dtype]))
    out.write(numpy.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False).tobytes())


def raw_array_bytes(a: Any) -> bytes:
    """One array as MXNet 2.x's `MXNDArraySaveRawBytes` writes it (what its pickles hold), V3."""
    out = io.BytesIO()
    _write_one(out, numpy.asarray(_host(a)), V3_MAGIC)
    return out.getvalue()


def read_raw_array(raw: bytes, source: Any = "<bytes>") -> numpy.ndarray:
    """The array in MXNet's raw bytes of one NDArray (`raw_array_bytes`, or MXNet's pickles)."""
    r = _Reader(bytes(raw), source)
    a = _read_one(r)
    if r.pos != len(r.raw):
        raise FormatError(f"{_name(source)}: {len(r.raw) - r.pos} bytes after the array")
    return a
