"""The nn ops beyond their table cases (tests/op_cases_nn.py): a small conv net compiled vs
interpreted at sizes that split across threads, bitwise determinism for 1 and 2 threads,
shape errors, batch_norm's training/predict behaviour, embedding's accumulating gradient."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy
import pytest

import tracegrad
from tracegrad import DTypeError, ShapeError, UnsupportedError, autograd, npx
from tracegrad import np as tnp
from tracegrad.runtime import execute

HERE = os.path.dirname(os.path.abspath(__file__))


def net_step(n: int = 32, seed: int = 0) -> list[numpy.ndarray]:
    """conv-bn-relu-gelu-maxpool-avgpool-dense-log_softmax, forward and backward."""
    rs = numpy.random.RandomState(seed)
    x = tnp.array(rs.uniform(-1, 1, (n, 3, 32, 32)), dtype="float32")
    w1 = tnp.array(rs.uniform(-0.3, 0.3, (16, 3, 3, 3)), dtype="float32")
    g, be = tnp.array(rs.uniform(0.5, 1.5, (16,))), tnp.array(rs.uniform(-0.5, 0.5, (16,)))
    rm, rv = tnp.zeros((16,)), tnp.ones((16,))
    w2 = tnp.array(rs.uniform(-0.1, 0.1, (10, 16 * 16 * 16)), dtype="float32")
    b2 = tnp.zeros((10,))
    ps = [x, w1, g, be, w2, b2]
    for p in ps:
        p.attach_grad()
    with autograd.record():
        h = npx.convolution(x, w1, kernel=(3, 3), pad=(1, 1), num_filter=16, no_bias=True)
        h = npx.batch_norm(h, g, be, rm, rv, fix_gamma=False)
        h = npx.leaky_relu(npx.relu(h), act_type="gelu")
        h = npx.pooling(h, kernel=(2, 2), stride=(2, 2), pool_type="max")
        h = npx.pooling(h, kernel=(3, 3), stride=(1, 1), pad=(1, 1), pool_type="avg")
        o = npx.fully_connected(h, w2, b2, num_hidden=10, no_bias=False)
        loss = -(npx.log_softmax(o) * npx.one_hot(tnp.array(numpy.arange(n) % 10), 10)).sum()
    loss.backward()
    return [loss.asnumpy()] + [p.grad.asnumpy() for p in ps] + [rm.asnumpy(), rv.asnumpy()]


def test_compiled_matches_interpreter_on_a_conv_net(monkeypatch) -> None:
    monkeypatch.setattr(execute, "MODE", "strict")
    compiled = net_step()
    monkeypatch.setattr(execute, "MODE", "never")
    interpreted = net_step()
    for i, (c, r) in enumerate(zip(compiled, interpreted)):
        scale = max(float(numpy.abs(r).max()), 1e-3)
        numpy.testing.assert_allclose(c, r, rtol=1e-4, atol=1e-5 * scale, err_msg=f"output {i}")


def norms_step(seed: int = 1) -> list[numpy.ndarray]:
    """The normalizations, activations and masked softmax on 2**19+ elements, with gradients."""
    rs = numpy.random.RandomState(seed)
    x = tnp.array(rs.uniform(-2, 2, (16, 32, 32, 32)), dtype="float32")
    g = tnp.array(rs.uniform(0.5, 1.5, (32,)), dtype="float32")
    b = tnp.array(rs.uniform(-0.5, 0.5, (32,)), dtype="float32")
    gl = tnp.array(rs.uniform(0.5, 1.5, (32,)), dtype="float32")
    mask = tnp.array(rs.uniform(size=(16, 32, 32, 32)) > 0.3)
    for p in (x, g, b, gl):
        p.attach_grad()
    with autograd.record():
        h = npx.group_norm(x, g, b, num_groups=4) + npx.instance_norm(x, g, b) + npx.layer_norm(x, gl, b)
        h = npx.leaky_relu(h, act_type="elu") + npx.leaky_relu(h, act_type="selu") + npx.activation(h, "mish")
        s = npx.masked_softmax(h, mask) + npx.softmax(h, length=tnp.array(rs.randint(0, 33, (16, 32, 32)),
                                                                          dtype="int32"), use_length=True)
        loss = (s * h).sum()
    loss.backward()
    return [loss.asnumpy()] + [p.grad.asnumpy() for p in (x, g, b, gl)]


@pytest.mark.slow  # ~1 min of Numba compilation (2.5 min on a loaded 2-core machine)
def test_compiled_matches_interpreter_on_norms_and_masked_softmax(monkeypatch) -> None:
    monkeypatch.setattr(execute, "MODE", "strict")
    compiled = norms_step()
    monkeypatch.setattr(execute, "MODE", "never")
    interpreted = norms_step()
    for i, (c, r) in enumerate(zip(compiled, interpreted)):
        scale = max(float(numpy.abs(r).max()), 1e-3)
        numpy.testing.assert_allclose(c, r, rtol=1e-4, atol=2e-5 * scale, err_msg=f"output {i}")


_HASH = (
    "import hashlib, sys; sys.path.insert(0, {here!r}); import test_nn; "
    "print(hashlib.sha256(b''.join(o.tobytes() for o in test_nn.net_step())).hexdigest())"
)


def test_one_and_two_threads_give_bitwise_identical_results() -> None:
    """tracegrad's threads (the fused kernels' split) do not change a bit. The BLAS thread
    count is held fixed: OpenBLAS's GEMM rounding depends on its own thread count (for
    matmul as much as for the convolution GEMMs); pinning BLAS per tile is left for later."""
    digests = []
    for threads in ("1", "2"):
        env = dict(os.environ, TRACEGRAD_COMPILE="strict", TRACEGRAD_NUM_THREADS=threads,
                   OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2", MKL_NUM_THREADS="2",
                   PYTHONPATH=os.path.dirname(os.path.dirname(tracegrad.__file__)))
        out = subprocess.run([sys.executable, "-c", _HASH.format(here=HERE)], capture_output=True, text=True,
                             env=env, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        digests.append(out.stdout.strip().splitlines()[-1])
    assert digests[0] == digests[1]


# ---- errors ---------------------------------------------------------------------------------
def test_conv_shape_error_names_op_shapes_dtypes_and_line() -> None:
    x = tnp.zeros((2, 3, 8, 8))
    w = tnp.zeros((4, 2, 3, 3))
    with pytest.raises(ShapeError) as e:
        npx.convolution(x, w, kernel=(3, 3), num_filter=4)
    msg = str(e.value)
    assert "convolution" in msg and "(2, 3, 8, 8)" in msg and "(4, 2, 3, 3)" in msg and "float32" in msg
    assert "test_nn.py" in msg
    with pytest.raises(ShapeError, match=r"(?s)convolution.*larger than the padded input.*test_nn.py"):
        npx.convolution(tnp.zeros((1, 1, 2, 2)), tnp.zeros((1, 1, 3, 3)), kernel=(3, 3))
    with pytest.raises(ShapeError, match=r"(?s)num_filter=5.*test_nn.py"):
        npx.convolution(tnp.zeros((1, 1, 4, 4)), tnp.zeros((4, 1, 3, 3)), kernel=(3, 3), num_filter=5)
    with pytest.raises(DTypeError, match="convolution"):
        npx.convolution(tnp.zeros((1, 1, 4, 4)), tnp.zeros((1, 1, 3, 3), dtype="float64"), kernel=(3, 3))
    with pytest.raises(UnsupportedError, match="NHWC"):
        npx.convolution(tnp.zeros((1, 4, 4, 1)), tnp.zeros((1, 1, 3, 3)), layout="NHWC")


def test_pool_shape_error_names_op_shapes_and_line() -> None:
    with pytest.raises(ShapeError) as e:
        npx.pooling(tnp.zeros((1, 2, 3, 3)), kernel=(4, 4))
    msg = str(e.value)
    assert "pooling" in msg and "(1, 2, 3, 3)" in msg and "float32" in msg and "test_nn.py" in msg
    with pytest.raises(ShapeError, match=r"(?s)pooling.*test_nn.py"):
        npx.pooling(tnp.zeros((4, 4)), kernel=(2, 2))
    with pytest.raises(ShapeError, match=r"(?s)kernel.*2 values"):
        npx.pooling(tnp.zeros((1, 1, 4, 4)), kernel=(2,))


# ---- batch_norm: training vs predict ---------------------------------------------------------
def _bn_inputs():
    rs = numpy.random.RandomState(3)
    x = tnp.array(rs.uniform(-1, 1, (4, 3, 2, 2)))
    return x, tnp.array([2.0, 3.0, 4.0]), tnp.array([0.1, 0.2, 0.3]), tnp.zeros((3,)), tnp.ones((3,))


def test_batch_norm_running_stats_move_only_in_training_mode() -> None:
    x, g, b, rm, rv = _bn_inputs()
    xn = x.asnumpy()
    npx.batch_norm(x, g, b, rm, rv)  # predict mode outside record()
    assert rm.asnumpy().tolist() == [0, 0, 0] and rv.asnumpy().tolist() == [1, 1, 1]
    with autograd.record(train_mode=False):
        npx.batch_norm(x, g, b, rm, rv)
    assert rm.asnumpy().tolist() == [0, 0, 0]
    with autograd.record():
        npx.batch_norm(x, g, b, rm, rv, use_global_stats=True)
    assert rm.asnumpy().tolist() == [0, 0, 0]
    with autograd.record():
        y = npx.batch_norm(x, g, b, rm, rv, fix_gamma=False)
    m, v = xn.mean((0, 2, 3)), xn.var((0, 2, 3))
    numpy.testing.assert_allclose(rm.asnumpy(), 0.1 * m, rtol=1e-6)
    numpy.testing.assert_allclose(rv.asnumpy(), 0.9 + 0.1 * v, rtol=1e-6)  # biased variance, as MXNet
    want = (xn - m[None, :, None, None]) / numpy.sqrt(v[None, :, None, None] + 1e-3) * numpy.array(
        [2.0, 3.0, 4.0])[None, :, None, None] + numpy.array([0.1, 0.2, 0.3])[None, :, None, None]
    numpy.testing.assert_allclose(y.asnumpy(), want, rtol=1e-5, atol=1e-6)
    with autograd.train_mode():  # training without recording also updates
        npx.batch_norm(x, g, b, rm, rv)
    numpy.testing.assert_allclose(rm.asnumpy(), 0.09 * m + 0.1 * m, rtol=1e-5)


def test_batch_norm_predict_and_global_stats_use_running_stats() -> None:
    x, g, b, _, _ = _bn_inputs()
    rm, rv = tnp.array([0.5, -0.5, 0.0]), tnp.array([2.0, 0.5, 1.0])
    want = (x.asnumpy() - rm.asnumpy()[None, :, None, None]) / numpy.sqrt(
        rv.asnumpy()[None, :, None, None] + 1e-3) * g.asnumpy()[None, :, None, None] + b.asnumpy()[None, :, None, None]
    numpy.testing.assert_allclose(npx.batch_norm(x, g, b, rm, rv, fix_gamma=False).asnumpy(), want, rtol=1e-5)
    with autograd.record():
        y = npx.batch_norm(x, g, b, rm, rv, fix_gamma=False, use_global_stats=True)
    numpy.testing.assert_allclose(y.asnumpy(), want, rtol=1e-5)


def test_batch_norm_fix_gamma_gives_gamma_a_zero_gradient_and_outputs_mean_invstd() -> None:
    x, g, b, rm, rv = _bn_inputs()
    x.attach_grad()
    g.attach_grad()
    g.grad[:] = 7.0
    with autograd.record():
        y, mean, invstd = npx.batch_norm(x, g, b, rm, rv, output_mean_var=True)
        loss = (y * y).sum()
    loss.backward()
    assert g.grad.asnumpy().tolist() == [0.0, 0.0, 0.0]
    xn = x.asnumpy()
    numpy.testing.assert_allclose(mean.asnumpy(), xn.mean((0, 2, 3)), rtol=1e-5)
    numpy.testing.assert_allclose(invstd.asnumpy(), 1 / numpy.sqrt(xn.var((0, 2, 3)) + 1e-3), rtol=1e-5)


def test_batch_norm_under_jit_updates_running_stats_each_training_step() -> None:
    x, g, b, rm, rv = _bn_inputs()
    g.attach_grad()

    @tracegrad.jit
    def step(x):
        with autograd.record():
            y = npx.batch_norm(x, g, b, rm, rv, fix_gamma=False)
        y.backward()
        return y

    m = x.asnumpy().mean((0, 2, 3))
    for i in range(3):
        step(x)
        numpy.testing.assert_allclose(rm.asnumpy(), m * (1 - 0.9 ** (i + 1)), rtol=1e-5, err_msg=f"step {i}")


# ---- embedding, masks -----------------------------------------------------------------------
def test_embedding_repeated_ids_accumulate_in_the_weight_gradient() -> None:
    w = tnp.array(numpy.arange(12.0).reshape(4, 3))
    w.attach_grad()
    with autograd.record():
        y = npx.embedding(tnp.array([[0, 2], [2, 2]]), w, input_dim=4, output_dim=3, sparse_grad=True)
    y.backward()
    assert w.grad.asnumpy()[:, 0].tolist() == [1.0, 0.0, 3.0, 0.0]


@pytest.mark.parametrize("dtype", ["bool", "float32", "int32", "int64"])
def test_masked_softmax_takes_every_mask_dtype(dtype) -> None:
    """MXNet 2.0.0b1 rejects non-bool masks (a defect); the documented behaviour holds here."""
    out = npx.masked_softmax(tnp.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]]),
                             tnp.array([[1, 0, 1], [0, 0, 0]], dtype=dtype))
    e = numpy.exp([1.0, 3.0]) / numpy.exp([1.0, 3.0]).sum()
    numpy.testing.assert_allclose(out.asnumpy(), [[e[0], 0, e[1]], [0, 0, 0]], rtol=1e-6)


@pytest.mark.parametrize("act_type", ["elu", "selu"])
def test_elu_selu_gradients_stay_finite_for_large_inputs(act_type) -> None:
    # the untaken expm1 branch overflowed to inf for x >> 0, and 0 * inf made the gradient NaN
    x = tnp.array([-200.0, -1.0, 0.0, 1.0, 100.0, 1000.0])
    x.attach_grad()
    with autograd.record():
        y = npx.leaky_relu(x, act_type=act_type, slope=0.5)
    y.backward()
    g = x.grad.asnumpy()
    assert numpy.isfinite(g).all(), g
    lam = 1.0507009873554805 if act_type == "selu" else 1.0
    numpy.testing.assert_allclose(g[3:], lam, rtol=1e-6)
