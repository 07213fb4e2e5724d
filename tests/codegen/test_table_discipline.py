"""Code generation reads the op table's rows, never a single op (ir/ops.py's promise): no
module of codegen/ or codegen/cuda/ names an `Op` member, and every row that fuses into a
loop declares what the planners need."""

from __future__ import annotations

import ast
import os

import tracegrad
from tracegrad.ir.ops import TABLE, Kind, Render

PKG = os.path.dirname(os.path.abspath(tracegrad.__file__))


def _codegen_files() -> list[str]:
    out = []
    for sub in ("codegen", os.path.join("codegen", "cuda")):
        d = os.path.join(PKG, sub)
        out += [os.path.join(d, n) for n in sorted(os.listdir(d)) if n.endswith(".py")]
    return out


def _op_members(source: str, path: str) -> list[str]:
    """`Op.<NAME>` attribute reads in a module (any scope)."""
    found = []
    for node in ast.walk(ast.parse(source, path)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Op":
            found.append(f"{os.path.relpath(path, PKG)}:{node.lineno}: Op.{node.attr}")
    return found


def test_codegen_never_names_a_single_op() -> None:
    files = _codegen_files()
    assert any(f.endswith(os.path.join("codegen", "fusion.py")) for f in files)
    assert any(f.endswith(os.path.join("cuda", "plan.py")) for f in files)
    bad = []
    for path in files:
        with open(path) as fh:
            bad += _op_members(fh.read(), path)
    assert not bad, "codegen branches on single ops (declare a property on the row instead):\n" + "\n".join(bad)


def test_the_scan_finds_op_members() -> None:
    src = "from x import Op\nif e.op is Op.MATMUL:\n    pass\nY = {Op.GATHER: 1}\n"
    assert [s.rsplit(": ", 1)[1] for s in _op_members(src, os.path.join(PKG, "m.py"))] == ["Op.MATMUL", "Op.GATHER"]


def test_fusing_rows_declare_their_codegen_properties() -> None:
    for row in TABLE.values():
        if row.kind is Kind.ELEMENTWISE:
            assert isinstance(row.render, Render), row.name
            assert row.render.rule("cpu") is not None and row.render.rule("cuda") is not None, row.name
        if row.combine is not None:
            assert row.combine in ("add", "max", "min", "mul"), row.name
        if row.index_map is not None:
            assert row.kind is Kind.LAYOUT and row.cost == 0, row.name
        assert row.index_form in (None, "gather", "scatter_add"), row.name


def test_index_maps_agree_with_the_numpy_rule() -> None:
    """Reading the operand through a row's index map gives the row's numpy result."""
    import numpy

    from tracegrad.ir.ops import Op

    x = numpy.arange(2 * 3 * 4).reshape(2, 3, 4)
    cases = [
        (Op.TRANSPOSE, dict(perm=(2, 0, 1))),
        (Op.BROADCAST_TO, dict(shape=(5, 2, 3, 4))),
        (Op.SLICE, dict(index=(1, None, (None, None, -2), (1, 4, 2)))),
    ]
    for op, p in cases:
        row = TABLE[op]
        out = numpy.asarray(row.impl(x, **p))
        m = row.index_map(x.shape, out.shape, **p)
        got = numpy.empty_like(out)
        for c in numpy.ndindex(*out.shape):
            got[c] = x[tuple(start + step * (0 if d is None else c[d]) for d, step, start in m)]
        numpy.testing.assert_array_equal(got, out, err_msg=op.value)
