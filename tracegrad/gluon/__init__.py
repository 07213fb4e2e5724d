"""`tracegrad.gluon`: MXNet 2.x's Gluon training API on tracegrad."""

# ---- gluon-train: losses, Trainer, data, metric, utils ------------------------------------
from . import loss  # noqa: F401
