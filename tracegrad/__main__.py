"""`python -m tracegrad`: run the MXNet autograd tutorial and print what it shows."""

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

    def f(a):
        b = a * 2
        while np.abs(b).sum() < 1000:
            b = b * 2
        if b.sum() >= 0:
            c = b[0]
        else:
            c = b[1]
        return c

    a = np.random.uniform(size=2)
    a.attach_grad()
    with autograd.record():
        c = f(a)
    c.backward()
    print(">>> a.grad == c/a")
    print(repr(a.grad == c / a))
    print(">>> a, c, a.grad")
    print(repr(a), repr(c), repr(a.grad))


def main(argv: list[str]) -> int:
    tutorial()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
