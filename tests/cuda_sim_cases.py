"""CUDA renderer cases, run by tests/test_cuda_sim.py in a subprocess under Numba's CUDA
simulator (NUMBA_ENABLE_CUDASIM=1 must be set before numba.cuda is imported, so these never
run in the main test process). Each case runs a tiny program on the CPU and on gpu(0) and
compares values and gradients. Shapes stay tiny: the simulator runs every GPU thread as a
Python thread (about 1 ms each).
"""

from __future__ import annotations

import os

import numpy
import pytest

from tracegrad import autograd, np, npx
from tracegrad.device import DeviceError
from tracegrad.examples import tutorial_f

SIM = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
if not SIM and os.environ.get("TRACEGRAD_TEST_REAL_GPU") != "1":  # pragma: no cover
    pytest.skip("run through tests/test_cuda_sim.py (simulator or a real GPU)", allow_module_level=True)

from tracegrad.codegen import cuda as cg  # noqa: E402

GPU = npx.gpu(0)
RS = numpy.random.RandomState(0)
if SIM:
    # The simulator runs each GPU thread as a Python thread (most of this file's time): 8
    # threads a block instead of the simulator's default 32 halve it, and cases of more than
    # 16 elements then also run the grid-stride loops (2 blocks) and several tree-reduction
    # steps. A real GPU keeps its own launch shapes.
    cg.runtime.config().tpb = 8


def f32(*shape: int) -> numpy.ndarray:
    return RS.randn(*shape).astype(numpy.float32)


def run_on(dev, fn, arrays, grads=True):
    xs = [np.array(a, dtype=a.dtype, device=dev) for a in arrays]
    if grads:
        for x in xs:
            if x.dtype.kind == "f":
                x.attach_grad()
    with autograd.record():
        y = fn(*xs)
    if grads:
        y.backward()
    return xs, y


def compare(fn, *arrays, grads=True, rtol=1e-5, atol=1e-6):
    """Run `fn` on CPU and GPU; values and gradients must agree. Returns the GPU arrays."""
    xc, yc = run_on(npx.cpu(), fn, arrays, grads)
    xg, yg = run_on(GPU, fn, arrays, grads)
    assert yg.device == GPU
    numpy.testing.assert_allclose(yg.asnumpy(), yc.asnumpy(), rtol=rtol, atol=atol)
    for a, b in zip(xc, xg):
        if a.grad is not None:
            assert b.grad.device == GPU and cg.runtime._device.is_device_array(b.grad._data)
            numpy.testing.assert_allclose(b.grad.asnumpy(), a.grad.asnumpy(), rtol=rtol, atol=atol)
    return xg, yg


def test_tutorial_square_is_one_launch():
    before = dict(cg.COUNTERS)
    x = np.array([[1, 2], [3, 4]], device=GPU)
    x.attach_grad()
    with autograd.record():
        y = 2 * x * x
    y.backward()
    assert repr(x.grad) == "array([[ 4.,  8.],\n       [12., 16.]])"
    assert x.grad.device == GPU and x.device == GPU
    assert cg.COUNTERS["launches"] - before["launches"] == 1  # forward+backward fused


def test_tutorial_control_flow_guards_on_gpu():
    f = tutorial_f

    for seed in range(3):
        a = np.array(numpy.random.RandomState(seed).uniform(size=2).astype("float32"), device=GPU)
        a.attach_grad()
        with autograd.record():
            c = f(a)
        c.backward()
        g = a.grad.asnumpy()
        numpy.testing.assert_allclose(g[0], c.item() / a.asnumpy()[0], rtol=1e-6)
        assert g[1] == 0


def test_w1_like():
    compare(lambda x: 2 * x * x, f32(100))


def test_w2_like_gelu_mse():
    x, t, w, b = f32(64), f32(64), f32(64), f32(64)

    def step(x, t, w, b):
        z = x * w + b
        h = 0.5 * z * (1 + np.tanh(0.7978845608 * (z + 0.044715 * z**3)))
        return ((h - t) ** 2).mean()

    before = cg.COUNTERS["launches"]
    compare(step, x, t, w, b)
    # forward + in-kernel partial sums, the combine (with the mean's division), backward
    assert cg.COUNTERS["launches"] - before == 3


def test_w3_like_mlp_with_cross_entropy():
    X, W1, b1, W2, b2 = f32(6, 5), f32(5, 7) * 0.4, f32(7) * 0.1, f32(7, 3) * 0.4, f32(3) * 0.1
    labels = numpy.array([0, 2, 1, 1, 0, 2])

    def step(X, W1, b1, W2, b2):
        h = np.tanh(X @ W1 + b1)
        logits = h @ W2 + b2
        return -npx.pick(npx.log_softmax(logits), labels, axis=1).mean()

    before = cg.COUNTERS["launches"]
    compare(step, X, W1, b1, W2, b2, rtol=1e-4, atol=1e-5)
    assert cg.COUNTERS["launches"] - before <= 19  # forward and backward of the whole step


def test_reductions_axes_and_two_pass():
    A = f32(3, 40)
    compare(lambda a: a.sum(axis=1), A)
    compare(lambda a: (a * a).max(axis=0, keepdims=True), A)
    compare(lambda a: np.min(a, axis=(0, 1)), A)
    compare(lambda a: a.prod(axis=0), f32(2, 5))
    before = cg.COUNTERS["launches"]
    compare(lambda a: (a * a).sum(), f32(600))  # many elements, one output: partials + combine
    assert cg.COUNTERS["launches"] - before >= 3


def test_reduction_is_deterministic():
    x = np.array(f32(700), device=GPU)
    r1 = (x * 3).sum().asnumpy()
    r2 = (x * 3).sum().asnumpy()
    assert r1.tobytes() == r2.tobytes()


def test_matmul_and_transposed_views():
    compare(lambda a, b: np.tanh(a @ b + 1), f32(5, 7), f32(7, 3))
    compare(lambda a, b: np.matmul(a, b), f32(2, 3, 5), f32(5, 4))
    compare(lambda a, b: a.T @ b, f32(6, 3), f32(6, 2))


def test_gather_scatter_add():
    E = f32(6, 4)
    idx = numpy.array([1, 3, 3, 0])
    compare(lambda e: (e[idx] * 2).sum(), E)  # repeated rows: the scatter-add accumulates
    compare(lambda e: e[:, numpy.array([2, 0])].sum(axis=0), E)
    compare(lambda e: e[numpy.array([0, 5]), numpy.array([1, 3])], E, grads=False)


def test_layout_ops():
    A = f32(4, 6)
    compare(lambda a: a[1:3, ::-2] * 3, A, grads=False)
    _, y = compare(lambda a: (a[1:3, ::2] * 3).sum(), A)
    compare(lambda a: np.concatenate([a, a * 2], axis=1).sum(axis=0), A)
    compare(lambda a: np.reshape(a.T, (3, 8)) * 2, A, grads=False)
    compare(lambda a: (np.broadcast_to(a[:1], (5, 6)) * a[2]).sum(), A)


def test_host_steps_argmax_and_logging(caplog):
    caplog.set_level("INFO", logger="tracegrad.codegen.cuda")
    x = np.array(f32(3, 5), device=GPU)
    y = (x * 2).argmax(axis=1)
    assert y.device == GPU
    numpy.testing.assert_array_equal(y.asnumpy(), (x.asnumpy() * 2).argmax(axis=1))
    assert any("host step for argmax" in r.getMessage() for r in caplog.records)


def test_devices_api():
    assert npx.num_gpus() >= 1
    assert str(npx.gpu(0)) == "gpu(0)" and npx.cpu() == npx.cpu(0)
    with pytest.raises(DeviceError, match="does not exist"):
        npx.gpu(npx.num_gpus())
    a = np.ones((2, 3))
    assert a.device == npx.cpu()
    b = a.to_device(GPU)
    assert b.device == GPU and a.as_in_ctx(GPU).device == GPU and a.copyto(GPU).device == GPU
    assert b.to_device(npx.cpu()).device == npx.cpu()
    assert np.zeros_like(b).device == GPU
    with GPU:
        c = np.zeros((2, 2))
        assert c.device == GPU and npx.current_device() == GPU
    assert npx.current_device() == npx.cpu()
    assert np.arange(4, device=GPU).device == GPU
    assert b.copy().device == GPU
    b += 1
    b[0, 1] = 7
    numpy.testing.assert_array_equal(b.asnumpy(), [[2, 7, 2], [2, 2, 2]])
    assert b.device == GPU


def test_mixing_devices_is_an_error_naming_op_and_line():
    a = np.ones((2,), device=GPU)
    b = np.ones((2,))
    with pytest.raises(DeviceError) as info:
        a + b
    msg = str(info.value)
    assert "add" in msg and "gpu(0)" in msg and "cpu(0)" in msg and "cuda_sim_cases.py" in msg
    numpy.testing.assert_array_equal((a + numpy.ones(2)).asnumpy(), [2, 2])  # host data follows


def test_grad_req_add_accumulates_on_device():
    x = np.array(f32(8), device=GPU)
    x.attach_grad(grad_req="add")
    for _ in range(2):
        with autograd.record():
            y = (x * x).sum()
        y.backward()
    numpy.testing.assert_allclose(x.grad.asnumpy(), 4 * x.asnumpy(), rtol=1e-6)


def test_kernel_sources_are_inspectable():
    from tracegrad.tracer.lazy import build_trace

    x = np.array(f32(8), device=GPU)
    y = np.exp(x) * 2 + 1
    trace, _ = build_trace([y])
    srcs = cg.sources(trace)
    assert len(srcs) == 1 and "while i < 8" in srcs[0] and "math.exp" in srcs[0]


@pytest.mark.skipif(SIM, reason="the simulator's device arrays have no __cuda_array_interface__")
def test_cuda_array_interface_zero_copy():
    x = np.array(f32(16), device=GPU)
    cai = x.__cuda_array_interface__
    assert cai["shape"] == (16,) and cai["typestr"] == "<f4"
    try:
        import torch
    except ImportError:
        pytest.skip("torch is not installed")
    t = torch.as_tensor(x, device="cuda")
    assert t.data_ptr() == cai["data"][0]
    numpy.testing.assert_array_equal(t.cpu().numpy(), x.asnumpy())


def test_compiled_step_on_gpu_matches_cpu():
    import tracegrad

    def make(dev):
        rs = numpy.random.RandomState(1)
        x = np.array(rs.randn(4, 5).astype("float32"), device=dev)
        W = np.array(rs.randn(5, 3).astype("float32"), device=dev)
        W.attach_grad()

        @tracegrad.jit
        def step(x):
            with autograd.record():
                h = np.tanh(x @ W)
                loss = (h * h).mean()
                if loss > 10:  # a guard of the compiled step
                    loss = loss * 0
            loss.backward()
            W[...] = W - 0.5 * W.grad
            return loss

        return step, x, W

    cpu_step, xc, Wc = make(npx.cpu())
    gpu_step, xg, Wg = make(GPU)
    for _ in range(3):
        lc, lg = cpu_step(xc), gpu_step(xg)
        numpy.testing.assert_allclose(lg.asnumpy(), lc.asnumpy(), rtol=1e-5)
    numpy.testing.assert_allclose(Wg.asnumpy(), Wc.asnumpy(), rtol=1e-5, atol=1e-6)
    assert Wg.device == GPU and gpu_step.counters.replays == 2


# ---- the op table's cases (tests/op_cases.py) on the GPU, float64, vs the CPU -----------
# Every case, in the default run. Each side runs inside its device's scope, so the index
# arrays a case builds (tnp.array([...])) live on the device of its operands. The CPU side is
# the reference interpreter (numpy), whatever TRACEGRAD_COMPILE says: it is the oracle here,
# and compiling ~170 CPU programs would cost minutes.
# Tolerance: float64 throughout agrees to 1e-9. A case that rounds through float32 (astype:
# x.astype(float32) * 3, back to float64) may differ by one float32 rounding of a product
# whose operands differ in their last bit (GPU and CPU order/fuse the multiplies differently):
# two float32 ulps, relative.
_RTOL = {"astype": 2 * float(numpy.finfo(numpy.float32).eps)}


def _op_case_on_gpu(case) -> None:
    from tracegrad.runtime import execute

    xs = case.inputs(seed=1)
    res = []
    for dev in (npx.cpu(), GPU):
        mode = execute.MODE
        execute.MODE = "never" if dev == npx.cpu() else mode
        try:
            with dev:
                args = [np.array(x, dtype=x.dtype) for x in xs]
                if case.grad:
                    for a in args:
                        a.attach_grad()
                with autograd.record():
                    y = case.tg(*args)
                    y = y[0] if isinstance(y, (list, tuple)) else y
                    head = (y * y).sum() if case.grad and y.dtype.kind == "f" else None
                grads = []
                if head is not None:
                    head.backward()
                    grads = [a.grad.asnumpy() for a in args]
                res.append((y.asnumpy(), grads, y.device))
        finally:
            execute.MODE = mode
    (a, ga, _), (b, gb, dev) = res
    assert dev == GPU, case.name
    rtol = _RTOL.get(case.name, 1e-9)
    numpy.testing.assert_allclose(b, a, rtol=rtol, atol=1e-9, err_msg=case.name)
    for p, q in zip(ga, gb):
        numpy.testing.assert_allclose(q, p, rtol=rtol, atol=1e-9, err_msg=case.name)


def _op_cases(group: str) -> list:
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import op_cases

    nn_linalg = {c.name for c in op_cases.NN + op_cases.LINALG}
    if group == "core":
        return [c for c in op_cases.ALL if c.name not in nn_linalg]
    return [c for c in op_cases.ALL if c.name in nn_linalg]


@pytest.mark.parametrize("group", ["core", "nn_linalg"])
def test_op_cases_all_on_gpu(group: str):
    """Every op case (forward and gradient, pick and one_hot included) on the simulated GPU,
    in two groups (tests/test_cuda_sim.py runs them in separate processes)."""
    failures = []
    for case in _op_cases(group):
        try:
            _op_case_on_gpu(case)
        except Exception as exc:  # collect all, report together
            failures.append(f"{case.name}: {type(exc).__name__}: {str(exc)[:400]}")
    assert not failures, "\n".join(failures)


def test_random_sampling_on_a_device():
    np.random.seed(3)
    a = np.random.uniform(size=(2, 3), device=GPU)
    np.random.seed(3)
    b = np.random.uniform(size=(2, 3))
    assert a.device == GPU and b.device == npx.cpu()
    numpy.testing.assert_array_equal(a.asnumpy(), b.asnumpy())  # the same numbers everywhere
    loc = np.zeros((3,), device=GPU)
    loc.attach_grad()
    with autograd.record():
        s = np.random.normal(loc, 1.0, size=(3,))  # reparameterised: the noise follows loc
    assert s.device == GPU
    with GPU:
        assert np.random.normal(size=(2,)).device == GPU


def test_autograd_function_on_gpu():
    class Square(autograd.Function):
        def forward(self, x):
            self.save_for_backward(x)
            return x * x

        def backward(self, dy):
            (x,) = self.saved_tensors
            return 2 * x * dy

    x = np.array([1.0, 2.0, 3.0], device=GPU)
    x.attach_grad()
    with autograd.record():
        y = Square()(x) * 3
    y.backward()
    assert y.device == GPU and x.grad.device == GPU
    numpy.testing.assert_allclose(x.grad.asnumpy(), [6, 12, 18])


def test_wait_to_read_and_waitall():
    x = np.array(f32(8), device=GPU)
    y = np.exp(x)
    assert y._data is None
    y.wait_to_read()
    assert cg.runtime._device.is_device_array(y._data)
    npx.waitall()


def test_grad_of_constant_gradient_stays_on_device():
    x = np.array(f32(3), device=GPU)
    x.attach_grad()
    with autograd.record():
        y = x.sum()
    (g,) = autograd.grad(y, [x])
    assert g.device == GPU
    numpy.testing.assert_allclose(g.asnumpy(), numpy.ones(3, numpy.float32))


# ---- numpy/linalg ops (issue 9): host rows between device kernels -----------------------------
def test_numpy_linalg_rows_run_as_host_steps_on_gpu():
    def fn(a, b, s):
        spd = np.matmul(a, np.swapaxes(a, -1, -2)) + np.array(numpy.eye(3, dtype=numpy.float32) * 3, device=a.device)
        w, v = np.linalg.eigh(spd)
        u, sv, vh = np.linalg.svd(b)
        sign, logdet = np.linalg.slogdet(spd)
        out = (np.einsum("bij,bjk->bik", a, b).sum() + np.linalg.inv(spd).sum() + np.linalg.det(spd).sum()
               + np.linalg.solve(spd, b).sum() + np.linalg.cholesky(spd).sum() + w.sum() + (v * v).sum()
               + sv.sum() + (u * u).sum() + (vh * vh).sum() + logdet.sum() + np.linalg.norm(b)
               + np.cumsum(s, axis=1).sum() + (np.tril(s, -1) * s).sum() + (np.sort(s, axis=0) ** 2).sum()
               + (npx.topk(s, k=2, ret_typ="value") ** 2).sum() + (np.pad(s, 1, mode="reflect") ** 2).sum())
        return out

    compare(fn, f32(2, 3, 3), f32(2, 3, 4), f32(3, 4), rtol=1e-4, atol=1e-4)


# ---- nn ops (issue 9): rows without a CUDA rendering run as host steps, values agree ----
def test_nn_ops_run_on_gpu_as_host_steps():
    def net(x, w, g, b):
        h = npx.convolution(x, w, kernel=(3, 3), pad=(1, 1), num_filter=2, no_bias=True)
        h = npx.layer_norm(h, g, b)
        h = npx.leaky_relu(h, act_type="gelu")
        return npx.pooling(h, kernel=(2, 2), stride=(2, 2), pool_type="max").sum()

    compare(net, f32(1, 2, 4, 4), f32(2, 2, 3, 3), f32(4), f32(4), rtol=1e-4, atol=1e-5)
