"""gluon.Block / HybridBlock: registration, names, deferred init, hooks, hybridize, save/load."""

from __future__ import annotations

import io
import warnings

import numpy
import pytest

from tracegrad import autograd, gluon, np, npx, serialization
from tracegrad import initializer as init
from tracegrad.errors import UnsupportedError
from tracegrad.gluon import nn
from tracegrad.gluon.parameter import DeferredInitializationError


def _mlp(hybrid=True):
    net = nn.HybridSequential() if hybrid else nn.Sequential()
    net.add(nn.Dense(4, activation="relu"), nn.Dense(3, activation="tanh"), nn.Dense(2))
    return net


class Model(gluon.HybridBlock):
    def __init__(self):
        super().__init__()
        self.encoder = nn.HybridSequential()
        self.encoder.add(nn.Dense(6), nn.Dense(5, in_units=6))
        self.out = nn.Dense(2, use_bias=False)
        self.scale = gluon.Parameter("scale", shape=(1,), init=init.Constant(2.0))

    def forward(self, x):
        return self.out(self.encoder(x)) * self.scale.data()


def test_structural_names_and_select():
    net = Model()
    names = list(net.collect_params().keys())
    assert names == ["scale", "encoder.0.weight", "encoder.0.bias", "encoder.1.weight", "encoder.1.bias",
                     "out.weight"]
    assert list(net.collect_params(".*weight").keys()) == ["encoder.0.weight", "encoder.1.weight", "out.weight"]
    assert list(net.collect_params("encoder.1.bias|scale")) == ["scale", "encoder.1.bias"]
    assert net.out.weight.name == "weight" and isinstance(net.collect_params(), dict)
    assert net.encoder[1].weight.shape == (5, 6) and net.encoder[0].weight.shape == (6, -1)


def test_deferred_init_fills_shapes_at_first_forward():
    np.random.seed(0)
    net = Model()
    net.initialize()
    with pytest.raises(DeferredInitializationError):
        net.encoder[0].weight.data()
    x = np.array(numpy.random.RandomState(0).normal(size=(3, 2, 4)))
    y = net(x)
    assert y.shape == (3, 2)
    assert net.encoder[0].weight.shape == (6, 8) and net.out.weight.shape == (2, 5)
    w = [p.data().asnumpy().astype(numpy.float64) for p in net.collect_params().values()]
    scale, w0, b0, w1, b1, wo = w
    h = x.asnumpy().reshape(3, 8) @ w0.T + b0
    ref = ((h @ w1.T + b1) @ wo.T) * scale
    numpy.testing.assert_allclose(y.asnumpy(), ref, rtol=1e-5, atol=1e-6)
    assert numpy.abs(w0).max() <= 0.07 and numpy.all(b0 == 0)


def test_dense_shape_error_names_sizes():
    net = nn.Dense(3, in_units=4)
    net.initialize()
    with pytest.raises(ValueError, match="in_units=4"):
        net(np.ones((2, 5)))


def test_hybridized_equals_plain_and_compiles_once():
    np.random.seed(1)
    net = Model()
    net.initialize(init.Xavier())
    x = np.array(numpy.random.RandomState(1).normal(size=(4, 8)))
    plain = net(x).asnumpy()
    net.hybridize(static_alloc=True, static_shape=True)
    a = net(x).asnumpy()
    b = net(x).asnumpy()
    numpy.testing.assert_allclose(a, plain, rtol=1e-6, atol=1e-7)
    numpy.testing.assert_array_equal(a, b)
    c = net.jit_function.counters
    assert c.compiles == 1 and c.replays == 1
    assert "first call" in net.explain()
    # new parameter values are seen by the compiled program (read by identity, not baked)
    net.out.weight.set_data(net.out.weight.data() * 2)
    numpy.testing.assert_allclose(net(x).asnumpy(), 2 * plain, rtol=1e-5, atol=1e-6)
    assert net.jit_function.counters.compiles == 1
    # a new batch size is a new signature: one retrace, explained
    net(np.ones((2, 8)))
    assert net.jit_function.counters.compiles == 2 and "signature" in net.explain()
    # gradients through a hybridized block inside autograd.record equal the plain ones
    x.attach_grad()
    with autograd.record():
        net(x).sum().backward()
    g_h = x.grad.asnumpy().copy()
    net.hybridize(active=False)
    with autograd.record():
        net(x).sum().backward()
    numpy.testing.assert_allclose(g_h, x.grad.asnumpy(), rtol=1e-6)


def test_hooks_apply_and_handles():
    net = _mlp()
    net.initialize()
    seen = []
    h1 = net[1].register_forward_pre_hook(lambda b, inp: seen.append(("pre", inp[0].shape)))
    h2 = net[1].register_forward_hook(lambda b, inp, out: seen.append(("post", out.shape)))
    net(np.ones((2, 7)))
    assert seen == [("pre", (2, 4)), ("post", (2, 3))]
    h1.detach()
    with h2:
        net(np.ones((2, 7)))
    net(np.ones((2, 7)))
    assert seen[2:] == [("post", (2, 3))]
    kinds = []
    net.apply(lambda b: kinds.append(type(b).__name__))
    assert kinds == ["Activation", "Dense", "Activation", "Dense", "Dense", "HybridSequential"]


def test_sequential_index_slice_len_and_tuple_outputs():
    net = _mlp(hybrid=False)
    assert len(net) == 3 and isinstance(net[-1], nn.Dense)
    sub = net[1:]
    assert isinstance(sub, nn.Sequential) and len(sub) == 2 and sub[0] is net[1]

    class Two(gluon.Block):
        def forward(self, x):
            return x + 1, x * 2

    class Add(gluon.Block):
        def forward(self, a, b):
            return a + b

    seq = nn.Sequential()
    seq.add(Two(), Add())
    numpy.testing.assert_array_equal(seq(np.array([1.0, 2.0])).asnumpy(), [4.0, 7.0])


def test_lambda_identity_concatenate():
    numpy.testing.assert_array_equal(nn.Lambda("tanh")(np.array([0.0])).asnumpy(), [0.0])
    hl = nn.HybridLambda(lambda F, x: F.npx.relu(x) * 2)
    numpy.testing.assert_array_equal(hl(np.array([-1.0, 3.0])).asnumpy(), [0.0, 6.0])
    numpy.testing.assert_array_equal(nn.HybridLambda(lambda x: x - 1)(np.array([1.0])).asnumpy(), [0.0])
    with pytest.raises(ValueError, match="no np or npx function"):
        nn.Lambda("not_a_function")
    x = np.array([[1.0, -2.0]])
    assert nn.Identity()(x) is x
    cat = nn.HybridConcatenate(axis=1)
    cat.add(nn.Identity(), nn.HybridLambda(lambda x: x * 10))
    numpy.testing.assert_array_equal(cat(x).asnumpy(), [[1.0, -2.0, 10.0, -20.0]])
    cat.hybridize()
    numpy.testing.assert_array_equal(cat(x).asnumpy(), [[1.0, -2.0, 10.0, -20.0]])


def test_save_load_round_trip_and_file_format(tmp_path):
    np.random.seed(2)
    net = Model()
    net.initialize()
    x = np.ones((2, 8))
    y = net(x).asnumpy()
    f = str(tmp_path / "model.params")
    net.save_parameters(f)
    z = numpy.load(f)  # a plain numpy zip, as MXNet 2.x writes
    assert sorted(z.files) == sorted(net.collect_params().keys())
    net2 = Model()
    net2.load_parameters(f)  # deferred shapes come from the file
    numpy.testing.assert_array_equal(net2(x).asnumpy(), y)
    assert net2.encoder[0].weight.grad().shape == (6, 8)
    # missing / extra parameters
    numpy.savez(str(tmp_path / "part.npz"), **{"scale": z["scale"]})
    with pytest.raises(ValueError, match="missing"):
        Model().load_parameters(str(tmp_path / "part.npz"))
    Model().load_parameters(str(tmp_path / "part.npz"), allow_missing=True)
    extra = dict(z)
    extra["junk"] = numpy.ones(2)
    numpy.savez(str(tmp_path / "extra.npz"), **extra)
    with pytest.raises(ValueError, match="ignore_extra"):
        Model().load_parameters(str(tmp_path / "extra.npz"))
    Model().load_parameters(str(tmp_path / "extra.npz"), ignore_extra=True)


def test_load_legacy_binary_with_prefixed_names(tmp_path):
    np.random.seed(3)
    net = _mlp()
    net.initialize()
    x = np.ones((2, 7))
    y = net(x).asnumpy()
    values = [p.data().asnumpy() for p in net.collect_params().values()]
    # 1.x ParameterDict.save names, numbered by other counters than ours, with arg: prefixes
    old = ["arg:hybridsequential3_dense7_weight", "arg:hybridsequential3_dense7_bias",
           "hybridsequential3_dense8_weight", "hybridsequential3_dense8_bias",
           "hybridsequential3_dense9_weight", "hybridsequential3_dense9_bias"]
    f = str(tmp_path / "old.params")
    serialization.save_legacy(f, dict(zip(old, values)))
    net2 = _mlp()
    net2.load_parameters(f)
    numpy.testing.assert_array_equal(net2(x).asnumpy(), y)
    # names that match our own 1.x names are used directly
    f2 = str(tmp_path / "old2.params")
    params = net2.collect_params()
    serialization.save_legacy(f2, {p._structure: p.data().asnumpy() * 0 for p in params.values()})
    net2.load_parameters(f2)
    assert float(abs(net2(x)).sum()) == 0.0


def test_npx_save_savez_load(tmp_path):
    a = np.array([[1.0, 2.0]])
    npx.save(str(tmp_path / "one"), a)
    numpy.testing.assert_array_equal(npx.load(str(tmp_path / "one")).asnumpy(), a.asnumpy())
    npx.savez(str(tmp_path / "many"), a, b=np.zeros(3, dtype="int64"))
    d = npx.load(str(tmp_path / "many"))
    assert sorted(d) == ["arr_0", "b"] and d["b"].dtype == numpy.int64
    buf = io.BytesIO()
    serialization.save_legacy(buf, [numpy.arange(6, dtype=numpy.float64).reshape(2, 3)])
    buf.seek(0)
    (v,) = npx.load(buf)
    numpy.testing.assert_array_equal(v.asnumpy(), numpy.arange(6).reshape(2, 3))
    (tmp_path / "bad").write_bytes(b"hello world")
    with pytest.raises(serialization.FormatError, match="not an array file"):
        npx.load(str(tmp_path / "bad"))
    (tmp_path / "short").write_bytes(buf.getvalue()[:40])
    with pytest.raises(serialization.FormatError, match="truncated"):
        npx.load(str(tmp_path / "short"))


def test_share_parameters_cast_zero_grad():
    a, b = _mlp(), _mlp()
    a.initialize()
    a(np.ones((1, 7)))
    b.share_parameters(a.collect_params())
    assert b[0].weight is a[0].weight
    numpy.testing.assert_array_equal(a(np.ones((1, 7))).asnumpy(), b(np.ones((1, 7))).asnumpy())
    with pytest.warns(UserWarning, match="not in the current model"):
        b.share_parameters({"nope.weight": a[0].weight})
    a.collect_params().setattr("grad_req", "add")
    for _ in range(2):
        with autograd.record():
            a(np.ones((1, 7))).sum().backward()
    assert float(abs(a[2].weight.grad()).sum()) > 0
    a.zero_grad()
    assert all(float(abs(p.grad()).sum()) == 0 for p in a.collect_params().values())
    a.cast("float64")
    assert a(np.ones((1, 7), dtype="float64")).dtype == numpy.float64


def test_param_dict_1x_methods():
    net = _mlp()
    params = net.collect_params()
    params.initialize(init=init.One())
    net(np.ones((1, 7)))
    assert numpy.all(net[0].weight.data().asnumpy() == 1)
    old = net[0].weight._structure
    assert old.endswith("_weight") and params[old] is net[0].weight and params.get(old) is net[0].weight
    assert params.get("nope") is None and net[0].prefix == old[: -len("weight")]
    with pytest.raises(KeyError, match="no such parameter"):
        params["nope"]


def test_name_scope_gives_1x_prefixes():
    outer = nn.HybridSequential()
    with outer.name_scope():
        inner = nn.Dense(3)
    assert inner.prefix.startswith(outer.prefix) and inner.name.startswith(outer.name)
    assert inner.prefix.endswith("dense0_")


def test_legacy_hybrid_forward_block():
    class Old(gluon.HybridBlock):
        def __init__(self, **kw):
            super().__init__(**kw)
            with self.name_scope():
                self.weight = gluon.Parameter("weight", shape=(2,), init=init.Constant(3.0))

        def hybrid_forward(self, F, x, weight):
            return F.npx.relu(x) * weight

    blk = Old()
    blk.initialize()
    numpy.testing.assert_array_equal(blk(np.array([-1.0, 2.0])).asnumpy(), [0.0, 6.0])
    blk.hybridize()
    numpy.testing.assert_array_equal(blk(np.array([-1.0, 2.0])).asnumpy(), [0.0, 6.0])


def test_summary_prints_table(capsys):
    net = _mlp()
    net.initialize()
    net.summary(np.ones((2, 7)))
    out = capsys.readouterr().out
    assert "Dense-2" in out and "Dense-5" in out and "(2, 4)" in out and "Total params: " + str(7 * 4 + 4 + 4 * 3 + 3 + 3 * 2 + 2) in out


def test_unsupported_pieces_are_clear():
    with pytest.raises(UnsupportedError, match="HybridBlock"):
        gluon.SymbolBlock()
    with pytest.raises(UnsupportedError, match="save_parameters"):
        _mlp().export("x")
    with pytest.raises(NotImplementedError, match="forward"):
        gluon.Block()(np.ones(1))
    with pytest.raises(TypeError, match="Changing attribute type"):
        blk = gluon.Block()
        blk.child = nn.Dense(1)
        blk.child = 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        blk = gluon.Block()
        blk.child = nn.Dense(1)
        blk.child = None
        assert blk.collect_params() == {}


def test_1x_params_argument_shares_parameters():
    a = nn.Dense(3, in_units=2)
    b = nn.Dense(3, in_units=2, params=a.params)
    assert b.weight is a.weight and b.bias is a.bias
    a.initialize()
    numpy.testing.assert_array_equal(a(np.ones((1, 2))).asnumpy(), b(np.ones((1, 2))).asnumpy())
    c = nn.Dense(3, in_units=2, params=a.collect_params())
    assert c.weight is a.weight


def test_1x_custom_block_with_params_get():
    class MyDense(gluon.HybridBlock):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            with self.name_scope():
                self.weight = self.params.get("weight", shape=(units, -1))
                self.params.get("bias", shape=(units,), init="ones")
                self.scale = self.params.get_constant("scale", [2.0])

        def infer_shape(self, x):
            self.weight.shape = (self.weight.shape[0], x.shape[1])

        def hybrid_forward(self, F, x, weight, bias, scale):
            return F.np.dot(x, weight.T) * scale + bias

    blk = MyDense(3)
    blk.initialize(init.One())
    assert list(blk.collect_params()) == ["weight", "bias", "scale"]
    out = blk(np.ones((2, 4)))
    numpy.testing.assert_array_equal(out.asnumpy(), numpy.full((2, 3), 9.0))
    assert blk.params.get(blk.prefix + "bias") is blk.collect_params()["bias"]
