"""`python -m tracegrad`: run the MXNet autograd tutorial, then the quick benchmark."""

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


def main(argv: list[str]) -> int:
    """The tutorial, then the quick benchmark (`--no-bench` skips it; other args go to it)."""
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
