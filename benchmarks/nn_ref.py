"""numpy forward and backward of the layers W7-W9 use, in the dtype of their inputs.

The float64 references of benchmarks.workloads_nn run through these (the numpy rows of W8 and
W9c run them in float32). Layouts as MXNet and PyTorch: images NCHW, convolution weights
(out, in, kh, kw), dense weights (out, in). Convolution is stride 1 with symmetric zero
padding; max-pooling is 2x2 with stride 2 on even sizes, its gradient going to the first
maximum of each window (PyTorch's and MXNet's choice). Imported inside the MXNet venv too,
so it needs only numpy.
"""

from __future__ import annotations

from typing import Optional, Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _windows(x: np.ndarray, kh: int, kw: int, pad: int) -> np.ndarray:
    """(N, C, Ho, Wo, kh, kw) view of the zero-padded input."""
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    return sliding_window_view(x, (kh, kw), axis=(2, 3))


def conv2d(x: np.ndarray, w: np.ndarray, b: Any = None, pad: int = 0) -> np.ndarray:
    """y[n, o] = sum_c x[n, c] (*) w[o, c] + b[o] (cross-correlation, stride 1)."""
    win = _windows(x, w.shape[2], w.shape[3], pad)
    y = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
    if b is not None:
        y = y + b[None, :, None, None]
    return np.ascontiguousarray(y)


def conv2d_backward(x: np.ndarray, w: np.ndarray, gy: np.ndarray, pad: int = 0) -> tuple:
    """(gx, gw, gb) of conv2d for the output gradient gy."""
    kh, kw = w.shape[2], w.shape[3]
    win = _windows(x, kh, kw, pad)
    gw = np.tensordot(gy, win, axes=([0, 2, 3], [0, 2, 3]))
    n, c, h, wd = x.shape
    ho, wo = gy.shape[2], gy.shape[3]
    gxp = np.zeros((n, c, h + 2 * pad, wd + 2 * pad), dtype=np.result_type(gy, w))
    for i in range(kh):
        for j in range(kw):
            gxp[:, :, i:i + ho, j:j + wo] += np.tensordot(gy, w[:, :, i, j], axes=([1], [0])).transpose(0, 3, 1, 2)
    gx = gxp[:, :, pad:pad + h, pad:pad + wd] if pad else gxp
    return np.ascontiguousarray(gx), gw, gy.sum(axis=(0, 2, 3))


def maxpool2(x: np.ndarray, idx: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """2x2/stride-2 max pooling: (y, index of the first maximum in each window); a given
    `idx` routes through those positions instead (the piece a lower-precision run chose)."""
    n, c, h, w = x.shape
    win = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
    if idx is None:
        idx = win.argmax(axis=-1)
    return np.take_along_axis(win, idx[..., None], axis=-1)[..., 0], idx


def maxpool2_backward(gy: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The input gradient of maxpool2: gy routed to each window's first maximum."""
    n, c, ho, wo = gy.shape
    g = np.zeros((n, c, ho, wo, 4), dtype=gy.dtype)
    np.put_along_axis(g, idx[..., None], gy[..., None], axis=-1)
    return g.reshape(n, c, ho, wo, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, 2 * ho, 2 * wo)


def batchnorm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> tuple:
    """Training-mode batch normalization over (N, H, W) per channel: (y, (xhat, inv_std))."""
    mu = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)
    inv = 1.0 / np.sqrt(var + eps)
    xhat = (x - mu) * inv
    return gamma[None, :, None, None] * xhat + beta[None, :, None, None], (xhat, inv)


def batchnorm_backward(gy: np.ndarray, gamma: np.ndarray, saved: tuple) -> tuple:
    """(gx, ggamma, gbeta) of batchnorm (batch statistics are functions of x)."""
    xhat, inv = saved
    m = gy.shape[0] * gy.shape[2] * gy.shape[3]
    gbeta = gy.sum(axis=(0, 2, 3))
    ggamma = (gy * xhat).sum(axis=(0, 2, 3))
    gx = (gamma[None, :, None, None] * inv / m) * (
        m * gy - gbeta[None, :, None, None] - xhat * ggamma[None, :, None, None])
    return gx, ggamma, gbeta


def softmax_xent(logits: np.ndarray, y: np.ndarray) -> tuple[Any, np.ndarray]:
    """Mean softmax cross-entropy and its gradient with respect to the logits."""
    n = logits.shape[0]
    m = logits.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
    logp = logits - lse
    loss = -logp[np.arange(n), y].mean()
    g = np.exp(logp)
    g[np.arange(n), y] -= 1.0
    return loss, g / n
