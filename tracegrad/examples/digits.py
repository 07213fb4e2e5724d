"""A real training run: a LeNet-style Gluon network on scikit-learn's bundled digits.

    python -m tracegrad.examples.digits [--epochs 30] [--batch-size 64] [--lr 0.003]
                                        [--png digits_training.png] [--seed 0]

The 1797 8x8 digit images are split 80/20 (stratified) into training and test sets. The
network (two 3x3 convolutions with max pooling, then two dense layers) is hybridized, and
the whole Gluon training step (forward, backward, Adam update of every parameter) runs
as one compiled program under `tracegrad.jit`, with a cosine learning-rate schedule
evaluated inside that program. Each epoch shows a progress bar; at the end
a PNG plots the training loss and the train/test accuracy per epoch. Needs the `examples`
extra (scikit-learn, matplotlib).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Optional

import numpy as _onp

import tracegrad
from tracegrad import autograd, np, npx
from tracegrad.gluon import Trainer, nn
from tracegrad.gluon import loss as gloss
from tracegrad.gluon.data import ArrayDataset, DataLoader
from tracegrad.gluon.metric import Accuracy
from tracegrad.lr_scheduler import CosineScheduler


def load_digits(seed: int = 0, test_fraction: float = 0.2) -> tuple:
    """(X_train, y_train, X_test, y_test): images (N, 1, 8, 8) float32 in [0, 1], int32 labels."""
    try:
        from sklearn.datasets import load_digits as _load
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise SystemExit("tracegrad.examples.digits needs scikit-learn: pip install 'tracegrad[examples]'") from None
    d = _load()
    X = (d.images / 16.0).astype(_onp.float32)[:, None]
    y = d.target.astype(_onp.int32)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=test_fraction, random_state=seed, stratify=y)
    return Xtr, ytr, Xte, yte


def build_net() -> nn.HybridSequential:
    """LeNet-style: conv(32) - pool - conv(64) - pool - dense(128) - dropout - dense(10)."""
    net = nn.HybridSequential()
    net.add(nn.Conv2D(32, kernel_size=3, padding=1, activation="relu"),
            nn.MaxPool2D(pool_size=2),
            nn.Conv2D(64, kernel_size=3, padding=1, activation="relu"),
            nn.MaxPool2D(pool_size=2),
            nn.Flatten(),
            nn.Dense(128, activation="relu"),
            nn.Dropout(0.3),
            nn.Dense(10))
    return net


def _bar(epoch: int, epochs: int, done: int, total: int, loss: float, stream: Any) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    stream.write(f"\repoch {epoch:>3}/{epochs} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
                 f"loss {loss:.4f}")
    stream.flush()


def evaluate(net: Any, X: _onp.ndarray, y: _onp.ndarray, batch_size: int = 512) -> float:
    """Accuracy of `net` on (X, y)."""
    acc = Accuracy()
    for Xb, yb in DataLoader(ArrayDataset(X, y), batch_size=batch_size):
        acc.update(yb, net(Xb))
    return acc.get()[1]


def setup(epochs: int, batch_size: int, lr: float, seed: int) -> tuple:
    """Seeded data, the hybridized net, its training loader and the compiled training step
    (Adam under a cosine schedule over `epochs`): `((Xtr, ytr, Xte, yte), net, loader, step)`."""
    _onp.random.seed(seed)
    np.random.seed(seed)
    Xtr, ytr, Xte, yte = load_digits(seed)
    net = build_net()
    net.initialize(tracegrad.initializer.Xavier())
    net.hybridize()
    net(np.array(Xtr[:2]))  # deferred initialization: the first forward fills the weight shapes
    loss_fn = gloss.SoftmaxCrossEntropyLoss()
    loader = DataLoader(ArrayDataset(Xtr, ytr), batch_size=batch_size, shuffle=True, last_batch="discard")
    sched = CosineScheduler(max_update=epochs * len(loader), base_lr=lr, final_lr=lr * 0.02)
    trainer = Trainer(net.collect_params(), "adam", {"learning_rate": lr, "lr_scheduler": sched})

    @tracegrad.jit
    def step(X: Any, y: Any) -> Any:
        with autograd.record():
            loss = loss_fn(net(X), y)
        loss.backward()
        trainer.step(X.shape[0])
        return loss

    return (Xtr, ytr, Xte, yte), net, loader, step


def train(epochs: int = 30, batch_size: int = 64, lr: float = 0.003, seed: int = 0, png: Optional[str] = None,
          progress: bool = True, stream: Any = None) -> dict:
    """Train and return the history: per-epoch 'loss', 'train_acc', 'test_acc', 'seconds'."""
    stream = stream or sys.stdout
    npx.set_np()
    (Xtr, ytr, Xte, yte), net, loader, step = setup(epochs, batch_size, lr, seed)

    history: dict = {"loss": [], "train_acc": [], "test_acc": [], "seconds": []}
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        total, count, n = 0.0, 0, len(loader)
        for i, (X, y) in enumerate(loader, 1):
            loss = step(X, y)
            total += float(loss.sum())
            count += X.shape[0]
            if progress:
                _bar(epoch, epochs, i, n, total / count, stream)
        history["seconds"].append(time.perf_counter() - t0)
        history["loss"].append(total / count)
        history["train_acc"].append(evaluate(net, Xtr, ytr))
        history["test_acc"].append(evaluate(net, Xte, yte))
        if progress:
            stream.write(f"  train acc {history['train_acc'][-1]:.4f}  test acc {history['test_acc'][-1]:.4f}  "
                         f"({history['seconds'][-1]:.2f} s)\n")
    if png:
        plot(history, png)
    history["step"] = step
    return history


def plot(history: dict, path: str) -> None:
    """Write a PNG of the training loss and the accuracies per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = range(1, len(history["loss"]) + 1)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(ep, history["loss"], marker="o")
    a.set_xlabel("epoch")
    a.set_ylabel("training loss")
    a.set_yscale("log")
    b.plot(ep, history["train_acc"], marker="o", label="train")
    b.plot(ep, history["test_acc"], marker="o", label="test")
    b.set_xlabel("epoch")
    b.set_ylabel("accuracy")
    b.legend()
    fig.suptitle("tracegrad Gluon LeNet on scikit-learn digits")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tracegrad.examples.digits", description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.003)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--png", default="digits_training.png")
    a = p.parse_args(argv)
    h = train(a.epochs, a.batch_size, a.lr, a.seed, a.png)
    print(f"final test accuracy {h['test_acc'][-1]:.4f} (best {max(h['test_acc']):.4f}); curves in {a.png}")
    print(f"compiled step: {h['step'].counters}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
