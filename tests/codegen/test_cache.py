"""The disk cache: reused by a second process; corrupt, tampered and planted files never
loaded; a user's folder and files left alone; read-only folders read; the API."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

import tracegrad.cache
from tracegrad.codegen import STATS, compile_trace
from tracegrad.codegen.cache import OWN_FOLDER, cache_dir

from cg_helpers import make

_CHILD = r"""
import json, os, sys, numpy
from tracegrad.codegen import compile_trace, stats
from tracegrad.ir import Builder, Trace, Var
from tracegrad.ir.trace_builder import TraceEmitter
em = TraceEmitter(); b = Builder(em)
x = Var((5,), numpy.dtype("float32"))
y = b.reduce_sum(b.mul(b.tanh(x), float(os.environ.get("CHILD_K", "3.0"))), axes=(0,), keepdims=False)
out = compile_trace(Trace((x,), tuple(em.eqns), (y,)))([numpy.arange(5, dtype=numpy.float32)])
print(json.dumps({"value": float(out[0]), **stats()}))
"""
_WANT = {k: k * float(numpy.tanh(numpy.arange(5, dtype=numpy.float32)).sum()) for k in (3.0, 5.0)}


def _child(env_dir: Path, k: float = 3.0, log: bool = False, **env_extra: str) -> dict:
    env = dict(os.environ, TRACEGRAD_CACHE_DIR=str(env_dir), CHILD_K=str(k), **env_extra)
    if log:
        env["TRACEGRAD_LOG"] = "cache"
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert abs(out["value"] - _WANT[k]) < 1e-4 * abs(_WANT[k]), (out["value"], _WANT[k], r.stderr[-2000:])
    out["log"] = r.stderr
    return out


def _own(d: Path) -> Path:
    return d / OWN_FOLDER


def _entries(d: Path, suffixes: tuple = (".nbc",)) -> list[Path]:
    return sorted(p for p in _own(d).iterdir() if p.name.startswith("tg_") and p.name.endswith(suffixes))


def _listing(d: Path) -> dict:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def populated(tmp_path_factory) -> dict:
    """Cache folders holding program A (x 3) and program B (x 5), built once; tests copy them."""
    root = tmp_path_factory.mktemp("populated")
    _child(root / "a", 3.0)
    _child(root / "b", 5.0)
    return {"a": root / "a", "b": root / "b"}


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_second_process_reuses_the_disk_cache_and_corrupt_entries_are_rebuilt(tmp_path):
    d = tmp_path / "cache"
    first = _child(d)
    assert first["disk_misses"] == 1 and first["disk_hits"] == 0
    assert stat.S_IMODE(d.stat().st_mode) == 0o700  # created by the cache: private
    assert stat.S_IMODE(_own(d).stat().st_mode) == 0o700 and (_own(d) / "CACHEDIR.TAG").is_file()
    second = _child(d)
    assert second["disk_hits"] == 1 and second["disk_misses"] == 0
    assert not any(p.suffix == ".pyc" for p in d.rglob("*"))  # bytecode is never written (nor read)
    # corrupt the generated module and Numba's files: rebuilt, same answer, no crash
    mods = _entries(d, (".py",))
    assert len(mods) == 1
    mods[0].write_text("this is not python(\n")
    for f in _entries(d, (".nbi", ".nbc")):
        f.write_bytes(b"garbage")
    third = _child(d, log=True)
    assert third["disk_misses"] == 1 and "does not match its name" in third["log"]
    # only Numba's files corrupted: rebuilt as well (with the reason logged), then hits again
    for f in _entries(d, (".nbi", ".nbc")):
        f.write_bytes(b"garbage")
    fourth = _child(d, log=True)
    assert fourth["disk_misses"] == 1 and "does not match its manifest hash" in fourth["log"]


def test_planted_bytecode_never_runs(tmp_path, populated):
    # a .pyc (unchecked-hash: Python's import would not even look at the source) compiled from
    # a doctored module, planted where an import of the cached module would find it
    import py_compile

    d = _copy(populated["a"], tmp_path / "cache")
    (src,) = _entries(d, (".py",))
    bad = tmp_path / src.name
    text = src.read_text().replace("= np.float32(k0_acc0)", "= np.float32(k0_acc0 * 2.0)")
    assert text != src.read_text()
    bad.write_text(text)
    tag = sys.implementation.cache_tag
    for folder in (d, _own(d)):
        (folder / "__pycache__").mkdir(exist_ok=True)
        py_compile.compile(str(bad), cfile=str(folder / "__pycache__" / f"{src.stem}.{tag}.pyc"),
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH, doraise=True)
    assert _child(d)["disk_hits"] == 1  # and the right value (_child checks it)


def test_machine_code_of_another_entry_is_not_loaded(tmp_path, populated):
    # Numba's data file of program B (x 5) copied over program A's (x 3): both have the same
    # function names and lines, so Numba alone would load B's code for A
    a_dir, b_dir = _copy(populated["a"], tmp_path / "a"), populated["b"]
    (a_nbc,), (b_nbc,) = _entries(a_dir), _entries(b_dir)
    assert a_nbc.name.split(".", 1)[1] == b_nbc.name.split(".", 1)[1]
    a_nbc.write_bytes(b_nbc.read_bytes())
    out = _child(a_dir, 3.0, log=True)  # the right value (checked), rebuilt with the reason
    assert out["disk_misses"] == 1 and "tampered" in out["log"]


def test_an_existing_folder_keeps_its_mode_and_users_files(tmp_path, populated):
    d = tmp_path / "mine"
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    mine = {"tg_notes.txt": b"my notes", "tg_mine.py": b"print('mine')\n", ".tmp-draft": b"draft"}
    for n, b in mine.items():
        (d / n).write_bytes(b)
    for f in _own(populated["a"]).iterdir():  # an entry of the old layout, where it lived
        if f.name.startswith("tg_") and f.suffix == ".py":
            shutil.copy(f, d / f.name)
            mine[f.name] = f.read_bytes()
    _child(d, 5.0, TRACEGRAD_CACHE_MAX="0")  # writes an entry, then prunes at the tightest cap
    assert stat.S_IMODE(d.stat().st_mode) == 0o755
    for n, b in mine.items():
        assert (d / n).read_bytes() == b
    env = dict(os.environ, TRACEGRAD_CACHE_DIR=str(d))
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-m", "tracegrad.cache", "clear"], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for n, b in mine.items():
        assert (d / n).read_bytes() == b
    assert not _entries(d, (".py", ".nbi", ".nbc", ".manifest"))
    assert stat.S_IMODE(d.stat().st_mode) == 0o755


def test_a_folder_not_marked_as_the_caches_is_not_touched(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    (d / OWN_FOLDER).mkdir(parents=True)
    (d / OWN_FOLDER / "tg_user.py").write_text("# a user's file in a folder of that name\n")
    out = _child(d, log=True)
    assert "is not marked" in out["log"]
    assert [p.name for p in (d / OWN_FOLDER).iterdir()] == ["tg_user.py"]
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(d))
    assert tracegrad.cache.clear(memory=False) == 0
    assert (d / OWN_FOLDER / "tg_user.py").is_file()


def test_a_read_only_populated_folder_is_read_and_not_written(tmp_path, populated):
    d = _copy(populated["a"], tmp_path / "cache")
    before = _listing(d)
    out = _child(d, TRACEGRAD_CACHE_READONLY="1")
    assert out["disk_hits"] == 1
    new = _child(d, 5.0, log=True, TRACEGRAD_CACHE_READONLY="1")  # a miss: built, not stored
    assert new["disk_misses"] == 1 and new["log"].count("read-only") == 1
    assert _listing(d) == before
    if os.geteuid() != 0:  # permissions bind (root ignores them)
        for p in [_own(d), d]:
            os.chmod(p, 0o500)
        try:
            assert _child(d)["disk_hits"] == 1
            assert _child(d, 5.0)["disk_misses"] == 1
        finally:
            for p in [d, _own(d)]:
                os.chmod(p, 0o700)
        assert _listing(d) == before


def test_cache_api_reports_and_clears():
    t = make(lambda b, x: b.add(b.exp(x), 1.0), ((7,), numpy.dtype("float32")))
    compile_trace(t)([numpy.ones(7, numpy.float32)])
    info = tracegrad.cache.info()
    assert info["dir"] == str(cache_dir()) and info["modules"] >= 1 and info["bytes"] > 0
    assert tracegrad.cache.size() == info["bytes"]
    removed = tracegrad.cache.clear()
    assert removed >= 1 and tracegrad.cache.info()["modules"] == 0
    before = STATS["disk_misses"]
    compile_trace(make(lambda b, x: b.add(b.exp(x), 2.0), ((7,), numpy.dtype("float32"))))
    assert STATS["disk_misses"] == before + 1
