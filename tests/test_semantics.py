"""MXNet 2.x autograd semantics (shared/seed/MXNET_API.md tables 1-3, 2a-2f).

MXNet behaviours deliberately NOT copied (MXNET_API.md section 5 and 2.12), each pinned here:
- np.var / np.std / np.repeat have their true gradients (MXNet: zeros).
- np.prod's gradient is exact at zeros (MXNet: NaN/inf from out/x); its second derivative too.
- np.mean of float64 stays float64 (the 2.0.0b1 binary returns float32).
- a head gradient of the wrong shape raises ShapeError (MXNet accepts it silently).
- autograd.grad returns tracegrad ndarrays (the binary returns legacy NDArray).
- np-namespace ops have higher-order gradients (the binary: "non-differentiable").
- Function inputs get grad_req 'add' honoured and a 'null' input does not stop the
  inputs after it (MXNet's callback drops both).
Where MXNet's behaviour is itself the spec and we copy it: ties in max/min each get the
full gradient, maximum/minimum ties go to the left operand, relu'(0) = 0 but
d maximum(x, 0)/dx = 1 at 0, abs'(0) = 0, clip bounds inclusive.
"""

from __future__ import annotations

import threading

import numpy
import pytest

from tracegrad import DTypeError, GraphError, ShapeError, autograd, npx
from tracegrad import np

from mx_helpers import NO_INPUTS, _g, _leaf  # noqa: E402

# ---- grad_req ------------------------------------------------------------------------------
def test_grad_req_write_overwrites_even_user_edits() -> None:
    x = _leaf([1.0, 2.0])
    for _ in range(2):
        x.grad[:] = 100
        with autograd.record():
            y = x * x
        y.backward()
        assert _g(x) == [2.0, 4.0]


def test_grad_req_add_accumulates_from_whatever_the_buffer_holds() -> None:
    x = _leaf([1.0, 2.0], req="add")
    for _ in range(2):
        with autograd.record():
            y = x * x
        y.backward()
    assert _g(x) == [4.0, 8.0]
    x.grad[:] = 0
    with autograd.record():
        y = x * 3
    y.backward()
    assert _g(x) == [3.0, 3.0]


def test_grad_req_null_keeps_zero_buffer_and_others_still_get_gradients() -> None:
    x = _leaf([1.0, 2.0], req="null")
    w = _leaf([3.0, 4.0])
    with autograd.record():
        y = x * w
    y.backward()
    assert _g(x) == [0.0, 0.0] and _g(w) == [1.0, 2.0]


def test_null_everywhere_raises_no_inputs() -> None:
    x = _leaf([1.0, 2.0], req="null")
    with autograd.record():
        y = x * x
    with pytest.raises(GraphError, match=NO_INPUTS):
        y.backward()


def test_fan_out_accumulates_within_one_pass_whatever_the_req() -> None:
    x, y = _leaf([2.0]), _leaf([5.0])
    with autograd.record():
        z = x + x * y
    z.backward()
    assert _g(x) == [6.0] and _g(y) == [2.0]


def test_unknown_grad_req_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="bogus"):
        np.array([1.0]).attach_grad("bogus")


def test_attach_grad_again_resets_and_grad_is_a_live_handle() -> None:
    x = _leaf([1.0, 2.0])
    handle = x.grad
    with autograd.record():
        y = x * x
    y.backward()
    assert handle.asnumpy().tolist() == [2.0, 4.0]  # taken before backward, shows new values
    assert x.grad.dtype == x.dtype
    x.attach_grad()
    assert _g(x) == [0.0, 0.0]


def test_mark_variables_uses_the_callers_buffers() -> None:
    x = np.array([1.0, 2.0])
    buf = np.zeros((2,))
    autograd.mark_variables([x], [buf], "add")
    for _ in range(2):
        with autograd.record():
            y = x * x
        y.backward()
    assert buf.asnumpy().tolist() == [4.0, 8.0]


def test_drop_grad() -> None:
    x = _leaf([1.0])
    x.drop_grad()
    assert x.grad is None
    with pytest.raises(GraphError, match="Cannot DropGrads again"):
        x.drop_grad()
    a, w = _leaf([1.0, 2.0]), _leaf([1.0, 1.0])
    a.drop_grad()
    with autograd.record():
        y = a * w
    y.backward()  # later passes skip a
    assert a.grad is None and _g(w) == [1.0, 2.0]


def test_one_structure_with_other_variables_and_reqs() -> None:
    """The same recorded structure, with different leaves attached and reqs, run in turn."""
    for attach, want in [
        ({"x": "write", "y": "write"}, {"x": [3.0, 4.0], "y": [1.0, 2.0]}),
        ({"x": "write"}, {"x": [3.0, 4.0]}),
        ({"y": "add"}, {"y": [1.0, 2.0]}),
        ({"x": "null", "y": "add"}, {"x": [0.0, 0.0], "y": [1.0, 2.0]}),
        ({"x": "add", "y": "write"}, {"x": [3.0, 4.0], "y": [1.0, 2.0]}),
    ]:
        for _ in range(2):
            x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
            for name, req in attach.items():
                {"x": x, "y": y}[name].attach_grad(req)
            with autograd.record():
                z = x * y
            z.backward()
            for name, g in want.items():
                assert _g({"x": x, "y": y}[name]) == g, (attach, name)


# ---- graphs: retain, free, heads --------------------------------------------------------------
def test_retain_graph_allows_a_second_backward() -> None:
    x = _leaf([1.0, 2.0])
    with autograd.record():
        y = x * x
    y.backward(retain_graph=True)
    y.backward()
    assert _g(x) == [2.0, 4.0]


def test_backward_twice_raises_mxnet_text() -> None:
    x = _leaf([1.0, 2.0])
    with autograd.record():
        y = x * x
    y.backward()
    with pytest.raises(GraphError, match="Cannot differentiate node because it is not in a computational graph"):
        y.backward()


def test_backward_outside_record_and_under_train_mode_alone_raises() -> None:
    x = _leaf([1.0])
    for scope in (autograd.pause, autograd.train_mode, None):
        if scope is None:
            y = x * 2
        else:
            with scope():
                y = x * 2
        with pytest.raises(GraphError, match="not in a computational graph"):
            y.backward()


def test_nothing_attached_records_nothing() -> None:
    w = np.array([1.0, 2.0])
    with autograd.record():
        y = w * 2
    with pytest.raises(GraphError, match="not in a computational graph"):
        y.backward()


def test_a_graph_sharing_nothing_with_a_consumed_one_survives() -> None:
    x = _leaf([1.0, 2.0])
    with autograd.record():
        y = x * x
        z = y.detach() * x
    z.backward()
    assert _g(x) == [1.0, 4.0]
    y.backward()
    assert _g(x) == [2.0, 4.0]


def test_a_head_sharing_a_consumed_intermediate_raises() -> None:
    x = _leaf([1.0, 2.0])
    with autograd.record():
        u = x * x
        y = u * 2
        z = u * 3 + x
    y.backward()
    assert _g(x) == [4.0, 8.0]
    with pytest.raises(GraphError, match=NO_INPUTS):
        z.backward()
    assert _g(x) == [4.0, 8.0]  # not silently overwritten


def test_a_freed_intermediate_is_a_constant_in_a_later_record() -> None:
    x = _leaf([1.0, 2.0])
    with autograd.record():
        u = x * x
        y = u.sum()
    y.backward()
    with autograd.record():
        z = u * x
    z.backward()
    assert _g(x) == [1.0, 4.0]


def test_implicit_head_is_ones_and_head_gradients_are_used() -> None:
    x = _leaf([[1.0, 2.0], [3.0, 4.0]])
    with autograd.record():
        y = x * x
    y.backward(np.array([[1.0, 0.0], [10.0, 1.0]]))
    assert _g(x) == [[2.0, 0.0], [60.0, 8.0]]
    with autograd.record():
        y = x * x
        z = x * 3
    autograd.backward([y, z], [None, np.ones((2, 2)) * 2])
    assert _g(x) == [[8.0, 10.0], [12.0, 14.0]]


def test_wrong_head_gradient_shape_and_dtype() -> None:
    x = _leaf([1.0, 2.0])
    with autograd.record():
        y = x * x
    with pytest.raises(ShapeError, match=r"\(3,\).*\(2,\)"):
        y.backward(np.array([1.0, 2.0, 3.0]))
    with pytest.raises(DTypeError, match="float64"):
        y.backward(np.array([1.0, 2.0], dtype="float64"))
    y.backward(np.array([1.0, 1.0]))  # the failed attempts did not consume the graph
    assert _g(x) == [2.0, 4.0]


def test_empty_backward_is_legal() -> None:
    x = _leaf(numpy.zeros((0, 3)))
    with autograd.record():
        y = x * 2
    y.backward()
    assert x.grad.shape == (0, 3)


def test_backward_on_a_leaf_gives_ones() -> None:
    x = _leaf([1.0, 2.0])
    x.backward()
    assert _g(x) == [1.0, 1.0]


@pytest.mark.parametrize(
    "f, want",
    [(lambda x: x + 1, 1.0), (lambda x: x + x, 2.0), (lambda x: -x, -1.0), (lambda x: x * x, 6.0),
     (lambda x: (x * 2).sum(), 2.0), (lambda x: np.stack([x, x]).sum(), 2.0)],
)
def test_zero_dim_heads_and_variables(f, want) -> None:
    x = _leaf(3.0)
    with autograd.record():
        y = f(x)
    y.backward()
    assert x.grad.shape == () and x.grad.item() == want
    with autograd.record():
        y = f(x)
    assert autograd.grad(y, [x])[0].item() == want


def test_leaves_not_in_the_graph_are_left_alone() -> None:
    x, w = _leaf([1.0, 2.0]), _leaf([5.0])
    w.grad[:] = 7
    with autograd.record():
        y = x * x
    y.backward()
    assert _g(w) == [7.0]


# ---- autograd.grad ----------------------------------------------------------------------------
def test_grad_returns_a_list_and_does_not_touch_grad() -> None:
    x = _leaf([1.0, 2.0])
    with autograd.record():
        y = x * x
    g = autograd.grad(y, x)
    assert isinstance(g, list) and len(g) == 1
    assert g[0].asnumpy().tolist() == [2.0, 4.0]
    assert type(g[0]).__name__ == "ndarray"
    assert _g(x) == [0.0, 0.0]
    with pytest.raises(GraphError):  # grad frees the graph without retain_graph
        y.backward()


def test_grad_with_retain_graph() -> None:
    x = _leaf([1.0, 2.0])
    with autograd.record():
        y = x * x
    autograd.grad([y], [x], retain_graph=True)
    y.backward()
    assert _g(x) == [2.0, 4.0]


def test_create_graph_outside_record() -> None:
    x = _leaf([1.0], dtype="float64")
    with autograd.record():
        z = np.exp(x) + x
    dx = autograd.grad(z, [x], create_graph=True)[0]
    assert not autograd.is_recording()
    numpy.testing.assert_allclose(dx.asnumpy(), [1 + numpy.e])
    dx.backward()
    numpy.testing.assert_allclose(x.grad.asnumpy(), [numpy.e])


def test_grad_errors() -> None:
    x = _leaf([1.0, 2.0])
    b = np.array([1.0, 2.0])
    with autograd.record():
        y = x * b
    with pytest.raises(GraphError, match="1-th variable because it does not require gradient"):
        autograd.grad(y, [b])
    with pytest.raises(AssertionError, match="variables cannot be an empty list."):
        autograd.grad(y, [])
    with pytest.raises(AssertionError, match="2 vs. 1"):
        autograd.backward([y, y], [np.ones(2)])


# ---- scopes and flags ------------------------------------------------------------------------
def test_pause_inside_record() -> None:
    x = _leaf([1.0, 2.0])
    with autograd.record():
        assert autograd.is_recording() and autograd.is_training()
        y = x * x
        with autograd.pause():
            assert not autograd.is_recording() and not autograd.is_training()
            c = y * 3  # a constant
        with autograd.pause(train_mode=True):
            assert autograd.is_training()
        z = y + c
    z.backward()
    assert _g(x) == [2.0, 4.0]
    with pytest.raises(GraphError):
        c.backward()


def test_values_computed_outside_record_from_lazy_graph_values_are_constants() -> None:
    x = _leaf([1.0, 2.0])
    with autograd.record():
        y = x * x
    c = y * 3  # not recorded, although y is lazy and in the graph
    with autograd.record():
        z = y + c
    z.backward()
    assert _g(x) == [2.0, 4.0]


def test_flags_and_setters_return_previous() -> None:
    assert not autograd.is_recording() and not autograd.is_training()
    assert autograd.set_recording(True) is False
    assert autograd.set_recording(False) is True
    assert autograd.set_training(True) is False
    assert autograd.set_training(False) is True
    with autograd.train_mode():
        assert autograd.is_training() and not autograd.is_recording()
        with autograd.predict_mode():
            assert not autograd.is_training()
    with autograd.record(train_mode=False):
        assert autograd.is_recording() and not autograd.is_training()
    assert not autograd.is_recording() and not autograd.is_training()


def test_scope_restores_flags_when_the_block_raises() -> None:
    with pytest.raises(ZeroDivisionError):
        with autograd.record():
            1 / 0
    assert not autograd.is_recording() and not autograd.is_training()


def test_set_recording_records_like_record() -> None:
    x = _leaf([3.0])
    prev = autograd.set_recording(True)
    try:
        y = x * x
    finally:
        autograd.set_recording(prev)
    y.backward()
    assert _g(x) == [6.0]


def test_flags_are_per_thread() -> None:
    seen = {}

    def other():
        seen["rec"], seen["train"] = autograd.is_recording(), autograd.is_training()
        x = _leaf([2.0])
        with autograd.record():
            y = x * x
        y.backward()
        seen["grad"] = _g(x)

    with autograd.record():
        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert autograd.is_recording()
    assert seen == {"rec": False, "train": False, "grad": [4.0]}


def test_threads_record_and_backward_concurrently() -> None:
    errors = []

    def work(k: int) -> None:
        try:
            for _ in range(10):
                xv = numpy.arange(6.0).reshape(2, 3) + k
                x = _leaf(xv, dtype="float64")
                with autograd.record():
                    y = (npx.sigmoid(x) * x).sum()
                    z = y * 2 if float(y) > -1e9 else y  # a sync point (guard) per thread
                z.backward()
                s = 1 / (1 + numpy.exp(-xv))
                numpy.testing.assert_allclose(x.grad.asnumpy(), 2 * (s + xv * s * (1 - s)), rtol=1e-12)
        except Exception as exc:  # noqa: BLE001  (reported below)
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# ---- detach, retain-grad ------------------------------------------------------------------------
def test_detach_shares_storage_and_cuts_the_graph() -> None:
    x = _leaf([1.0, 2.0])
    with autograd.record():
        y = x * x
        u = y.detach()
        z = u * x
    assert u.grad is None
    z.backward()
    assert _g(x) == [1.0, 4.0]
    a = np.array([1.0, 2.0])
    d = a.detach()
    d[0] = 9.0
    assert a.asnumpy().tolist() == [9.0, 2.0]


def test_attach_grad_on_an_intermediate_keeps_the_graph_d2l() -> None:
    x, y = _leaf([1.0, 2.0]), _leaf([3.0, 4.0])
    with autograd.record():
        u = x * y
        u.attach_grad()
        z = 5 * u - x
    z.backward()
    assert _g(x) == [14.0, 19.0]  # 5y - 1
    assert _g(y) == [5.0, 10.0]  # 5x
    assert _g(u) == [5.0, 5.0]


def test_marking_a_retained_intermediate_twice_raises() -> None:
    x = _leaf([1.0, 2.0])
    with autograd.record():
        u = x * x
        u.attach_grad()
        with pytest.raises(GraphError, match="already been marked"):
            u.attach_grad()
        z = u * 2
    z.backward()
    assert _g(u) == [2.0, 2.0] and _g(x) == [4.0, 8.0]


def test_copy_then_attach_is_a_new_leaf() -> None:
    x = _leaf([1.0, 2.0])
    u = x.copy()
    u.attach_grad()
    with autograd.record():
        z = u * u
    z.backward()
    assert _g(u) == [2.0, 4.0] and _g(x) == [0.0, 0.0]
