"""batch_norm's running statistics in the record scope: no sync point of their own.

A training step of conv-BN blocks (W9's shape of work) used to materialize each running
statistic at its batch_norm call: every call ran a program recomputing the whole forward
so far, and the step ran one program per batch_norm plus the backward (17 growing programs
for W9). The update now waits for the next sync point and is computed there, in the same
program, into the running statistic's own buffer.
"""

from __future__ import annotations

import numpy
import pytest

from tracegrad import autograd, npx
from tracegrad import np as tnp
from tracegrad.runtime import execute as ex
from tracegrad.tracer import fastgrad, lazy

SHAPE = (8, 6, 10, 10)  # above the small-value eager limit: the forward stays lazy


def _net(blocks: int = 2):
    rs = numpy.random.RandomState(5)
    x = tnp.array(rs.uniform(-1, 1, SHAPE).astype(numpy.float32))
    c = SHAPE[1]
    params = []
    for _ in range(blocks):
        w = tnp.array((rs.standard_normal((c, c, 3, 3)) * 0.2).astype(numpy.float32))
        g = tnp.array(rs.uniform(0.5, 1.5, c).astype(numpy.float32))
        b = tnp.array(rs.uniform(-0.2, 0.2, c).astype(numpy.float32))
        for p in (w, g, b):
            p.attach_grad()
        params.append((w, g, b, tnp.zeros((c,)), tnp.ones((c,))))

    def step():
        with autograd.record():
            h = x
            for w, g, b, rm, rv in params:
                z = npx.convolution(h, w, None, kernel=(3, 3), pad=(1, 1), num_filter=c, no_bias=True)
                h = npx.relu(npx.batch_norm(z, g, b, rm, rv, eps=1e-5, fix_gamma=False) + h)
            loss = (h * h).mean()
        loss.backward()
        return loss

    return step, params


def _counting(monkeypatch) -> list:
    runs = []
    for mod in (lazy, fastgrad):  # the two callers of the runtime in the record scope
        def spy(trace, *a, _real=mod.execute, **k):
            runs.append(len(trace.eqns))
            return _real(trace, *a, **k)

        monkeypatch.setattr(mod, "execute", spy)
    return runs


def _values(params) -> list:
    return [a.asnumpy() for p in params for a in (p[0].grad, p[1].grad, p[2].grad, p[3], p[4])]


def test_a_conv_bn_step_is_one_program_and_matches_the_sync_path(monkeypatch):
    step, params = _net()
    runs = _counting(monkeypatch)
    addr = lambda a: a._data.__array_interface__["data"][0]  # noqa: E731  (holding the buffer would defer nothing)
    bufs = [(addr(p[3]), addr(p[4])) for p in params]
    for i in range(3):
        del runs[:]
        step()
        assert len(runs) == 1, f"step {i}: {len(runs)} programs ({runs} eqns): a sync point per batch_norm"
    assert [(addr(p[3]), addr(p[4])) for p in params] == bufs, "the running statistics' buffers were replaced"
    got = _values(params)

    monkeypatch.setattr("tracegrad.npx_norm.write_later", lambda dst, value: False)  # the sync path
    step2, params2 = _net()
    for _ in range(3):
        step2()
    for a, b in zip(got, _values(params2)):
        numpy.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-7)
    assert not numpy.allclose(got[3], 0.0)  # the running mean moved


@pytest.fixture()
def interpreted(monkeypatch):  # the order of writes and reads is what these check: no compiles
    monkeypatch.setattr(ex, "MODE", "never")


def test_a_read_before_backward_sees_the_update(interpreted):
    step, params = _net(1)
    w, g, b, rm, rv = params[0]
    x = tnp.array(numpy.random.RandomState(1).uniform(-1, 1, SHAPE).astype(numpy.float32))
    with autograd.record():
        z = npx.convolution(x, w, None, kernel=(3, 3), pad=(1, 1), num_filter=SHAPE[1], no_bias=True)
        y = npx.batch_norm(z, g, b, rm, rv, eps=1e-5, fix_gamma=False)
        assert lazy.has_pending_writes()
        zn = z.asnumpy()
        m = zn.mean((0, 2, 3))
        numpy.testing.assert_allclose(rm.asnumpy(), 0.1 * m, rtol=1e-5, atol=1e-7)
        numpy.testing.assert_allclose(rv.asnumpy(), 0.9 + 0.1 * zn.var((0, 2, 3)), rtol=1e-5)
        loss = (y * y).mean()
    loss.backward()
    assert not lazy.has_pending_writes()
    numpy.testing.assert_allclose(rm.asnumpy(), 0.1 * m, rtol=1e-5, atol=1e-7)  # written once


@pytest.mark.parametrize("hold", ["view", "numpy"])
def test_a_held_buffer_is_written_at_once(hold, interpreted):
    """A view of the running mean (or its numpy buffer) would read old values meanwhile."""
    step, params = _net(1)
    w, g, b, rm, rv = params[0]
    other = rm[1:] if hold == "view" else numpy.asarray(rm)
    x = tnp.array(numpy.random.RandomState(1).uniform(-1, 1, SHAPE).astype(numpy.float32))
    with autograd.record():
        z = npx.convolution(x, w, None, kernel=(3, 3), pad=(1, 1), num_filter=SHAPE[1], no_bias=True)
        npx.batch_norm(z, g, b, rm, rv, eps=1e-5, fix_gamma=False)
    assert rm._data is not None
    m = z.asnumpy().mean((0, 2, 3))
    numpy.testing.assert_allclose(numpy.asarray(other), (0.1 * m)[1:] if hold == "view" else 0.1 * m,
                                  rtol=1e-5, atol=1e-7)
