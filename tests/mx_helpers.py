"""Helpers shared by the MXNet-semantics tests."""

from tracegrad import np

NO_INPUTS = "There are no inputs in computation graph that require gradients."


def _leaf(values, dtype=None, req="write"):
    x = np.array(values, dtype=dtype)
    x.attach_grad(req)
    return x


def _g(x):
    return x.grad.asnumpy().tolist()
