"""Imports flow downward (ARCHITECTURE.md): ir never imports tracer/codegen/numba; codegen
never imports tracer; runtime only the IR; `import tracegrad` does not import numba."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

import tracegrad

PKG = os.path.dirname(os.path.abspath(tracegrad.__file__))


def _module_name(path: str) -> str:
    rel = os.path.relpath(path, os.path.dirname(PKG))[: -len(".py")]
    parts = rel.split(os.sep)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: str) -> set[str]:
    """Every module a file imports, anywhere in it (lazy imports inside functions too)."""
    with open(path) as fh:
        tree = ast.parse(fh.read(), path)
    mod = _module_name(path)
    package = mod if path.endswith("__init__.py") else mod.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
    return found


def _files(sub: str) -> list[str]:
    root = os.path.join(PKG, sub)
    out = []
    for d, _, names in os.walk(root):
        out.extend(os.path.join(d, n) for n in names if n.endswith(".py"))
    return sorted(out)


def _violations(sub: str, banned: tuple[str, ...]) -> list[str]:
    bad = []
    for path in _files(sub):
        for name in _imports(path):
            if any(name == b or name.startswith(b + ".") for b in banned):
                bad.append(f"{os.path.relpath(path, PKG)} imports {name}")
    return bad


@pytest.mark.parametrize(
    "layer, banned",
    [
        ("ir", ("tracegrad.tracer", "tracegrad.codegen", "tracegrad.runtime", "tracegrad.np", "numba",
                "tracegrad.jit", "tracegrad.autograd", "tracegrad.ndarray", "tracegrad.npx")),
        ("codegen", ("tracegrad.tracer", "tracegrad.np", "tracegrad.autograd", "tracegrad.ndarray",
                     "tracegrad.npx", "tracegrad.jit")),
        ("runtime", ("tracegrad.tracer", "tracegrad.np", "tracegrad.autograd", "tracegrad.ndarray",
                     "tracegrad.npx", "tracegrad.jit")),
        ("tracer", ("tracegrad.np", "tracegrad.autograd", "tracegrad.ndarray", "tracegrad.npx")),
        # gluon-core (issue 10): Gluon uses only the public surface (np/npx/autograd/jit)
        ("gluon", ("tracegrad.tracer", "tracegrad.codegen", "tracegrad.runtime", "tracegrad.ir", "numba")),
    ],
)
def test_imports_flow_downward(layer: str, banned: tuple[str, ...]) -> None:
    if not os.path.isdir(os.path.join(PKG, layer)):
        pytest.skip(f"no {layer} package yet")
    assert not _violations(layer, banned)


def test_the_walker_sees_relative_and_lazy_imports() -> None:
    names = _imports(os.path.join(PKG, "tracer", "array.py"))
    assert "tracegrad.ir.core" in names and "tracegrad.tracer.lazy" in names


def test_import_tracegrad_does_not_import_numba() -> None:
    code = "import sys, tracegrad; from tracegrad import np, npx, autograd; print('numba' in sys.modules)"
    env = dict(os.environ, PYTHONPATH=os.path.dirname(PKG) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
