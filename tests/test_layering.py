"""Imports flow downward (ARCHITECTURE.md): tracer -> runtime -> codegen -> ir. ir never
imports tracer/runtime/codegen/numba; codegen never imports tracer or runtime; runtime
never imports tracer or jit; no module imports itself back through its own package (no
import circles inside a package, lazy imports in functions included); `import tracegrad`
does not import numba."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

import tracegrad

PKG = os.path.dirname(os.path.abspath(tracegrad.__file__))


def _from_target(node: ast.ImportFrom, package: str) -> str:
    """The absolute module a `from ... import` names, relative levels resolved."""
    if not node.level:
        return node.module or ""
    base = package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


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
            target = _from_target(node, package)
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
        ("codegen", ("tracegrad.tracer", "tracegrad.runtime", "tracegrad.np", "tracegrad.autograd",
                     "tracegrad.ndarray", "tracegrad.npx", "tracegrad.jit")),
        ("runtime", ("tracegrad.tracer", "tracegrad.np", "tracegrad.autograd", "tracegrad.ndarray",
                     "tracegrad.npx", "tracegrad.jit")),
        ("tracer", ("tracegrad.np", "tracegrad.autograd", "tracegrad.ndarray", "tracegrad.npx",
                    "tracegrad.jit", "tracegrad.gluon", "tracegrad.codegen")),
        # gluon-core (issue 10): Gluon uses only the public surface (np/npx/autograd/jit)
        ("gluon", ("tracegrad.tracer", "tracegrad.codegen", "tracegrad.runtime", "tracegrad.ir", "numba")),
    ],
)
def test_imports_flow_downward(layer: str, banned: tuple[str, ...]) -> None:
    if not os.path.isdir(os.path.join(PKG, layer)):
        pytest.skip(f"no {layer} package yet")
    assert not _violations(layer, banned)


def _modules() -> dict[str, str]:
    return {_module_name(p): p for p in _files("")}


def _runtime_imports(path: str, modules: dict[str, str], mod: str = "") -> set[str]:
    """The package modules a file imports when it runs, anywhere in it (function-local
    imports too; not those under `if TYPE_CHECKING:`, which never run). `from pkg import
    mod` is an import of `pkg.mod`, not of the package's __init__."""
    with open(path) as fh:
        tree = ast.parse(fh.read(), path)
    mod = mod or _module_name(path)
    package = mod if path.endswith("__init__.py") else mod.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            target = _from_target(node, package)
            subs = {f"{target}.{a.name}" for a in node.names} & modules.keys()
            found.update(subs)
            if len(subs) < len(node.names) and target in modules:
                found.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(mod)
    return found


def _package_of(name: str, modules: dict[str, str]) -> str:
    return name if modules[name].endswith("__init__.py") else name.rpartition(".")[0]


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def _package_graph(modules: dict[str, str]) -> dict[str, set[str]]:
    """Import edges between modules of the same package (a package's __init__ included)."""
    graph = {}
    for name, path in modules.items():
        pkg = _package_of(name, modules)
        graph[name] = {t for t in _runtime_imports(path, modules) if _package_of(t, modules) == pkg or t == pkg}
    return graph


def test_no_import_circles_inside_a_package() -> None:
    circles = _circles(_package_graph(_modules()))
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def test_the_circle_finder_sees_lazy_imports_and_skips_type_checking(tmp_path) -> None:
    (tmp_path / "a.py").write_text("def f():\n    from . import b\n")
    (tmp_path / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import c\nfrom . import a\n")
    (tmp_path / "c.py").write_text("from . import b\n")
    mods = {"tracegrad.a": str(tmp_path / "a.py"), "tracegrad.b": str(tmp_path / "b.py"),
            "tracegrad.c": str(tmp_path / "c.py"), "tracegrad": os.path.join(PKG, "__init__.py")}
    graph = {m: _runtime_imports(p, mods, m) for m, p in mods.items() if m != "tracegrad"}
    graph["tracegrad"] = set()
    assert _circles(graph) == [["tracegrad.a", "tracegrad.b"]]


def test_the_walker_sees_relative_and_lazy_imports() -> None:
    names = _imports(os.path.join(PKG, "jit", "capture.py"))
    assert "tracegrad.ir.core" in names and "tracegrad.np.indexing" in names


def test_import_tracegrad_does_not_import_numba() -> None:
    code = "import sys, tracegrad; from tracegrad import np, npx, autograd; print('numba' in sys.modules)"
    env = dict(os.environ, PYTHONPATH=os.path.dirname(PKG) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
