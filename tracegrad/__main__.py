"""`python -m tracegrad`: run the MXNet autograd tutorial, then the quick benchmark.

`python -m tracegrad run script.py [args]` (or `run -m module [args]`) runs an MXNet script
unchanged, with tracegrad installed as `mxnet` (tracegrad.install_as_mxnet())."""

from __future__ import annotations

import sys


def tutorial() -> None:
    from tracegrad import autograd, np, npx

    npx.set_np()
    print(">>> x = np.array([[1, 2], [3, 4]]); x")
    x = np.array([[1, 2], [3, 4]])
    print(repr(x))
    x.attach_grad()
    with autograd.record():
        y = 2 * x * x
    y.backward()
    print(">>> x.grad            # after y = 2 * x * x; y.backward()")
    print(repr(x.grad))

    from tracegrad.examples import tutorial_f as f  # the tutorial's f(a)

    a = np.random.uniform(size=2)
    a.attach_grad()
    with autograd.record():
        c = f(a)
    c.backward()
    print(">>> a.grad == c/a")
    print(repr(a.grad == c / a))
    print(">>> a, c, a.grad")
    print(repr(a), repr(c), repr(a.grad))


def _benchmark_main():
    """benchmarks.run.main from the source tree (benchmarks/ is not part of the wheel), or None."""
    import importlib
    import os

    try:
        return importlib.import_module("benchmarks.run").main
    except ImportError:
        pass
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.isfile(os.path.join(root, "benchmarks", "run.py")):
        sys.path.insert(0, root)
        return importlib.import_module("benchmarks.run").main
    return None


def run_script(argv: list[str]) -> int:
    """`run script.py [args]` / `run -m module [args]`: the script sees `import mxnet` as tracegrad."""
    import runpy

    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m tracegrad run script.py [args...]\n       python -m tracegrad run -m module [args...]")
        return 0 if argv else 2
    from tracegrad import install_as_mxnet

    install_as_mxnet()
    if argv[0] == "-m":
        if len(argv) < 2:
            print("python -m tracegrad run -m: a module name is required", file=sys.stderr)
            return 2
        sys.argv = [argv[1]] + argv[2:]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        return 0
    import os

    sys.argv = list(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
    runpy.run_path(argv[0], run_name="__main__")
    return 0


def main(argv: list[str]) -> int:
    """The tutorial, then the quick benchmark (`--no-bench` skips it; other args go to it);
    `run ...` runs a script with tracegrad as mxnet."""
    if argv and argv[0] == "run":
        return run_script(argv[1:])
    args = [a for a in argv if a != "--no-bench"]
    tutorial()
    if "--no-bench" in argv:
        return 0
    bench = _benchmark_main()
    if bench is None:
        print("\n(the benchmark harness lives in the source tree's benchmarks/; not found here)")
        return 0
    print("\n>>> python -m benchmarks.run --quick   # numpy vs tracegrad, small sizes, 2 threads")
    sys.stdout.flush()
    return bench(["--quick", *args])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
