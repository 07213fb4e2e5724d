"""The signature of a compiled step: what must match before a replay may run.

Two parts:

* the *key* (a dict key, computed on every call): per argument, an Array's shape, dtype
  and grad_req; a numpy array's shape and dtype; a float's type only (floats are runtime
  inputs) unless Python used that float during the capture, then its value; ints, bools,
  strings and None by value; containers by structure; any other object by identity.
* the *checks* of one entry (one compiled function, run after the key matched): the code
  object of the function and of the functions it calls, the global names and closure cells
  the code reads (identity, or equality for immutable scalars), and the attributes of
  object arguments (`self.w`). Each check keeps its provenance (what, where) for explain().
"""

from __future__ import annotations

import dis
import inspect
import os
import types
from typing import Any, Callable, Optional

import numpy

from ..tracer.array import Array
from .guards import Check, GuardKind, guard

_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # folders, never name prefixes
_STDLIB = os.path.dirname(os.__file__) + os.sep
_IMMUTABLE = (int, float, bool, str, bytes, complex, type(None))
MISSING = object()


# ---- arguments ----------------------------------------------------------------------
def arg_path_expr(path: tuple) -> str:
    """Python source that fetches `path` from `(args, kwargs)`."""
    root = path[0]
    s = f"args[{root}]" if isinstance(root, int) else f"kwargs[{root!r}]"
    for step in path[1:]:
        s += f"[{step!r}]"
    return s


def walk_args(args: tuple, kwargs: dict) -> list[tuple[tuple, Any]]:
    """(path, leaf) for every leaf of the arguments (tuples, lists and dicts are opened)."""
    out: list[tuple[tuple, Any]] = []

    def walk(path: tuple, x: Any) -> None:
        t = type(x)
        if t is tuple or t is list:
            for i, y in enumerate(x):
                walk(path + (i,), y)
        elif t is dict:
            for k, y in x.items():
                walk(path + (k,), y)
        else:
            out.append((path, x))

    for i, a in enumerate(args):
        walk((i,), a)
    for k, a in kwargs.items():
        walk((k,), a)
    return out


def _leaf_key(x: Any, by_value: bool) -> Any:
    if isinstance(x, Array):
        return (x._shape, x._dtype, x._grad_req, x._dev)
    t = type(x)
    if t is float:
        return x if by_value else float
    if t in _IMMUTABLE:
        return (t, x)
    if t is tuple or t is list:
        return (t, tuple(_leaf_key(y, True) for y in x))
    if t is dict:
        return (t, tuple((k, _leaf_key(y, True)) for k, y in x.items()))
    if t is numpy.ndarray:
        return ("np", x.shape, x.dtype)
    return ("obj", id(x))


def make_key(args: tuple, kwargs: dict, value_args: frozenset) -> tuple:
    """The dict key of a call (see the module docstring)."""
    k = tuple(_leaf_key(a, i in value_args) for i, a in enumerate(args))
    if kwargs:
        k += tuple((n, _leaf_key(a, n in value_args)) for n, a in sorted(kwargs.items()))
    return k + (alias_pattern(args, kwargs),)


def alias_pattern(args: tuple, kwargs: dict) -> Optional[tuple]:
    """Which array arguments are the same object (None when all differ): `f(w, w)` is not `f(a, b)`."""
    seen: dict[int, int] = {}
    pattern = []
    for _, x in walk_args(args, kwargs):
        if isinstance(x, (Array, numpy.ndarray)):
            pattern.append(seen.setdefault(id(x), len(seen)))
    return tuple(pattern) if len(seen) < len(pattern) else None


class KeyParts:
    """A call's key parts taken before the body runs (it may attach_grad an argument)."""

    def __init__(self, args: tuple, kwargs: dict) -> None:
        self.pos = [(_leaf_key(a, False), _leaf_key(a, True)) for a in args]
        self.kw = {n: (_leaf_key(a, False), _leaf_key(a, True)) for n, a in kwargs.items()}
        self.alias = alias_pattern(args, kwargs)

    def key(self, value_args: frozenset) -> tuple:
        k = tuple(p[i in value_args] for i, p in enumerate(self.pos))
        if self.kw:
            k += tuple((n, p[n in value_args]) for n, p in sorted(self.kw.items()))
        return k + (self.alias,)

    def part(self, name: Any) -> Any:
        return self.pos[name][0] if isinstance(name, int) else self.kw[name][0]


def describe_key_change(old: tuple, new: tuple, names: list[str]) -> Optional[tuple[GuardKind, str, Any, Any]]:
    """(kind, item, expected, seen) for the first argument whose key part differs."""
    if len(old) != len(new):
        return (GuardKind.ARG_COUNT, "number of arguments", len(old) - 1, len(new) - 1)
    for i, (a, b) in enumerate(zip(old, new)):
        if a != b:
            if i == len(old) - 1:
                return (GuardKind.ARG_ALIAS, "which array arguments are the same object", a, b)
            if _is_kw_key(a) and _is_kw_key(b):
                if a[0] != b[0]:
                    return (GuardKind.ARG_COUNT, "names of the keyword arguments", a[0], b[0])
                return _leaf_change(f"argument '{a[0]}'", a[1], b[1])
            if _is_kw_key(a) or _is_kw_key(b):
                return (GuardKind.ARG_COUNT, "positional and keyword arguments", _type_name(a), _type_name(b))
            name = names[i] if i < len(names) else f"argument {i}"
            return _leaf_change(f"argument '{name}'", a, b)
    return None


_ARRAY_PARTS = ((GuardKind.ARG_SHAPE, "shape"), (GuardKind.ARG_DTYPE, "dtype"), (GuardKind.ARG_GRAD_REQ, "grad_req"),
                (GuardKind.ARG_DEVICE, "device"))


def _leaf_change(name: str, a: Any, b: Any) -> tuple[GuardKind, str, Any, Any]:
    """The kind of change between two key parts of one argument (containers are opened)."""
    if _is_array_key(a) and _is_array_key(b):
        for (kind, what), x, y in zip(_ARRAY_PARTS, a, b):
            if x != y:
                return (kind, f"{what} of {name}", x, y)
    if _is_np_key(a) and _is_np_key(b):
        kind, what = (GuardKind.ARG_SHAPE, "shape") if a[1] != b[1] else (GuardKind.ARG_DTYPE, "dtype")
        return (kind, f"{what} of {name}", a[1 if what == "shape" else 2], b[1 if what == "shape" else 2])
    if a is float or b is float:
        if type(b) is float or type(a) is float:  # now keyed by value (Python used it)
            return (GuardKind.SCALAR_VALUE, f"{name} (a float Python uses)", _show(a), _show(b))
        return (GuardKind.SCALAR_TYPE, f"type of {name}", "float", _type_name(b if a is float else a))
    if type(a) is float and type(b) is float:
        return (GuardKind.SCALAR_VALUE, f"{name} (a float Python uses)", a, b)
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) == 2 and a[0] is b[0]:
        t = a[0]
        if t in (tuple, list, dict):
            if len(a[1]) != len(b[1]):
                return (GuardKind.ARG_COUNT, f"length of {name}", len(a[1]), len(b[1]))
            for j, (x, y) in enumerate(zip(a[1], b[1])):
                if x != y:
                    if t is dict:
                        if x[0] != y[0]:
                            return (GuardKind.ARG_COUNT, f"keys of {name}", x[0], y[0])
                        return _leaf_change(f"{name}[{x[0]!r}]", x[1], y[1])
                    return _leaf_change(f"{name}[{j}]", x, y)
        if isinstance(t, type):
            return (GuardKind.SCALAR_VALUE, name, a[1], b[1])
        if t == "obj":
            return (GuardKind.ARG_IDENTITY, f"{name} (object identity)", f"object {a[1]:#x}", f"object {b[1]:#x}")
    return (GuardKind.ARG_TYPE, f"type of {name}", _type_name(a), _type_name(b))


def _is_kw_key(k: Any) -> bool:
    """(name, part) of a keyword argument; ("obj", id) is a positional object argument."""
    return isinstance(k, tuple) and len(k) == 2 and type(k[0]) is str and type(k[1]) is not int


def _is_array_key(k: Any) -> bool:
    return isinstance(k, tuple) and len(k) == 4 and isinstance(k[0], tuple)


def _is_np_key(k: Any) -> bool:
    return isinstance(k, tuple) and len(k) == 3 and k[0] == "np"


def _type_name(k: Any) -> str:
    """The argument type a key part stands for."""
    if k is float or type(k) is float:
        return "float"
    if _is_array_key(k):
        return "ndarray"
    if _is_np_key(k):
        return "numpy.ndarray"
    if isinstance(k, tuple) and len(k) == 2:
        return k[0].__name__ if isinstance(k[0], type) else "object"
    return type(k).__name__


def key_distance(old: tuple, new: tuple) -> int:
    """How many key items differ (array shape, dtype and grad_req count one each)."""
    if len(old) != len(new):
        return 1 << 20
    n = 0
    for a, b in zip(old, new):
        if a == b:
            continue
        if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) == 4:
            n += sum(x != y for x, y in zip(a, b))
        else:
            n += 1
    return n


def _show(k: Any) -> Any:
    if k is float:
        return "any float (a runtime input)"
    if isinstance(k, tuple) and len(k) == 2 and isinstance(k[0], type):
        return k[1]
    return k


def arg_names(fn: Callable) -> list[str]:
    try:
        return list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return []


# ---- checks -------------------------------------------------------------------------
def _by_eq(v: Any) -> bool:
    return type(v) in _IMMUTABLE


def _user_object(v: Any) -> bool:
    """An instance of a class defined in user code (not a module, function, class or array)."""
    if isinstance(v, (type, types.ModuleType, types.FunctionType, Array, numpy.ndarray)) or _by_eq(v):
        return False
    mod = type(v).__module__ or ""
    return hasattr(v, "__dict__") and not mod.startswith(("builtins", "tracegrad", "numpy", "functools"))


def _user_module(m: types.ModuleType) -> bool:
    f = getattr(m, "__file__", None) or ""
    return bool(f) and not (f.startswith(_PKG) or f.startswith(_STDLIB) or "site-packages" in f)


def _user_code(fn: Any) -> bool:
    code = getattr(fn, "__code__", None)
    if code is None:
        return False
    f = code.co_filename
    return not (f.startswith(_PKG) or f.startswith(_STDLIB) or "site-packages" in f)


def _global_reads(code: types.CodeType) -> list[tuple[str, int, Optional[str]]]:
    """(name, line, attribute read right after it or None) of every global read in `code`."""
    out: list[tuple[str, int, Optional[str]]] = []
    line = code.co_firstlineno
    prev: Optional[tuple[str, int]] = None
    for ins in dis.get_instructions(code):
        pos = ins.positions
        if pos is not None and pos.lineno:
            line = pos.lineno
        if prev is not None and ins.opname in ("LOAD_ATTR", "LOAD_METHOD"):
            out.append((prev[0], prev[1], ins.argval))
        prev = None
        if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
            out.append((ins.argval, line, None))
            prev = (ins.argval, line)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            out.extend(_global_reads(c))
    return out


class Dependencies:
    """The code, globals and closure cells a function (and the functions it calls) reads."""

    def __init__(self) -> None:
        self.checks: list[Check] = []
        self.containers: list[tuple[str, Any]] = []  # mutable values a step must not mutate
        self.env: dict[str, Any] = {}
        self._seen: set[int] = set()

    def _name(self, prefix: str, obj: Any) -> str:
        n = f"{prefix}{len(self.env)}"
        self.env[n] = obj
        return n

    def add(self, kind: GuardKind, what: str, where: str, src: str, value: Any) -> Check:
        """Append the guard `guard()` makes (see jit/guards.py)."""
        c = guard(kind, what, where, src, value)
        self.checks.append(c)
        return c

    def visit(self, fn: Any, src: str) -> None:
        """Guard `fn`'s code, then its globals and closure cells, recursively for user code."""
        if id(fn) in self._seen or not _user_code(fn):
            return
        self._seen.add(id(fn))
        code = fn.__code__
        here = f"{os.path.basename(code.co_filename)}:{code.co_firstlineno}"
        if src == "F":  # a helper is guarded by identity: redefining it makes a new function object
            self.add(GuardKind.CODE_ID, f"code of {fn.__qualname__}", here, f"{src}.__code__", code)
        g = self._name("G", fn.__globals__)
        done: set = set()
        for name, line, attr in _global_reads(code):
            if (name, attr) in done:
                continue
            done.add((name, attr))
            where = f"{os.path.basename(code.co_filename)}:{line}"
            val = fn.__globals__.get(name, MISSING)
            if val is MISSING:
                continue  # a builtin
            if attr is not None:  # `mod.W` of a user module: W may be rebound between calls
                if isinstance(val, types.ModuleType) and _user_module(val):
                    aval = val.__dict__.get(attr, MISSING)
                    asrc = f"{g}.get({name!r}, MISSING).__dict__.get({attr!r}, MISSING)"
                    self.add(GuardKind.MODULE_ATTR, f"module attribute {name}.{attr}", where, asrc, aval)
                    self.visit_value(aval, asrc, f"{name}.{attr}", where)
                continue
            vsrc = f"{g}.get({name!r}, MISSING)"
            self.add(GuardKind.GLOBAL_VALUE, f"global '{name}'", where, vsrc, val)
            self.visit_value(val, vsrc, name, where)
        cells = fn.__closure__ or ()
        for name, cell in zip(code.co_freevars, cells):
            try:
                val = cell.cell_contents
            except ValueError:
                continue
            c = self._name("C", cell)
            self.add(GuardKind.CLOSURE_CELL, f"closure variable '{name}'", here, f"{c}.cell_contents", val)
            self.visit_value(val, f"{c}.cell_contents", name, here)

    def visit_value(self, val: Any, src: str, what: str, where: str, depth: int = 0) -> None:
        """Guard what a global, closure value or argument holds (functions, objects, lists);
        `where` is the line that reaches it (the global read, the closure, the def)."""
        if isinstance(val, (list, dict, set, bytearray)):
            self.containers.append((what, val))
        if isinstance(val, types.FunctionType):
            self.visit(val, src)
        elif isinstance(val, (list, tuple)) and 0 < len(val) <= 64 and depth < 3:
            if type(val) is list and all(type(v) in _IMMUTABLE for v in val):  # np.array(LIST) would bake it
                self.add(GuardKind.CONTAINER_VALUES, f"the values of {what}", where, f"tuple({src})", tuple(val))
                return
            if not any(isinstance(v, (Array, numpy.ndarray, list, tuple)) or _user_object(v) for v in val):
                return
            self.add(GuardKind.CONTAINER_LEN, f"length of {what}", where, f"len({src})", len(val))
            for i, v in enumerate(val):
                vsrc = f"{src}[{i}]"
                self.add(GuardKind.CONTAINER_ITEM, f"{what}[{i}]", where, vsrc, v)
                self.visit_value(v, vsrc, f"{what}[{i}]", where, depth + 1)
        elif isinstance(val, dict) and 0 < len(val) <= 64 and depth < 3 \
                and all(type(k) in (str, int) for k in val):
            if all(type(v) in _IMMUTABLE for v in val.values()):  # np.array(list(D.values())) would bake it
                self.add(GuardKind.CONTAINER_VALUES, f"the values of {what}", where, f"tuple({src}.items())",
                         tuple(val.items()))
                return
            if not any(isinstance(v, (Array, numpy.ndarray, list, tuple, dict)) or _user_object(v)
                       for v in val.values()):
                return
            self.add(GuardKind.CONTAINER_LEN, f"length of {what}", where, f"len({src})", len(val))
            for k, v in val.items():
                vsrc = f"{src}.get({k!r}, MISSING)"
                self.add(GuardKind.CONTAINER_ITEM, f"{what}[{k!r}]", where, vsrc, v)
                self.visit_value(v, vsrc, f"{what}[{k!r}]", where, depth + 1)
        elif _user_object(val) and depth < 3 and id(val) not in self._seen:
            self._seen.add(id(val))
            self.object_attrs(src, val, what, where, depth)

    def object_attrs(self, path_src: str, obj: Any, what: str, where: str, depth: int = 0) -> None:
        """Guard an object's attributes (`self.w` rebinding retraces) and its class's methods."""
        d = getattr(obj, "__dict__", None)
        if not isinstance(d, dict):
            return
        for name, val in d.items():
            if isinstance(val, (Array, numpy.ndarray, types.FunctionType, list, tuple)) or _by_eq(val) \
                    or _user_object(val):
                vsrc = f"{path_src}.__dict__.get({name!r}, MISSING)"
                self.add(GuardKind.OBJECT_ATTR, f"attribute {what}.{name}", where, vsrc, val)
                self.visit_value(val, vsrc, f"{what}.{name}", where, depth + 1)
        cls = type(obj)
        for name, f in vars(cls).items():
            if isinstance(f, types.FunctionType) and _user_code(f):
                fsrc = f"type({path_src}).__dict__.get({name!r}, MISSING)"
                c = f.__code__
                self.add(GuardKind.METHOD, f"method {cls.__qualname__}.{name}",
                         f"{os.path.basename(c.co_filename)}:{c.co_firstlineno}", fsrc, f)
                self.visit(f, fsrc)

    def compile(self) -> Callable[[tuple, dict], int]:
        """One function running every check in order: -1 when all pass, else the index."""
        lines = ["def check(args, kwargs):"]
        env = dict(self.env)
        env["MISSING"] = MISSING
        for i, c in enumerate(self.checks):
            v = f"V{i}"
            env[v] = c.value
            if c.by_eq:
                lines.append(f"    x = {c.src}")
                lines.append(f"    if type(x) is not type({v}) or x != {v}: return {i}")
            else:
                lines.append(f"    if {c.src} is not {v}: return {i}")
        lines.append("    return -1")
        src = "\n".join(lines)
        exec(compile(src, "<tracegrad.jit checks>", "exec"), env)
        fn = env["check"]
        fn.source = src
        fn.env = env
        return fn

    def compile_fast(self, args: tuple, kwargs: dict, value_args: frozenset,
                     parts: "KeyParts") -> Callable[[tuple, dict], bool]:
        """One function: True when a call has this entry's key AND passes every check.

        It tests the arguments directly (type, shape, dtype identity, grad_req) instead of
        building the key; any doubt (e.g. an equal dtype that is another object) answers
        False and the caller takes the slow path, which is exact.
        """
        from ..tracer import array as _array

        env = dict(self.env, MISSING=MISSING, ARR=_array.ARRAY_CLS, make_key=make_key, VA=value_args,
                   KEY=parts.key(value_args))
        head = [f"if len(args) != {len(args)}: return False",
                f"if kwargs.keys() != {set(kwargs)!r}: return False" if kwargs else "if kwargs: return False"]
        if args:
            head.append(f"{''.join(f'a{i}, ' for i in range(len(args)))}= args")
        conds = []
        slow = False

        def const(obj: Any) -> str:
            n = f"A{len(env)}"
            env[n] = obj
            return n

        items = [(i, f"a{i}", a) for i, a in enumerate(args)] + [(k, f"kwargs[{k!r}]", a) for k, a in kwargs.items()]
        for i, src, a in items:
            t = type(a)
            if t is _array.ARRAY_CLS:
                shape, dtype, req, dev = parts.part(i)  # as before the body ran
                conds.append(f"type({src}) is ARR and {src}._shape == {shape!r} and {src}._dtype is "
                             f"{const(dtype)} and {src}._grad_req == {req!r} and {src}._dev is "
                             f"{const(dev)} and {src}._data is not None")
            elif t is float:
                conds.append(f"type({src}) is float" + (f" and {src} == {a!r}" if i in value_args else ""))
            elif t in (int, bool, str, type(None)):
                conds.append(f"type({src}) is {const(t)} and {src} == {const(a)}")
            elif t in (tuple, list, dict) or t is numpy.ndarray or isinstance(a, Array):
                slow = True
            else:
                conds.append(f"{src} is {const(a)}")
        arrays = [src for _, src, a in items if isinstance(a, (Array, numpy.ndarray))]
        if parts.alias is not None:
            slow = True
        elif len(arrays) > 1:  # distinct objects, as at capture
            conds.append(f"len({{{', '.join(f'id({a})' for a in arrays)}}}) == {len(arrays)}")
        if slow:
            conds = ["make_key(args, kwargs, VA) == KEY"]
        for i, c in enumerate(self.checks):
            v = f"V{i}"
            env[v] = c.value
            if c.by_eq:
                conds.append(f"type(x{i} := {c.src}) is type({v}) and x{i} == {v}")
            else:
                conds.append(f"{c.src} is {v}")
        src = ("def fast(args, kwargs):\n" + "".join(f"    {h}\n" for h in head)
               + "    return (" + "\n            and ".join(conds or ["True"]) + ")")
        exec(compile(src, "<tracegrad.jit fast check>", "exec"), env)
        fn = env["fast"]
        fn.source = src
        return fn

    def seen(self, i: int, args: tuple, kwargs: dict) -> Any:
        """The value check `i` sees now (for explain)."""
        env = dict(self.env, MISSING=MISSING, args=args, kwargs=kwargs)
        try:
            return eval(self.checks[i].src, env)
        except Exception as exc:  # noqa: BLE001  (explain must not raise)
            return f"<{type(exc).__name__}: {exc}>"


def describe(value: Any) -> str:
    """A short text for a guarded value (functions by name and code location)."""
    if value is MISSING:
        return "<unbound>"
    if isinstance(value, types.FunctionType):
        c = value.__code__
        return f"function {value.__qualname__} ({os.path.basename(c.co_filename)}:{c.co_firstlineno}, id {id(value):#x})"
    if isinstance(value, types.CodeType):
        return f"code {value.co_name} ({os.path.basename(value.co_filename)}:{value.co_firstlineno})"
    if isinstance(value, Array):
        return f"array {value.shape} {value._dtype} at {id(value):#x}"
    if isinstance(value, numpy.ndarray):
        return f"numpy array {value.shape} {value.dtype} at {id(value):#x}"
    r = repr(value)
    return r if len(r) < 80 else r[:77] + "..."


def shallow(obj: Any) -> Any:
    """A snapshot of a mutable container's contents (by identity) to detect mutation."""
    if isinstance(obj, dict):
        return [(k, id(v)) for k, v in obj.items()]
    if isinstance(obj, set):
        return sorted(id(v) for v in obj)
    if isinstance(obj, bytearray):
        return bytes(obj)
    return [id(v) for v in obj]
