"""Data-parallel training of a Gluon MLP with Horovod's API on tracegrad.

    python examples/dist_mlp.py                  # one process
    mpiexec -n 2 python examples/dist_mlp.py     # two ranks, each on its shard of every batch
    python -m tracegrad.distributed -n 4 examples/dist_mlp.py --epochs 5

Every global batch is split across the ranks; `DistributedTrainer` sums the gradients over
the ranks and averages them inside the update, so N ranks make the same updates as one
process on the whole batch (up to float32 rounding) and reach the same accuracy. The step
is one `tracegrad.jit` program on every rank: forward, backward, the allreduce (a host step
inside the program) and the update.
The data are scikit-learn's bundled 8x8 digits (the split of `tracegrad.examples.digits`)
when scikit-learn is installed, else (or with `--data synthetic`) images made from 10 noisy
class prototypes, so the example runs anywhere without downloads.
"""

from __future__ import annotations

import argparse
import time

import numpy

import tracegrad
import tracegrad.distributed as hvd
from tracegrad import autograd, gluon, np


def make_data(n_train: int, n_test: int, seed: int = 0) -> tuple:
    """Images [n, 64] around 10 class prototypes, labels 0..9 (the same on every rank)."""
    rng = numpy.random.default_rng(seed)
    protos = rng.uniform(0, 16, (10, 64))
    def draw(n: int) -> tuple:
        y = rng.integers(0, 10, n)
        x = protos[y] + rng.normal(0, 9.0, (n, 64))
        return ((x - 8.0) / 8.0).astype(numpy.float32), y.astype(numpy.float32)
    return draw(n_train), draw(n_test)


def load(kind: str) -> tuple:
    """((x_train, y_train), (x_test, y_test)) with flat float32 images and float32 labels."""
    if kind == "digits":
        try:
            from tracegrad.examples.digits import load_digits

            xtr, ytr, xte, yte = load_digits()
        except (ImportError, SystemExit):
            kind = "synthetic"
        else:
            flat = lambda x: x.reshape(len(x), -1).astype(numpy.float32)  # noqa: E731
            return (flat(xtr), ytr.astype(numpy.float32)), (flat(xte), yte.astype(numpy.float32))
    return make_data(3000, 1000)


def accuracy(net: gluon.Block, x: numpy.ndarray, y: numpy.ndarray) -> float:
    """Accuracy over the whole set: each rank scores its shard, the counts are summed."""
    r, n = hvd.rank(), hvd.size()
    xs, ys = x[r::n], y[r::n]
    pred = net(np.array(xs)).asnumpy().argmax(axis=1)
    counts = hvd.allreduce(np.array([float((pred == ys).sum()), float(len(ys))]), op=hvd.Sum)
    correct, total = counts.asnumpy()
    return correct / total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=120, help="global batch (split across ranks)")
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--data", choices=["digits", "synthetic"], default="digits")
    args = ap.parse_args()

    hvd.init()
    rank, size = hvd.rank(), hvd.size()
    if args.batch_size % size:
        raise SystemExit(f"--batch-size {args.batch_size} must be divisible by the {size} ranks")
    local = args.batch_size // size
    (xtr, ytr), (xte, yte) = load(args.data)

    numpy.random.seed(rank)  # different initial values per rank: the broadcast makes them equal
    np.random.seed(rank)
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(128, activation="relu", in_units=64), gluon.nn.Dense(10, in_units=128))
    net.initialize(tracegrad.initializer.Xavier())
    params = net.collect_params()
    hvd.broadcast_parameters(params, root_rank=0)
    trainer = hvd.DistributedTrainer(params, "sgd", {"learning_rate": args.lr, "momentum": 0.9})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()

    @tracegrad.jit  # forward, backward, the allreduce of the gradients and the update: one program
    def train_step(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(local)
        return loss

    order = numpy.random.default_rng(1)  # the same shuffle on every rank
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        perm = order.permutation(len(xtr))
        total = 0.0
        steps = len(xtr) // args.batch_size
        for s in range(steps):
            idx = perm[s * args.batch_size : (s + 1) * args.batch_size][rank * local : (rank + 1) * local]
            total += float(train_step(np.array(xtr[idx]), np.array(ytr[idx])).sum())
        mean_loss = hvd.allreduce(np.array([total]), op=hvd.Sum).item() / (steps * args.batch_size)
        acc = accuracy(net, xte, yte)
        if rank == 0:
            print(f"epoch {epoch + 1}: loss {mean_loss:.4f}  test accuracy {acc:.4f}  "
                  f"({size} rank{'s' if size > 1 else ''}, {time.perf_counter() - t0:.1f} s)", flush=True)
    if rank == 0:
        w = params["0.weight"].data().asnumpy()
        print(f"final test accuracy {acc:.4f}; checksum of 0.weight {float(numpy.abs(w).sum()):.6f}")
    hvd.shutdown()


if __name__ == "__main__":
    main()
