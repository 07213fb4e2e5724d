"""The program each rank runs in tests/test_distributed.py: `python dist_worker.py CASE OUTDIR`.

Every rank writes what it computed to OUTDIR/rank<r>.npz; the test compares those with
numpy oracles and across ranks. Inputs are drawn from seeds, so the test can recompute
every rank's inputs.
"""

from __future__ import annotations

import os
import sys
import time

import numpy

import tracegrad
import tracegrad.distributed as hvd
from tracegrad import np

SIZES = (7, 1000, 70_000, 1_100_000)  # one array each: fused (small) and direct (large)
# grouped, with an 8 KiB fusion threshold: [7, 1000] and [1500, 300] share two buffers,
# 70000 (over the threshold) and 1.1M (over 1 MiB) travel from their own storage
GROUP_SIZES = (7, 1000, 1500, 70_000, 1_100_000, 300)


def rank_data(r: int, n: int, dtype: str = "float32") -> numpy.ndarray:
    """The array rank r contributes (the test computes the same)."""
    rng = numpy.random.default_rng(1000 + r)
    v = rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4, n)
    return v.astype(dtype)


def collectives(out: str) -> None:
    r, n = hvd.rank(), hvd.size()
    res: dict[str, numpy.ndarray] = {}
    for size in SIZES:  # one array each: the fused path (small) and the direct path (large)
        x = np.array(rank_data(r, size))
        res[f"avg{size}"] = hvd.allreduce(x).asnumpy()
        res[f"sum{size}"] = hvd.allreduce(x, average=False).asnumpy()
    grouped = [np.array(rank_data(r, s)) for s in GROUP_SIZES]
    grouped.insert(2, np.array(rank_data(r, 5, "float64"), dtype="float64"))
    outs = hvd.grouped_allreduce(grouped, op=hvd.Sum, name="g")
    for s, o in zip(GROUP_SIZES[:2] + ("f64",) + GROUP_SIZES[2:], outs):
        res[f"grouped{s}"] = o.asnumpy()
    ints = np.array(numpy.arange(12, dtype=numpy.int32).reshape(3, 4) * (r + 1), dtype="int32")
    res["int_sum"] = hvd.allreduce(ints, op=hvd.Sum).asnumpy()
    res["int_avg"] = hvd.allreduce(ints).asnumpy()
    m = np.array(rank_data(r, 50))
    res["max"] = hvd.allreduce(m, op=hvd.Max).asnumpy()
    res["min"] = hvd.allreduce(m, op=hvd.Min).asnumpy()
    res["prod"] = hvd.allreduce(np.array(rank_data(r, 9, "float64") / 10, dtype="float64"), op=hvd.Product).asnumpy()
    res["scaled"] = hvd.allreduce(np.array(rank_data(r, 9)), op=hvd.Sum, prescale_factor=0.5,
                                  postscale_factor=3.0).asnumpy()
    inplace = np.array(rank_data(r, 2000).reshape(40, 50))
    ident = id(inplace)
    assert hvd.allreduce_(inplace, average=False) is inplace and id(inplace) == ident
    res["inplace"] = inplace.asnumpy()
    base = rank_data(r, 600).reshape(20, 30)
    hvd.allreduce_(base[:, ::3], average=False)  # a strided numpy view: packed, written back
    res["strided"] = base
    rows = np.array(rank_data(r, 600).reshape(20, 30))
    hvd.allreduce_(rows[2:5], average=False)  # a tracegrad view: written through to its base
    res["rowview"] = rows.asnumpy()
    g = hvd.allgather(np.array(rank_data(r, (r + 1) * 3).reshape(r + 1, 3)))
    res["gather"] = g.asnumpy()
    b = np.array(rank_data(r, 100))
    res["bcast"] = hvd.broadcast(b, root_rank=n - 1).asnumpy()
    res["bcast_kept"] = b.asnumpy()
    hvd.broadcast_(b, root_rank=0)
    res["bcast_"] = b.asnumpy()
    params = {f"p{k}": np.array(rank_data(r + 10 * k, 300 * k + 1)) for k in range(5)}
    hvd.broadcast_parameters(params, root_rank=1)
    for k, v in params.items():
        res[f"param_{k}"] = v.asnumpy()
    res["object"] = numpy.array(hvd.broadcast_object({"rank": r}, root_rank=n - 1)["rank"])
    res["objects"] = numpy.array(hvd.allgather_object(r * 10))
    res["world"] = numpy.array([r, n, hvd.local_rank(), hvd.local_size()])
    numpy.savez(os.path.join(out, f"rank{r}.npz"), **res)


def fail(out: str) -> None:
    r = hvd.rank()
    x = np.ones((4,))
    hvd.allreduce_(x)
    if r == 1:
        raise ValueError("boom on purpose")
    time.sleep(0.3)
    hvd.allreduce_(x)  # never completes: rank 1 is gone
    open(os.path.join(out, f"survived{r}"), "w").close()


def stuck(out: str) -> None:
    if hvd.rank() == 1:
        time.sleep(60)  # a rank that never joins
    hvd.allreduce(np.ones((4,)))
    open(os.path.join(out, f"survived{hvd.rank()}"), "w").close()


def mismatch(out: str) -> None:
    r = hvd.rank()
    shapes = [(3, 4), (5,)] if r == 0 else [(3, 4), (6,)]
    try:
        hvd.grouped_allreduce([np.ones(s) for s in shapes], name="grads")
    except hvd.MismatchError as exc:
        with open(os.path.join(out, f"error{r}.txt"), "w") as fh:
            fh.write(str(exc))
    hvd.allreduce(np.ones((2,)))  # the world still works afterwards


CASES = {"collectives": collectives, "fail": fail, "stuck": stuck, "mismatch": mismatch}


# ---- Gluon training: DistributedTrainer / Trainer(kvstore='horovod') vs one process -------
TRAIN_BATCH, TRAIN_STEPS = 24, 20


def train_data() -> tuple[numpy.ndarray, numpy.ndarray]:
    rng = numpy.random.default_rng(7)
    x = rng.standard_normal((TRAIN_BATCH, 8)).astype(numpy.float32)
    y = rng.integers(0, 4, TRAIN_BATCH).astype(numpy.float32)
    return x, y


def train(out: str, mode: str, jit: bool = False) -> None:
    """mode: 'plain' (gluon.Trainer, the whole batch, one process), 'dist' (DistributedTrainer),
    'kv' (gluon.Trainer(kvstore='horovod')); the distributed ones train on their shard.
    `jit`: every step (forward, backward, allreduce, update) is one `tracegrad.jit` program."""
    from tracegrad import autograd, gluon

    r, n = hvd.rank(), hvd.size()
    numpy.random.seed(100 + r)  # different initial values on every rank: the broadcast fixes them
    np.random.seed(100 + r)
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(16, activation="tanh", in_units=8), gluon.nn.Dense(4, in_units=16))
    net.initialize(tracegrad.initializer.Xavier())
    params = net.collect_params()
    opt_params = {"learning_rate": 0.1, "momentum": 0.9, "wd": 1e-3}
    if mode == "plain":
        trainer = gluon.Trainer(params, "sgd", opt_params)
    elif mode == "dist":
        hvd.broadcast_parameters(params, root_rank=0)
        trainer = hvd.DistributedTrainer(params, "sgd", opt_params)
    else:
        hvd.broadcast_parameters(params, root_rank=0)
        trainer = gluon.Trainer(params, "sgd", opt_params, kvstore="horovod")
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    x, y = train_data()
    xs, ys = np.array(x[r::n]), np.array(y[r::n])
    def step(xs, ys):
        with autograd.record():
            loss = loss_fn(net(xs), ys)
        loss.backward()
        trainer.step(xs.shape[0])
        return loss

    run = tracegrad.jit(step) if jit else step
    losses = [float(run(xs, ys).mean()) for _ in range(TRAIN_STEPS)]
    res = {k: p.data().asnumpy() for k, p in params.items()}
    res["losses"] = numpy.array(losses)
    if jit:
        res["replays"] = numpy.array(run.counters.replays)
    numpy.savez(os.path.join(out, f"rank{r}.npz"), **res)


CASES.update({f"train_{m}": (lambda out, m=m: train(out, m)) for m in ("plain", "dist", "kv")})
CASES.update({f"jit_{m}": (lambda out, m=m: train(out, m, jit=True)) for m in ("dist", "kv")})


if __name__ == "__main__":
    case, out = sys.argv[1], sys.argv[2]
    hvd.init()
    CASES[case](out)
    hvd.shutdown()
