"""Op cases of the nn ops (issue 9): forward against straightforward numpy references
(loops over kernel windows), gradients by central differences, and second order: the
`_second` cases return a create_graph gradient, so their gradient check differentiates the
backward rows (conv/pool backward, normalizations, activations, softmax) numerically.
"""

from __future__ import annotations

import itertools
import math

import numpy

from tracegrad import autograd, npx
from tracegrad import np as tnp
from tracegrad.ir import Op

from op_cases import Case


# ---- references ---------------------------------------------------------------------------
def ref_conv(x, w, stride=None, pad=None, dilate=None, groups=1):
    nd = x.ndim - 2
    stride, pad, dilate = stride or (1,) * nd, pad or (0,) * nd, dilate or (1,) * nd
    xp = numpy.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pad])
    k = w.shape[2:]
    out = [(xp.shape[2 + i] - dilate[i] * (k[i] - 1) - 1) // stride[i] + 1 for i in range(nd)]
    n, f = x.shape[0], w.shape[0]
    cg, fg = x.shape[1] // groups, f // groups
    y = numpy.zeros((n, f) + tuple(out), numpy.float64)
    for o in itertools.product(*[range(m) for m in out]):
        win = (slice(None), slice(None)) + tuple(
            slice(o[i] * stride[i], o[i] * stride[i] + dilate[i] * (k[i] - 1) + 1, dilate[i]) for i in range(nd)
        )
        patch = xp[win]
        for g in range(groups):
            pg = patch[:, g * cg:(g + 1) * cg].reshape(n, -1)
            wg = w[g * fg:(g + 1) * fg].reshape(fg, -1)
            y[(slice(None), slice(g * fg, (g + 1) * fg)) + o] = pg @ wg.T
    return y.astype(x.dtype)


def ref_deconv(x, w, stride, pad, adj=None, dilate=None, groups=1):
    nd = x.ndim - 2
    adj, dilate = adj or (0,) * nd, dilate or (1,) * nd
    k = w.shape[2:]
    full = [stride[i] * (x.shape[2 + i] - 1) + dilate[i] * (k[i] - 1) + 1 for i in range(nd)]
    cg, fg = x.shape[1] // groups, w.shape[1]
    y = numpy.zeros((x.shape[0], fg * groups) + tuple(f + a for f, a in zip(full, adj)), numpy.float64)
    for i in itertools.product(*[range(m) for m in x.shape[2:]]):
        for kk in itertools.product(*[range(m) for m in k]):
            pos = tuple(i[d] * stride[d] + kk[d] * dilate[d] for d in range(nd))
            for g in range(groups):
                xi = x[(slice(None), slice(g * cg, (g + 1) * cg)) + i]  # (N, cg)
                wk = w[(slice(g * cg, (g + 1) * cg), slice(None)) + kk]  # (cg, fg)
                y[(slice(None), slice(g * fg, (g + 1) * fg)) + pos] += xi @ wk
    crop = (slice(None), slice(None)) + tuple(slice(pad[d], y.shape[2 + d] - pad[d]) for d in range(nd))
    return y[crop].astype(x.dtype)


def ref_pool(x, kernel, stride=None, pad=None, pool_type="max", full=False, count_include_pad=True, p=None):
    nd = x.ndim - 2
    stride, pad = stride or (1,) * nd, pad or (0,) * nd
    size = x.shape[2:]
    out = []
    for i in range(nd):
        span = size[i] + 2 * pad[i] - kernel[i]
        out.append((math.ceil(span / stride[i]) if full else span // stride[i]) + 1)
    y = numpy.zeros(x.shape[:2] + tuple(out), numpy.float64)
    for o in itertools.product(*[range(m) for m in out]):
        starts = [o[i] * stride[i] - pad[i] for i in range(nd)]
        inside = tuple(slice(max(s, 0), min(s + kernel[i], size[i])) for i, s in enumerate(starts))
        vals = x[(slice(None), slice(None)) + inside].reshape(x.shape[:2] + (-1,)).astype(numpy.float64)
        if pool_type == "max":
            r = vals.max(-1)
        elif pool_type == "sum":
            r = vals.sum(-1)
        elif pool_type == "lp":
            s = (vals ** p).sum(-1)
            r = numpy.sign(s) * numpy.abs(s) ** (1.0 / p)
        else:
            lo = [-pad[i] if count_include_pad else 0 for i in range(nd)]
            hi = [size[i] + pad[i] if count_include_pad else size[i] for i in range(nd)]
            cnt = numpy.prod([min(s + kernel[i], hi[i]) - max(s, lo[i]) for i, s in enumerate(starts)])
            r = vals.sum(-1) / cnt
        y[(slice(None), slice(None)) + o] = r
    return y.astype(x.dtype)


def _norm(x, axes, eps):
    m = x.mean(axis=axes, keepdims=True)
    v = ((x - m) ** 2).mean(axis=axes, keepdims=True)
    return (x - m) / numpy.sqrt(v + eps)


def _chan(v, nd):
    return v.reshape((1, -1) + (1,) * (nd - 2))


def ref_batch_norm(x, g, b, eps=1e-3, fix_gamma=False):
    g = numpy.ones_like(g) if fix_gamma else g
    return (_norm(x, (0,) + tuple(range(2, x.ndim)), eps) * _chan(g, x.ndim) + _chan(b, x.ndim)).astype(x.dtype)


def ref_layer_norm(x, g, b, eps=1e-5):
    return (_norm(x, (-1,), eps) * g + b).astype(x.dtype)


def ref_group_norm(x, g, b, groups, eps=1e-3):
    xg = x.reshape(x.shape[0], groups, -1)
    return (_norm(xg, (2,), eps).reshape(x.shape) * _chan(g, x.ndim) + _chan(b, x.ndim)).astype(x.dtype)


def ref_instance_norm(x, g, b, eps=1e-3):
    return (_norm(x, tuple(range(2, x.ndim)), eps) * _chan(g, x.ndim) + _chan(b, x.ndim)).astype(x.dtype)


_erf = numpy.vectorize(math.erf)


def _softmax(x, axis=-1):
    e = numpy.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def ref_masked_softmax(x, mask, axis=-1, log=False):
    xm = numpy.where(mask, x, -numpy.inf)
    with numpy.errstate(invalid="ignore"):
        e = numpy.where(mask, numpy.exp(xm - xm.max(axis=axis, keepdims=True)), 0.0)
    s = e.sum(axis=axis, keepdims=True)
    out = e / numpy.where(s == 0, 1.0, s)
    return numpy.where(mask, numpy.log(numpy.where(mask, out, 1.0)), -numpy.inf) if log else out


# ---- cases ----------------------------------------------------------------------------------
def _case(name, tg, ref, shapes, *ops, **kw):
    return Case(name, tg, ref, shapes, ops=frozenset(ops), **kw)


def _second(f, n_in: int):
    """x... -> the create_graph gradient of sum(f(x...) * fixed weights), flattened: its
    gradient check is a second-order check of f."""

    def first(*xs):
        for x in xs:
            if not x._in_graph:
                x.attach_grad()
        with autograd.record():
            y = f(*xs)
            w = numpy.random.RandomState(7).uniform(0.5, 1.5, y.shape)
            w = tnp.array(w, dtype=y.dtype, device=y.device)
            loss = (y * w).sum()
        gs = autograd.grad(loss, list(xs[:n_in]), create_graph=True)
        return tnp.concatenate([g.reshape(-1) for g in gs])

    return first


def _conv(stride=None, pad=None, dilate=None, groups=1, bias=False):
    def tg(x, w, *b):
        k = w.shape[2:]
        return npx.convolution(x, w, b[0] if b else None, kernel=k, stride=stride, pad=pad, dilate=dilate,
                               num_filter=w.shape[0], num_group=groups, no_bias=not b)

    def ref(x, w, *b):
        y = ref_conv(x, w, stride, pad, dilate, groups)
        return y + b[0].reshape((1, -1) + (1,) * (x.ndim - 2)) if b else y

    return tg, ref


CONV = []
for _label, _xs, _ws, _kw in [
    ("1d", (2, 3, 7), (4, 3, 3), dict(stride=(2,), pad=(1,))),
    ("2d", (2, 3, 5, 6), (4, 3, 3, 2), dict(pad=(1, 0))),
    ("2d_stride_dilate", (1, 2, 7, 7), (3, 2, 2, 3), dict(stride=(2, 1), pad=(1, 2), dilate=(2, 1))),
    ("2d_groups", (2, 4, 4, 4), (6, 2, 2, 2), dict(groups=2, stride=(1, 2))),
    ("3d", (1, 2, 4, 3, 4), (2, 2, 2, 2, 3), dict(pad=(1, 0, 1))),
]:
    _tg, _ref = _conv(**_kw)
    CONV.append(_case(f"convolution[{_label}]", _tg, _ref, (_xs, _ws), Op.CONV))
_tg, _ref = _conv(pad=(1, 1), bias=True)
CONV.append(_case("convolution[bias]", _tg, _ref, ((2, 2, 4, 4), (3, 2, 3, 3), (3,)), Op.CONV, Op.ADD))


def _deconv(stride, pad, adj=None, dilate=None, groups=1, target=None):
    def tg(x, w):
        return npx.deconvolution(x, w, kernel=w.shape[2:], stride=stride, pad=pad, adj=adj, dilate=dilate,
                                 num_filter=w.shape[1] * groups, num_group=groups, target_shape=target)

    def ref(x, w):
        if target is None:
            return ref_deconv(x, w, stride, pad, adj, dilate, groups)
        full = [stride[i] * (x.shape[2 + i] - 1) + w.shape[2 + i] for i in range(len(stride))]
        tot = [f - t for f, t in zip(full, target)]
        return ref_deconv(x, w, stride, tuple((t + 1) // 2 for t in tot), tuple(t % 2 for t in tot), dilate, groups)

    return tg, ref


DECONV = []
for _label, _xs, _ws, _kw in [
    ("2d", (2, 3, 3, 4), (3, 2, 3, 3), dict(stride=(2, 2), pad=(1, 0))),
    ("2d_adj", (1, 2, 3, 3), (2, 3, 2, 2), dict(stride=(2, 3), pad=(0, 1), adj=(1, 2))),
    ("1d_dilate_groups", (2, 4, 4), (4, 1, 3), dict(stride=(1,), pad=(1,), dilate=(2,), groups=2)),
    ("2d_target_shape", (1, 2, 3, 3), (2, 2, 3, 3), dict(stride=(2, 2), pad=(0, 0), target=(5, 6))),
]:
    _tg, _ref = _deconv(**_kw)
    DECONV.append(_case(f"deconvolution[{_label}]", _tg, _ref, (_xs, _ws), Op.CONV_BWD_DATA))


def _pool(kernel, stride=None, pad=None, pool_type="max", conv="valid", cip=True, p=None, global_pool=False):
    def tg(x):
        return npx.pooling(x, kernel=kernel, stride=stride, pad=pad, pool_type=pool_type, pooling_convention=conv,
                           count_include_pad=cip, p_value=p, global_pool=global_pool)

    def ref(x):
        if global_pool:
            return ref_pool(x, x.shape[2:], None, None, pool_type, False, cip, p)
        return ref_pool(x, kernel, stride, pad, pool_type, conv == "full", cip, p)

    return tg, ref


POOL = []
for _label, _shape, _args, _kw in [
    ("max_2d", (2, 3, 6, 6), ((2, 2), (2, 2)), {}),
    ("max_2d_overlap_pad", (1, 2, 5, 5), ((3, 3), (2, 2), (1, 1)), {}),
    ("max_1d_full", (2, 2, 7), ((2,), (2,)), dict(conv="full")),
    ("max_3d", (1, 2, 4, 4, 3), ((2, 2, 2), (2, 2, 1)), {}),
    ("avg_2d_pad", (1, 2, 5, 5), ((3, 3), (2, 2), (1, 1)), dict(pool_type="avg")),
    ("avg_2d_pad_nocount", (1, 2, 5, 5), ((3, 3), (2, 2), (1, 1)), dict(pool_type="avg", cip=False)),
    ("avg_2d_full", (1, 1, 5, 5), ((2, 2), (2, 2)), dict(pool_type="avg", conv="full")),
    ("sum_1d", (2, 3, 6), ((3,), (1,), (1,)), dict(pool_type="sum")),
    ("avg_global", (2, 3, 4, 5), ((1, 1),), dict(pool_type="avg", global_pool=True)),
    ("max_global", (2, 3, 4, 5), ((1, 1),), dict(global_pool=True)),
    ("lp1", (1, 2, 4, 4), ((2, 2), (2, 2)), dict(pool_type="lp", p=1)),
    ("lp2", (1, 2, 4, 4), ((2, 2), (2, 2)), dict(pool_type="lp", p=2)),
    ("lp3", (1, 2, 4, 4), ((2, 2), (1, 1)), dict(pool_type="lp", p=3)),
    ("lp3_negative", (1, 2, 4, 4), ((2, 2), (1, 1)), dict(pool_type="lp", p=3)),
]:
    _tg, _ref = _pool(*_args, **_kw)
    # lp3 is cbrt(sum of cubes): infinitely steep where a window's sum is 0, which mixed signs
    # reach (at 2^15 elements some windows were exactly {-0.2, 0.2, -0.2, 0.2}: a NaN
    # gradient, and float32 cancellation far above its ulps); so one sign per case
    _lo, _hi = {"lp3": (0.2, 2.0), "lp3_negative": (-2.0, -0.2)}.get(_label, (-2.0, 2.0))
    POOL.append(_case(f"pooling[{_label}]", _tg, _ref, (_shape,), Op.POOL, lo=_lo, hi=_hi,
                      positive_gap=0.2 if "lp" in _label else 0.0))


def _bn(fix_gamma=False, axis=1):
    def tg(x, g, b):
        c = x.shape[axis]
        with autograd.train_mode():  # batch statistics also in the forward test's unrecorded run
            return npx.batch_norm(x, g, b, tnp.zeros((c,), dtype=x.dtype, device=x.device),
                                  tnp.ones((c,), dtype=x.dtype, device=x.device), fix_gamma=fix_gamma, axis=axis)

    def ref(x, g, b):
        return ref_batch_norm(numpy.moveaxis(x, axis, 1), g, b, fix_gamma=fix_gamma).swapaxes(1, axis) if axis != 1 \
            else ref_batch_norm(x, g, b, fix_gamma=fix_gamma)

    return tg, ref


def _predict(f, *xs, **kw):
    with autograd.predict_mode():
        return f(*xs, **kw)


def _bn_predict(x, g, b, m, v):
    with autograd.predict_mode():
        return npx.batch_norm(x, g, b, m, v * v + 0.5, fix_gamma=False)


def _bn_predict_ref(x, g, b, m, v):
    return ((x - _chan(m, x.ndim)) / numpy.sqrt(_chan(v * v + 0.5, x.ndim) + 1e-3) * _chan(g, x.ndim)
            + _chan(b, x.ndim)).astype(x.dtype)


NORM = [
    _case("batch_norm[train]", *_bn(), ((4, 3, 2, 2), (3,), (3,)), Op.REDUCE_SUM),
    _case("batch_norm[train_fix_gamma]", *_bn(fix_gamma=True), ((3, 2, 3), (2,), (2,))),
    _case("batch_norm[train_axis_last]", *_bn(axis=2), ((3, 2, 4), (4,), (4,))),
    _case("batch_norm[predict]", _bn_predict, _bn_predict_ref, ((2, 3, 2), (3,), (3,), (3,), (3,))),
    _case("layer_norm", lambda x, g, b: npx.layer_norm(x, g, b), ref_layer_norm, ((2, 3, 4), (4,), (4,))),
    _case("layer_norm[axis1]", lambda x, g, b: npx.layer_norm(x, g, b, axis=1),
          lambda x, g, b: ref_layer_norm(x.swapaxes(1, 2), g, b).swapaxes(1, 2), ((2, 3, 4), (3,), (3,))),
    _case("group_norm", lambda x, g, b: npx.group_norm(x, g, b, num_groups=2),
          lambda x, g, b: ref_group_norm(x, g, b, 2), ((2, 4, 3), (4,), (4,))),
    _case("instance_norm", npx.instance_norm, ref_instance_norm, ((2, 3, 2, 3), (3,), (3,))),
]

_S = (3, 4)
ACT = [
    _case("leaky_relu[leaky]", lambda x: npx.leaky_relu(x, slope=0.1),
          lambda x: numpy.where(x > 0, x, 0.1 * x), (_S,), positive_gap=0.1),
    _case("leaky_relu[prelu]", lambda x, g: npx.leaky_relu(x, g, act_type="prelu"),
          lambda x, g: numpy.where(x > 0, x, g[None, :, None] * x), ((2, 3, 2), (3,)), positive_gap=0.1),
    _case("leaky_relu[elu]", lambda x: npx.leaky_relu(x, act_type="elu", slope=0.7),
          lambda x: numpy.where(x > 0, x, 0.7 * numpy.expm1(x)), (_S,), positive_gap=0.1),
    _case("leaky_relu[selu]", lambda x: npx.leaky_relu(x, act_type="selu"),
          lambda x: 1.0507009873554805 * numpy.where(x > 0, x, 1.6732632423543772 * numpy.expm1(x)), (_S,),
          positive_gap=0.1),
    _case("leaky_relu[gelu]", lambda x: npx.leaky_relu(x, act_type="gelu"),
          lambda x: (0.5 * x * (1 + _erf(x / math.sqrt(2)))).astype(x.dtype), (_S,), Op.ERF, lo=-3.0, hi=3.0),
    _case("leaky_relu[rrelu_predict]", lambda x: _predict(npx.leaky_relu, x, act_type="rrelu"),
          lambda x: numpy.where(x > 0, x, (0.125 + 0.334) / 2 * x), (_S,), grad=False, positive_gap=0.1),
    _case("erf", npx.erf, lambda x: _erf(x).astype(x.dtype), (_S,), Op.ERF, lo=-2.5, hi=2.5),
    _case("activation[silu]", lambda x: npx.activation(x, act_type="silu"), lambda x: x / (1 + numpy.exp(-x)),
          (_S,)),
]

_LEN = numpy.array([2, 4, 0])
_MASK = numpy.array([[1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 0, 1]])


def _len_mask(axis_len, lengths):
    return numpy.arange(axis_len)[None, :] < lengths[:, None]


SOFTMAX = [
    _case("softmax[length]",
          lambda x: npx.softmax(x, length=tnp.array(_LEN, dtype="int32", device=x.device), use_length=True),
          lambda x: ref_masked_softmax(x, _len_mask(4, _LEN)), (_S,)),
    _case("softmax[length_axis0_temperature]",
          lambda x: npx.softmax(x, length=tnp.array([1, 3, 2, 0], dtype="int64", device=x.device), axis=0,
                                use_length=True, temperature=2.0),
          lambda x: ref_masked_softmax(x / 2.0, _len_mask(3, numpy.array([1, 3, 2, 0])).T, axis=0), (_S,)),
    _case("log_softmax[length]",
          lambda x: npx.log_softmax(x, length=tnp.array([2, 4, 1], dtype="int32", device=x.device),
                                    use_length=True)[:, :1],
          lambda x: ref_masked_softmax(x, _len_mask(4, numpy.array([2, 4, 1])), log=True)[:, :1], (_S,)),
    _case("masked_softmax[bool]", lambda x: npx.masked_softmax(x, tnp.array(_MASK.astype(bool), device=x.device)),
          lambda x: ref_masked_softmax(x, _MASK.astype(bool)), (_S,)),
    _case("masked_softmax[float_mask_temperature]",
          lambda x: npx.masked_softmax(x, tnp.array(_MASK, dtype="float32", device=x.device),
                                           temperature=0.5),
          lambda x: ref_masked_softmax(x / 0.5, _MASK.astype(bool)), (_S,)),
    _case("masked_log_softmax",
          lambda x: npx.masked_log_softmax(x, tnp.array(_MASK.astype(bool), device=x.device))[0, [0, 2, 3]],
          lambda x: ref_masked_softmax(x, _MASK.astype(bool), log=True)[0, [0, 2, 3]], (_S,)),
    _case("masked_log_softmax[full]",
          lambda x: npx.masked_log_softmax(x, tnp.array(_MASK.astype(bool), device=x.device)),
          lambda x: ref_masked_softmax(x, _MASK.astype(bool), log=True), (_S,), grad=False),
    _case("log_softmax[length_full]",
          lambda x: npx.log_softmax(x, length=tnp.array(_LEN, dtype="int32", device=x.device), use_length=True),
          lambda x: ref_masked_softmax(x, _len_mask(4, _LEN), log=True), (_S,), grad=False),
]

_IDS = numpy.array([[0, 2, 2], [4, 0, 2]])
MISC = [
    _case("embedding", lambda w: npx.embedding(tnp.array(_IDS, device=w.device), w, input_dim=5, output_dim=3),
          lambda w: w[_IDS], ((5, 3),), Op.GATHER),
    _case("fully_connected[flatten]", lambda x, w, b: npx.fully_connected(x, w, b, num_hidden=4, no_bias=False),
          lambda x, w, b: x.reshape(2, -1) @ w.T + b, ((2, 3, 2), (4, 6), (4,)), Op.MATMUL),
    _case("fully_connected[no_flatten]", lambda x, w: npx.fully_connected(x, w, num_hidden=4, flatten=False),
          lambda x, w: x @ w.T, ((2, 3, 2), (4, 2)), Op.MATMUL),
    _case("sequence_mask[axis0]",
          lambda x: npx.sequence_mask(x, tnp.array([1.0, 3.0], device=x.device), use_sequence_length=True,
                                      value=-1.0),
          lambda x: numpy.where((numpy.arange(3)[:, None] < numpy.array([1, 3])[None, :])[:, :, None], x, -1.0),
          ((3, 2, 2),), Op.SELECT),
    _case("sequence_mask[axis1]",
          lambda x: npx.sequence_mask(x, tnp.array([2, 0], device=x.device), use_sequence_length=True, axis=1),
          lambda x: numpy.where(numpy.arange(3)[None, :] < numpy.array([2, 0])[:, None], x, 0.0), ((2, 3),)),
]

# second order: the gradient of the gradient, numerically (the backward rows' own checks)
SECOND_ORDER = [
    _case("second[convolution]", _second(CONV[1].tg, 2), None, ((1, 2, 4, 4), (3, 2, 3, 2)),
          Op.CONV_BWD_DATA, Op.CONV_BWD_WEIGHT),
    _case("second[convolution_stride_groups]", _second(CONV[3].tg, 2), None, ((1, 4, 4, 4), (2, 2, 2, 2))),
    _case("second[deconvolution]", _second(DECONV[0].tg, 2), None, ((1, 3, 2, 2), (3, 2, 3, 3))),
    _case("second[max_pooling]", _second(lambda x: POOL[1].tg(x) ** 2, 1), None, ((1, 2, 5, 5),),
          Op.POOL_MAX_BWD, lo=-2.0, hi=2.0),
    _case("third[max_pooling]", _second(_second(lambda x: POOL[0].tg(x) ** 3, 1), 1), None, ((1, 1, 4, 4),),
          Op.POOL_MAX_SELECT, lo=-2.0, hi=2.0),
    _case("second[avg_pooling]", _second(lambda x: POOL[5].tg(x) ** 2, 1), None, ((1, 2, 5, 5),), Op.POOL_BWD),
    _case("second[batch_norm]", _second(lambda x, g, b: NORM[0].tg(x, g, b), 3), None, ((3, 2, 1), (2,), (2,))),
    _case("second[layer_norm]", _second(NORM[4].tg, 3), None, ((1, 3, 4), (4,), (4,))),
    _case("second[group_norm]", _second(NORM[6].tg, 3), None, ((1, 4, 1), (4,), (4,))),
    _case("second[instance_norm]", _second(npx.instance_norm, 3), None, ((1, 2, 3), (2,), (2,))),
    _case("second[gelu]", _second(ACT[4].tg, 1), None, (_S,), Op.ERF, lo=-2.0, hi=2.0),
    _case("second[elu_selu]", _second(lambda x: ACT[2].tg(x) + ACT[3].tg(x), 1), None, (_S,), positive_gap=0.1),
    _case("second[masked_softmax]", _second(SOFTMAX[3].tg, 1), None, (_S,)),
    _case("second[softmax_length]", _second(SOFTMAX[0].tg, 1), None, (_S,)),
    _case("second[log_softmax]", _second(lambda x: npx.log_softmax(x, axis=0), 1), None, (_S,)),
]
for _a in ("sigmoid", "tanh", "softrelu", "softsign", "log_sigmoid", "mish", "silu"):
    SECOND_ORDER.append(_case(f"second[activation_{_a}]",
                              _second((lambda a: lambda x: npx.activation(x, act_type=a))(_a), 1), None, (_S,)))

NN: list[Case] = CONV + DECONV + POOL + NORM + ACT + SOFTMAX + MISC + SECOND_ORDER
