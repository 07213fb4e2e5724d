"""A batch size that changes every step (issue 11 item 4): compiles, memory, step time.

The W3 MLP step (784-512-10, tanh, softmax cross-entropy, SGD) through the record scope,
`with autograd.record(): ...; loss.backward(); p -= lr * p.grad`, once with a fixed batch
and once with a batch drawn from [lo, hi] every step. Prints compiles after the warm-up
steps, RSS growth and the median step of each, as one JSON line:

    python -m benchmarks.varying_batch [--steps 40] [--lo 2000] [--hi 2100] [--fixed 2048]

Targets: no compile after the first few steps, flat RSS, varying step <= 1.5x fixed step.
Fixed and varying steps are interleaved in blocks (timing under load is noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from typing import Any

import numpy


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # not Linux: the peak instead
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=6)
    ap.add_argument("--lo", type=int, default=2000)
    ap.add_argument("--hi", type=int, default=2100)
    ap.add_argument("--fixed", type=int, default=2048)
    ap.add_argument("--dims", default="784,512,10")
    a = ap.parse_args(argv)
    import tracegrad as tg
    from tracegrad import codegen

    tg.npx.set_np()
    np, npx, autograd = tg.np, tg.npx, tg.autograd
    d_in, hidden, classes = (int(x) for x in a.dims.split(","))
    rng = numpy.random.default_rng(0)
    Xall = rng.standard_normal((a.hi, d_in)).astype(numpy.float32)
    yall = rng.integers(0, classes, a.hi)
    ps = [np.array(rng.standard_normal(s).astype(numpy.float32) * 0.05)
          for s in ((d_in, hidden), (hidden,), (hidden, classes), (classes,))]
    for p in ps:
        p.attach_grad()
    lr = 0.01

    def step(n: int) -> float:
        X, y = np.array(Xall[:n]), np.array(yall[:n])
        W1, b1, W2, b2 = ps
        t0 = time.perf_counter()
        with autograd.record():
            h = np.tanh(np.dot(X, W1) + b1)
            logits = np.dot(h, W2) + b2
            loss = -npx.pick(npx.log_softmax(logits), y).mean()
        loss.backward()
        for p in ps:
            p -= lr * p.grad
        loss.asnumpy()
        for p in ps:
            p.wait_to_read() if hasattr(p, "wait_to_read") else p.asnumpy()
        return time.perf_counter() - t0

    sizes = rng.integers(a.lo, a.hi + 1, a.steps + a.warmup)
    for j in range(a.warmup):
        step(a.fixed)
        step(int(sizes[j]))
    c0, rss0 = codegen.stats()["compiles"], _rss_mb()
    fixed, varying, block = [], [], 4
    for j in range(a.warmup, a.warmup + a.steps, block):
        fixed += [step(a.fixed) for _ in range(block)]
        varying += [step(int(n)) for n in sizes[j:j + block]]
    res = {
        "steps": len(varying), "batch": [a.lo, a.hi], "fixed_batch": a.fixed,
        "compiles_after_warmup": codegen.stats()["compiles"] - c0,
        "compiles_total": codegen.stats()["compiles"],
        "rss_mb_start": round(rss0, 1), "rss_mb_end": round(_rss_mb(), 1),
        "fixed_step_ms": round(1e3 * float(numpy.median(fixed)), 2),
        "varying_step_ms": round(1e3 * float(numpy.median(varying)), 2),
    }
    res["ratio"] = round(res["varying_step_ms"] / res["fixed_step_ms"], 2)
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
