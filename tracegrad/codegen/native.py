"""Warm start without Numba: a cache entry's kernels as one native shared library.

A generated module's kernels are Numba functions with explicit signatures (1-D contiguous
arrays and scalars). Once they are compiled, `build` wraps each in a C-ABI `cfunc` (arrays as
data pointer and length) whose optimized LLVM module becomes a position-independent object
(llvmlite), and writes a small C extension module over them: one METH_FASTCALL function per
kernel that checks each array (ndarray, rank 1, C-contiguous, aligned, native byte order,
dtype), releases the GIL and calls the entry, plus the Numba runtime functions the entries use
(allocate / free a `MemInfo`, whose layout is numba/core/runtime/nrt.cpp's). The system C
compiler links it all into one shared library. `load` imports that library as an extension
module (no Numba, no llvmlite): its attributes are the kernels, called as before.

The library is untrusted input like the rest of the cache: `tracegrad.codegen.cache` checks
its SHA-256 and its manifest (source, tracegrad/numba/llvmlite/numpy/Python versions, the
CPU) before it is copied to the private staging folder and opened; see there.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Optional

from ..log import channel

LOG = channel("cache")

ABI = 1  # the wrapper/shim protocol below; part of the manifest: bump it when that changes
_FORMAT = 1  # of the manifest

# The names a wrapper library may leave for the process to resolve: the shim's, libm/libc,
# the Python C API (error paths). Anything else: no native library for that entry.
_SHIM_NAMES = {"NRT_MemInfo_alloc_aligned", "NRT_MemInfo_call_dtor", "NRT_Free", "numba_gil_ensure",
               "numba_gil_release", "numba_do_raise", "numba_unpickle",
               "numba_runtime_build_excinfo_struct"}
_LIBC = {"malloc", "free", "calloc", "realloc", "memset", "memcpy", "memmove", "memcmp", "abort"}
_LIBM = {f + s for f in ("sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh",
                         "asinh", "acosh", "atanh", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p",
                         "pow", "sqrt", "cbrt", "fmod", "floor", "ceil", "trunc", "round", "rint",
                         "nearbyint", "fabs", "hypot", "erf", "erfc", "lgamma", "tgamma", "copysign",
                         "fmin", "fmax", "ldexp", "frexp", "modf", "remainder")
         for s in ("", "f")} | {"__powidf2", "__powisf2", "sincos", "sincosf"}

_SHIM_C = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#define HID __attribute__((visibility("hidden")))
typedef void (*dtor_fn)(void *, size_t, void *);
typedef struct { size_t refct; dtor_fn dtor; void *dtor_info; void *data; size_t size; void *ext; } MemInfo;
HID void *NRT_MemInfo_alloc_aligned(size_t size, unsigned align) {
    if (align < 16) align = 16;
    char *base = malloc(sizeof(MemInfo) + size + align);
    if (!base) return NULL;
    MemInfo *mi = (MemInfo *)base;
    uintptr_t p = (uintptr_t)(base + sizeof(MemInfo));
    p = (p + align - 1) / align * align;
    mi->refct = 1; mi->dtor = NULL; mi->dtor_info = NULL; mi->data = (void *)p; mi->size = size; mi->ext = NULL;
    return mi;
}
HID void NRT_MemInfo_call_dtor(MemInfo *mi) { free(mi); }
HID void NRT_Free(void *p) { free(p); }
HID void numba_gil_ensure(PyGILState_STATE *s) { *s = PyGILState_Ensure(); }
HID void numba_gil_release(PyGILState_STATE *s) { PyGILState_Release(*s); }
HID void *numba_unpickle(const char *d, int n, const char *h) { return NULL; }
HID void *numba_runtime_build_excinfo_struct(void *a, void *b) { return NULL; }
HID int numba_do_raise(void *e) { return 0; }

/* numpy's PyArrayObject and PyArray_Descr heads (stable since numpy 1.7, same in 2.x) */
typedef struct { PyObject_HEAD char *data; int nd; Py_ssize_t *dims; Py_ssize_t *strides;
                 PyObject *base; PyObject *descr; int flags; } TgArr;
typedef struct { PyObject_HEAD PyTypeObject *typeobj; char kind, type, byteorder, former_flags;
                 int type_num; } TgDescr;
static PyTypeObject *nd_type;
static int tg_arr(PyObject *o, int n1, int n2, char **p, int64_t *n) {
    if (Py_TYPE(o) != nd_type && !PyType_IsSubtype(Py_TYPE(o), nd_type)) return 0;
    TgArr *a = (TgArr *)o;
    TgDescr *d = (TgDescr *)a->descr;
    if (a->nd != 1 || (a->flags & 0x101) != 0x101 || d->byteorder == '>') return 0;
    if (d->type_num != n1 && d->type_num != n2) return 0;
    *p = a->data; *n = (int64_t)a->dims[0];
    return 1;
}
static PyObject *tg_bad(const char *name) {
    if (!PyErr_Occurred())
        PyErr_Format(PyExc_TypeError, "%s: arguments do not match its signature", name);
    return NULL;
}
static PyObject *tg_failed(const char *name) {
    PyErr_Format(PyExc_RuntimeError, "%s: the kernel raised (TRACEGRAD_NATIVE=0 shows Numba's message)", name);
    return NULL;
}
"""

# per kernel: its C-ABI entry (the cfunc, `tg_<name>`) and the Python function over it
_C_FUNC = """
HID int64_t tg_{name}({cargs});
static PyObject *py_{name}(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {{
    if (nargs != {nargs}) return tg_bad("{name}");
{unpack}
    int64_t r;
    Py_BEGIN_ALLOW_THREADS
    r = tg_{name}({call});
    Py_END_ALLOW_THREADS
    if (r == 0) return tg_failed("{name}");
    {ret}
}}
"""
_C_INIT = """
static PyMethodDef tg_methods[] = {{
{methods}
    {{NULL, NULL, 0, NULL}}
}};
static struct PyModuleDef tg_def = {{PyModuleDef_HEAD_INIT, "{mod}", NULL, -1, tg_methods}};
PyMODINIT_FUNC PyInit_{mod}(void) {{
    PyObject *np = PyImport_ImportModule("numpy");
    if (!np) return NULL;
    nd_type = (PyTypeObject *)PyObject_GetAttrString(np, "ndarray");
    Py_DECREF(np);
    if (!nd_type) return NULL;
    return PyModule_Create(&tg_def);
}}
"""
_CTYPE = {"f8": "double", "f4": "float", "i8": "int64_t", "i4": "int32_t", "i2": "int16_t", "i1": "int8_t",
          "u8": "uint64_t", "u4": "uint32_t", "u2": "uint16_t", "u1": "uint8_t", "b1": "uint8_t"}


def platform_supported() -> Optional[str]:
    """None when this platform can use native libraries, else why not."""
    if sys.byteorder != "little" or sys.maxsize != 2**63 - 1:
        return "not a 64-bit little-endian platform"
    if not sys.platform.startswith("linux"):
        return "native libraries are built on Linux only"
    return None


def supported() -> Optional[str]:
    """None when native libraries are used (this platform, not turned off by
    TRACEGRAD_NATIVE=0), else why not."""
    if os.environ.get("TRACEGRAD_NATIVE", "1") in ("0", "off", "no"):
        return "TRACEGRAD_NATIVE=0"
    return platform_supported()


_CPU_ID: Optional[str] = None


def cpu_id() -> str:
    """The CPU as the operating system reports it (name, family/model/stepping, flags), hashed:
    read once per process, without importing llvmlite."""
    global _CPU_ID
    if _CPU_ID is None:
        _CPU_ID = _read_cpu_id()
    return _CPU_ID


def _read_cpu_id() -> str:
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            text = f.read(1 << 16)
    except OSError:
        text = platform.processor()
    first = text.split("\n\n", 1)[0]
    keep = [ln for ln in first.splitlines()
            if ln.split(":", 1)[0].strip() in ("vendor_id", "cpu family", "model", "model name", "stepping",
                                               "flags", "Features", "CPU implementer", "CPU part")]
    return hashlib.sha256("\n".join([platform.machine()] + keep).encode()).hexdigest()[:32]


def cpu_llvm() -> dict[str, str]:
    """The host CPU's name and features as llvmlite reports them (recorded at build)."""
    import llvmlite.binding as ll

    return {"name": ll.get_host_cpu_name(), "features": ll.get_host_cpu_features().flatten()}


def _argspec(sig_args: Any) -> Optional[list[str]]:
    """The kernel's argument kinds: 'a:<dtype>' for a 1-D C array, 's:<dtype>' for a scalar."""
    from numba.core import types
    from numba.np.numpy_support import as_dtype

    out = []
    for t in sig_args:
        if isinstance(t, types.Array) and t.ndim == 1 and t.layout == "C" and t.mutable and t.aligned:
            dt = as_dtype(t.dtype).str
        elif isinstance(t, (types.Integer, types.Float, types.Boolean)):
            dt = as_dtype(t).str
        else:
            return None
        if dt[1:] not in _CTYPE:
            return None
        out.append(("a:" if isinstance(t, types.Array) else "s:") + dt)
    return out


def _cfunc(kernel: Any, spec: list[str], void: bool) -> Any:
    """The C-ABI entry over `kernel`: arrays as (data pointer, length), scalars as themselves;
    returns the kernel's int64 + 2 (void: 1), 0 when it raised."""
    import numpy
    from numba import carray, cfunc, types
    from numba.np.numpy_support import from_dtype

    params, call, sig = [], [], []
    g: dict[str, Any] = {"_cfunc": cfunc, "_carray": carray, "_types": types, "kernel": kernel}
    for j, k in enumerate(spec):
        kind, dt = k.split(":")
        nb = from_dtype(numpy.dtype(dt))
        if kind == "a":
            g[f"_T{j}"] = types.CPointer(nb)
            params += [f"p{j}", f"n{j}"]
            sig += [f"_T{j}", "_types.int64"]
            call.append(f"_carray(p{j}, (n{j},))")
        else:
            g[f"_T{j}"] = nb
            params.append(f"s{j}")
            sig.append(f"_T{j}")
            call.append(f"s{j}")
    ret = "1" if void else "r + 2"
    src = (f"@_cfunc(_types.int64({', '.join(sig)}))\ndef w({', '.join(params)}):\n"
           f"    r = kernel({', '.join(call)})\n    return {ret}\n")
    exec(compile(src, "<tracegrad native wrapper>", "exec"), g)
    return g["w"]


def _c_function(name: str, spec: list[str], void: bool) -> str:
    import numpy

    cargs, unpack, call = [], [], []
    for j, k in enumerate(spec):
        kind, dt = k.split(":")
        ct = _CTYPE[dt[1:]]
        if kind == "a":
            nums = sorted({numpy.dtype(c).num for c in "?bBhHiIlLqQefd" if numpy.dtype(c).str == dt})
            n1, n2 = nums[0], nums[-1]
            cargs += [f"{ct} *", "int64_t"]
            unpack += [f"    char *p{j}; int64_t n{j};",
                       f"    if (!tg_arr(args[{j}], {n1}, {n2}, &p{j}, &n{j})) return tg_bad(\"{name}\");"]
            call += [f"({ct} *)p{j}", f"n{j}"]
        else:
            cargs.append(ct)
            conv = "PyFloat_AsDouble" if dt[1] == "f" else "PyLong_AsLongLong"
            unpack += [f"    {ct} s{j} = ({ct}){conv}(args[{j}]);",
                       f"    if (PyErr_Occurred()) return tg_bad(\"{name}\");"]
            call.append(f"s{j}")
    ret = "Py_RETURN_NONE;" if void else "return PyLong_FromLongLong(r - 2);"
    return _C_FUNC.format(name=name, cargs=", ".join(cargs), nargs=len(spec), unpack="\n".join(unpack),
                          call=", ".join(call), ret=ret)


def build(mod: ModuleType, libname: str) -> tuple[Optional[bytes], dict[str, Any], Optional[str]]:
    """(the extension module `libname` as bytes, its functions {name: {'args', 'void'}}, why not
    built or None) for a loaded Numba module; Numba is imported (its kernels are compiled)."""
    why = supported()
    if why:
        return None, {}, why
    from numba.core.registry import CPUDispatcher

    # kernels: the functions compiled for explicit signatures (Numba then compiles no more);
    # the lazily compiled ones must be helpers (`_name`), inlined into the kernels
    kernels = {}
    for n, f in vars(mod).items():
        if isinstance(f, CPUDispatcher):
            if not getattr(f, "_can_compile", True):
                kernels[n] = f
            elif not n.startswith("_"):
                return None, {}, f"{n} has no explicit signature"
    funcs: dict[str, Any] = {}
    for n, disp in kernels.items():
        if len(disp.overloads) != 1:
            return None, {}, f"{n} has {len(disp.overloads)} compiled signatures"
        cres = next(iter(disp.overloads.values()))
        spec = _argspec(cres.signature.args)
        rt = str(cres.signature.return_type)
        if spec is None or rt not in ("int64", "none"):
            return None, {}, f"{n}: signature {cres.signature} has no native wrapper"
        funcs[n] = {"args": spec, "void": rt == "none"}
    if not funcs:
        return None, {}, "no kernels"
    import llvmlite.binding as ll

    objs, cfuncs = [], []
    for n, f in funcs.items():
        cf = _cfunc(kernels[n], f["args"], f["void"])
        llmod = ll.parse_assembly(cf._library.get_llvm_str())
        for fn in llmod.functions:
            if fn.name == cf.native_name:
                fn.name = "tg_" + n
                fn.visibility = "hidden"
            elif not fn.is_declaration:
                fn.linkage = "internal"
            elif not (fn.name in _SHIM_NAMES or fn.name in _LIBC or fn.name in _LIBM
                      or fn.name.startswith(("llvm.", "Py", "_Py"))):
                return None, {}, f"{n} needs {fn.name}, which the native library does not provide"
        for gv in llmod.global_variables:
            if not gv.is_declaration:
                gv.linkage = "internal"
        llmod.verify()
        objs.append(_target_machine(ll, llmod.triple).emit_object(llmod))
        cfuncs.append(_c_function(n, f["args"], f["void"]))
    methods = "\n".join(f'    {{"{n}", (PyCFunction)(void (*)(void))py_{n}, METH_FASTCALL, NULL}},' for n in funcs)
    c_src = _SHIM_C + "".join(cfuncs) + _C_INIT.format(methods=methods, mod=libname)
    return _link(objs, c_src), funcs, None


def _target_machine(ll: Any, triple: str) -> Any:
    cpu = cpu_llvm()
    return ll.Target.from_triple(triple).create_target_machine(
        cpu=cpu["name"], features=cpu["features"], opt=3, reloc="pic", codemodel="default")


def _link(objs: list[bytes], c_src: str) -> bytes:
    import subprocess
    import sysconfig
    import tempfile

    cc = os.environ.get("CC", "cc")
    inc = sysconfig.get_paths()["include"]
    with tempfile.TemporaryDirectory(prefix="tracegrad-native-") as tmp:
        t = Path(tmp)
        names = []
        for i, o in enumerate(objs):
            (t / f"k{i}.o").write_bytes(o)
            names.append(f"k{i}.o")
        (t / "shim.c").write_text(c_src)
        cmd = [cc, "-shared", "-O2", "-fPIC", "-fvisibility=hidden", "-Wl,-Bsymbolic", f"-I{inc}",
               "-o", "lib.so", "shim.c", *names, "-lm"]
        try:
            r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as exc:
            raise RuntimeError(f"{cc} failed: {exc}") from exc
        if r.returncode != 0:
            raise RuntimeError(f"{cc} failed: {r.stderr.strip()[-400:]}")
        return (t / "lib.so").read_bytes()


def load(path: Path, libname: str, funcs: dict[str, Any]) -> ModuleType:
    """The kernels of the (verified) extension library at `path` as a module; each takes what
    the Numba kernel took and returns its int64 (or None)."""
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.ExtensionFileLoader(libname, str(path))
    spec = importlib.util.spec_from_file_location(libname, str(path), loader=loader)
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    loader.exec_module(mod)
    missing = [n for n in funcs if not callable(getattr(mod, n, None))]
    if missing:
        raise ImportError(f"native library lacks {missing}")
    return mod



# ---- cache entries: `<name>.native.so` and its manifest `<name>.native.json` ---------------
def _names(name: str) -> tuple[str, str, str]:
    """(library file, manifest file, extension module name) of cache entry `name`."""
    return f"{name}.native.so", f"{name}.native.json", f"{name}_native"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def expected(source_sha: str, versions: str) -> dict[str, Any]:
    """What a manifest must say for this process: source, versions, CPU, ABI."""
    return {"format": _FORMAT, "abi": ABI, "source": source_sha, "versions": versions, "cpu": cpu_id()}


_WHAT = {"cpu": "another CPU", "versions": "another tracegrad/numba/llvmlite/numpy/Python version",
         "source": "another source"}


def load_entry(d: Path, name: str, expect: dict[str, Any], stage: Path) -> tuple[Optional[ModuleType], Optional[str]]:
    """(entry `name`'s native module, or None and why its library was refused; None when it
    has none). Verified: the manifest says `expect` (source, versions, CPU, ABI), the library
    matches its SHA-256; the verified bytes are copied to `stage` and imported from there."""
    so_name, man_name, libname = _names(name)
    try:
        raw = (d / man_name).read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"manifest unreadable ({exc})"
    try:
        m = json.loads(raw)
    except ValueError:
        return None, "manifest is not JSON"
    if not isinstance(m, dict):
        return None, "manifest is not an object"
    for k, v in expect.items():
        if m.get(k) != v:
            return None, f"built for {_WHAT.get(k, 'another ' + k)}"
    funcs = m.get("functions")
    if not (isinstance(funcs, dict) and funcs and all(isinstance(n, str) and n.isidentifier() for n in funcs)):
        return None, "manifest lists no functions"
    try:
        data = (d / so_name).read_bytes()
    except OSError:
        return None, f"{so_name} is missing"
    if _sha(data) != m.get("lib"):
        return None, f"{so_name} does not match its manifest hash (tampered or corrupt)"
    path = stage / f"{libname}.so"
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    try:
        mod = load(path, libname, funcs)
    except (ImportError, OSError) as exc:
        return None, f"does not load ({exc})"
    return mod, None


def is_current(d: Path, name: str, expect: dict[str, Any]) -> bool:
    """Whether entry `name` has a library that `load_entry` would load."""
    so_name, man_name, _ = _names(name)
    try:
        m = json.loads((d / man_name).read_bytes())
        return isinstance(m, dict) and all(m.get(k) == v for k, v in expect.items()) \
            and _sha((d / so_name).read_bytes()) == m.get("lib")
    except (OSError, ValueError):
        return False


def store_entry(d: Path, name: str, mod: ModuleType, expect: dict[str, Any],
                write_atomic: Callable[[Path, bytes], None]) -> bool:
    """Build entry `name`'s library from its loaded Numba module and store it (library first,
    then the manifest that vouches for it); True when stored, False (logged) when not built."""
    so_name, man_name, libname = _names(name)
    t0 = time.perf_counter()
    try:
        data, funcs, why = build(mod, libname)
    except Exception as exc:  # a wrapper that does not compile, a missing C compiler: logged
        data, funcs, why = None, {}, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if data is None:
        LOG.info("no native library for %s: %s", name, why)
        return False
    manifest = dict(expect, lib=_sha(data), functions=funcs, llvm_cpu=cpu_llvm())
    write_atomic(d / so_name, data)
    write_atomic(d / man_name, json.dumps(manifest, indent=1).encode())
    LOG.info("native library for %s built in %.2f s", name, time.perf_counter() - t0)
    return True


__all__ = ["ABI", "expected", "is_current", "load_entry", "store_entry", "build", "cpu_id", "cpu_llvm", "load", "platform_supported", "supported"]
