"""The warm-start loader: a cache entry's native library loads without Numba in a fresh
process; one built for another tracegrad/numba version, another CPU or another source, or
whose bytes do not match its manifest, is refused (with the reason logged) and rebuilt."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

from tracegrad.codegen import native
from tracegrad.codegen.cache import OWN_FOLDER

pytestmark = pytest.mark.skipif(native.platform_supported() is not None or shutil.which("cc") is None,
                                reason=f"no native libraries here: {native.platform_supported() or 'no C compiler'}")

_CHILD = r"""
import json, os, sys, numpy
from tracegrad.codegen import compile_trace, stats
from tracegrad.ir import Builder, Trace, Var
from tracegrad.ir.trace_builder import TraceEmitter
vals = []
for k in json.loads(os.environ["CHILD_KS"]):
    em = TraceEmitter(); b = Builder(em)
    x = Var((5,), numpy.dtype("float32"))
    y = b.reduce_sum(b.mul(b.tanh(x), k), axes=(0,), keepdims=False)
    out = compile_trace(Trace((x,), tuple(em.eqns), (y,)))([numpy.arange(5, dtype=numpy.float32)])
    vals.append(float(out[0]))
refused = []
for name, mod in list(sys.modules.items()):
    if name.startswith("tg_") and name.endswith("_native"):
        for fn in [getattr(mod, n) for n in dir(mod) if n.startswith("s_")]:
            try:
                fn(*[numpy.zeros(3, numpy.float64)] * 2)
            except TypeError:
                refused.append(True)
print(json.dumps({"values": vals, "numba": "numba" in sys.modules, "refused": refused, **stats()}))
"""
_KS = (3.0, 5.0, 7.0, 9.0)


def _want(k: float) -> float:
    return k * float(numpy.tanh(numpy.arange(5, dtype=numpy.float32)).sum())


def _child(d: Path, ks: tuple = _KS) -> dict:
    env = dict(os.environ, TRACEGRAD_CACHE_DIR=str(d), CHILD_KS=json.dumps(ks), TRACEGRAD_NATIVE="1",
               TRACEGRAD_LOG="cache")
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    for got, k in zip(out["values"], ks):
        assert abs(got - _want(k)) < 1e-4 * _want(k), (got, k, r.stderr[-2000:])
    out["log"] = r.stderr
    return out


def _native_files(d: Path) -> dict[str, tuple[Path, Path]]:
    """{entry name: (library, manifest)} in cache folder `d`."""
    own = d / OWN_FOLDER
    return {p.name[: -len(".native.json")]: (own / p.name.replace(".native.json", ".native.so"), p)
            for p in own.iterdir() if p.name.endswith(".native.json")}


def _by_k(d: Path) -> dict[float, tuple[Path, Path]]:
    files = _native_files(d)
    out = {}
    for name, (so, man) in files.items():
        src = (d / OWN_FOLDER / f"{name}.py").read_text()
        k = next(k for k in _KS if f"{k!r}" in src or f"= np.float32({k!r})" in src or str(k) in src)
        out[k] = (so, man)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A cache folder with four entries and their native libraries (built at the child's exit)."""
    d = tmp_path_factory.mktemp("native") / "cache"
    first = _child(d)
    assert first["disk_misses"] == len(_KS) and first["numba"]
    assert len(_native_files(d)) == len(_KS), first["log"][-2000:]
    return d


def test_warm_start_loads_native_libraries_without_numba(built, tmp_path):
    d = shutil.copytree(built, tmp_path / "cache")
    own = Path(d) / OWN_FOLDER
    mine = {"notes.native.so": b"mine", "tg_x.native.txt": b"mine too"}  # not the cache's: untouched
    for n, b in mine.items():
        (own / n).write_bytes(b)
    out = _child(d)
    for n, b in mine.items():
        assert (own / n).read_bytes() == b
    assert out["native_hits"] == len(_KS) and out["disk_misses"] == 0
    assert not out["numba"], "numba was imported on a warm start"
    assert out["refused"] and all(out["refused"])  # float64 arrays for float32 kernels: TypeError
    man = json.loads(next(iter(_native_files(d).values()))[1].read_text())
    assert {"source", "versions", "cpu", "lib", "functions", "llvm_cpu", "abi"} <= set(man)
    assert not any(p.suffix == ".pyc" for p in Path(d).rglob("*"))


def test_another_version_cpu_source_or_tampered_library_is_refused_and_rebuilt(built, tmp_path):
    d = shutil.copytree(built, tmp_path / "cache")
    by_k = _by_k(d)
    (so3, man3), (so5, man5), (so7, man7), (so9, man9) = (by_k[k] for k in _KS)
    m = json.loads(man3.read_text())
    m["versions"] = m["versions"].replace("|", "|0.0.0-other|", 1)
    man3.write_text(json.dumps(m))
    m = json.loads(man5.read_text())
    m["cpu"] = "another-cpu"
    man5.write_text(json.dumps(m))
    so7.write_bytes(so9.read_bytes())  # another entry's library and manifest under 7's names
    man7.write_text(man9.read_text())
    data = bytearray(so9.read_bytes())
    data[len(data) // 2] ^= 0xFF
    so9.write_bytes(bytes(data))
    out = _child(d)  # right values (checked) from Numba's cache, each refusal logged
    assert out.get("native_hits", 0) == 0 and out["disk_hits"] == len(_KS)
    log = out["log"]
    assert "refused: built for another tracegrad/numba/llvmlite/numpy/Python version" in log
    assert "refused: built for another CPU" in log
    assert "refused: built for another source" in log
    assert "does not match its manifest hash" in log
    # rebuilt at that process's exit: the next start loads all four natively
    again = _child(d)
    assert again["native_hits"] == len(_KS) and not again["numba"]


def test_cpu_id_is_stable_and_platform_is_checked(monkeypatch):
    assert native.cpu_id() == native.cpu_id() and len(native.cpu_id()) == 32
    monkeypatch.setenv("TRACEGRAD_NATIVE", "0")
    assert native.supported() == "TRACEGRAD_NATIVE=0"


def test_versions_are_read_without_importing_numba():
    import numba

    from tracegrad.codegen.cache import _dist_version

    assert _dist_version("numba") == numba.__version__
    code = ("import sys, tracegrad; from tracegrad.codegen.cache import _versions; _versions(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'llvmlite', 'scipy')))")
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", (r.stdout, r.stderr[-2000:])
