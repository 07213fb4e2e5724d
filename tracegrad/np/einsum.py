"""np.einsum: numpy's subscripts (ellipsis, implicit output, size-1 broadcasting) made
explicit for the EINSUM row."""

from __future__ import annotations

import string
from typing import Any

from ..errors import ShapeError
from ..ir import dtypes
from ..ir.ops import Op
from ..tracer.array import Array
from ..tracer.lazy import apply
from ._core import as_array, at, broadcast, cast

__all__ = ["einsum"]

_LETTERS = set(string.ascii_letters)


def _bad(subscripts: str, xs: list[Array], why: str) -> ShapeError:
    ops = ", ".join(f"{x.dtype}{list(x.shape)}" for x in xs)
    return ShapeError(f"einsum: {why} in subscripts {subscripts!r} (operands {ops})" + at())


def _split(term: str, subscripts: str, xs: list[Array]) -> tuple[str, str]:
    """A term as (letters before '...', letters after), or ('', term) without ellipsis."""
    if "..." in term:
        head, _, tail = term.partition("...")
        if "." in head or "." in tail:
            raise _bad(subscripts, xs, f"more than one ellipsis (or a stray '.') in {term!r}")
    else:
        if "." in term:
            raise _bad(subscripts, xs, f"a stray '.' in {term!r}")
        head, tail = "", term
    bad = sorted(set(head + tail) - _LETTERS)
    if bad:
        raise _bad(subscripts, xs, f"invalid subscript characters {bad}")
    return head, tail


def explicit(subscripts: str, xs: list[Array]) -> tuple[list[str], str]:
    """Per-operand letters and output letters, with ellipses replaced by fresh letters."""
    spec = subscripts.replace(" ", "")
    lhs, arrow, rhs = spec.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(xs):
        raise _bad(subscripts, xs, f"{len(terms)} operand terms for {len(xs)} operands")
    parts = [_split(t, subscripts, xs) for t in terms]
    used = set("".join(h + t for h, t in parts))
    fresh = [c for c in string.ascii_uppercase + string.ascii_lowercase if c not in used]
    n_ell = 0
    for x, (h, t), term in zip(xs, parts, terms):
        named = len(h) + len(t)
        if "..." in term:
            if x.ndim < named:
                raise _bad(subscripts, xs, f"term {term!r} names {named} dims of an operand of shape {x.shape}")
            n_ell = max(n_ell, x.ndim - named)
        elif x.ndim != named:
            raise _bad(subscripts, xs, f"term {term!r} names {named} dims of an operand of shape {x.shape}")
    if n_ell > len(fresh):
        raise _bad(subscripts, xs, "too many dims under the ellipsis")
    ell = "".join(fresh[:n_ell])
    ins = []
    for x, (h, t), term in zip(xs, parts, terms):
        k = x.ndim - len(h) - len(t) if "..." in term else 0
        ins.append(h + ell[n_ell - k :] + t)
    if arrow:
        h, t = _split(rhs, subscripts, xs)
        if n_ell and "..." not in rhs:
            raise _bad(subscripts, xs, "dims under an ellipsis but no '...' in the output (numpy)")
        out = h + (ell if "..." in rhs else "") + t
        letters = "".join(ins)
        missing = sorted(set(out) - set(letters))
        if missing:
            raise _bad(subscripts, xs, f"output letters {missing} appear in no operand")
        if len(set(out)) != len(out):
            raise _bad(subscripts, xs, "an output letter appears twice")
    else:
        counts: dict[str, int] = {}
        for c in "".join(h + t for h, t in parts):
            counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1))
    return ins, out


def einsum(subscripts: str, *operands: Any, optimize: Any = False) -> Array:
    """Einstein summation over the operands (numpy's subscripts; `optimize` is accepted)."""
    xs = [as_array(o) for o in operands]
    if not xs:
        raise ShapeError("einsum: needs at least one operand" + at())
    if not isinstance(subscripts, str):
        raise ShapeError("einsum: the interleaved (operand, sublist) form is not supported; pass a string" + at())
    ins, out = explicit(subscripts, xs)
    dt = dtypes.promote(*[x.dtype for x in xs])
    extent: dict[str, int] = {}
    for term, x in zip(ins, xs):
        for c, n in zip(term, x.shape):
            if n == 1:
                extent.setdefault(c, 1)
            elif extent.get(c, 1) in (1, n):
                extent[c] = n
            else:
                raise _bad(subscripts, xs, f"letter {c!r} has sizes {extent[c]} and {n}")
    atoms = []
    for term, x in zip(ins, xs):
        x = cast(x, dt)
        if len(set(term)) == len(term):
            x = broadcast(x, tuple(extent[c] for c in term))
        elif any(n == 1 and extent[c] != 1 for c, n in zip(term, x.shape)):
            raise _bad(subscripts, xs, f"a repeated letter of {term!r} needs broadcasting")
        atoms.append(x)
    return apply(Op.EINSUM, atoms, {"subscripts": f"{','.join(ins)}->{out}", "sizes": ()})[0]
