"""The fused optimizer update (one compiled program for every parameter) against a
per-parameter numpy update, for the parameters of an MLP 784-256-256-10.

    python -m benchmarks.optimizer_update [--repeat 200]
"""

from __future__ import annotations

import argparse
import time

import numpy as onp

SHAPES = [(256, 784), (256,), (256, 256), (256,), (10, 256), (10,)]


def _numpy_sgd(ws, gs, ms, lr=0.01, mom=0.9, wd=1e-4, rescale=1 / 128):
    for w, g, m in zip(ws, gs, ms):
        g = g * rescale + wd * w
        m *= mom
        m -= lr * g
        w += m


def _numpy_adam(ws, gs, st, t, lr=0.001, b1=0.9, b2=0.999, eps=1e-8, rescale=1 / 128):
    lr_t = lr * (1 - b2 ** t) ** 0.5 / (1 - b1 ** t)
    for w, g, (m, v) in zip(ws, gs, st):
        g = g * rescale
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        w -= lr_t * m / (onp.sqrt(v) + eps)


def _time(fn, repeat):
    for _ in range(5):
        fn()
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat * 1e6


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=200)
    a = p.parse_args()
    from tracegrad import np, optimizer

    rng = onp.random.default_rng(0)
    ws = [rng.standard_normal(s).astype("float32") for s in SHAPES]
    gs = [rng.standard_normal(s).astype("float32") for s in SHAPES]
    n = sum(w.size for w in ws)
    print(f"MLP 784-256-256-10: {len(ws)} parameters, {n} elements; microseconds per update (median of runs)")
    for name, kw in (("sgd", dict(learning_rate=0.01, momentum=0.9, wd=1e-4)), ("adam", dict(learning_rate=0.001))):
        o = optimizer.create(name, rescale_grad=1 / 128, **kw)
        tw = [np.array(w) for w in ws]
        tg = [np.array(g) for g in gs]
        st = [o.create_state(i, w) for i, w in enumerate(tw)]
        idx = list(range(len(tw)))
        fused = _time(lambda: o.update(idx, tw, tg, st), a.repeat)
        nw = [w.copy() for w in ws]
        if name == "sgd":
            ms = [onp.zeros_like(w) for w in ws]
            ref = _time(lambda: _numpy_sgd(nw, gs, ms), a.repeat)
        else:
            sts = [(onp.zeros_like(w), onp.zeros_like(w)) for w in ws]
            cnt = [0]

            def step():
                cnt[0] += 1
                _numpy_adam(nw, gs, sts, cnt[0])
            ref = _time(step, a.repeat)
        c = o._program.counters
        print(f"  {name:5s} fused (1 program, {c.compiles} compile): {fused:8.1f} us   numpy per parameter: "
              f"{ref:8.1f} us   ratio {ref / fused:.2f}x")


if __name__ == "__main__":
    main()
