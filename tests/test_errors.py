"""Errors users get: specific tracegrad exceptions naming the op, shapes, dtypes and the
user's own file:line (never tracegrad internals), and MXNet's texts where MXNet has one."""

from __future__ import annotations

import os
import re

import numpy
import pytest

import tracegrad
from tracegrad import DTypeError, GraphError, InPlaceError, ShapeError, TracegradError, autograd, npx
from tracegrad import np

HERE = os.path.basename(__file__)
_PKG_DIR = os.path.realpath(os.path.dirname(tracegrad.__file__)) + os.sep


def _line_of(marker: str) -> int:
    with open(__file__) as f:
        for i, line in enumerate(f, 1):
            if marker in line and "_line_of" not in line:
                return i
    raise AssertionError(marker)


def _assert_points_here(exc: BaseException, marker: str) -> None:
    msg = str(exc)
    m = re.search(r"\(at (.+):(\d+)\)", msg)
    assert m, f"no user line in: {msg}"
    path, line = m.group(1), int(m.group(2))
    # the path itself, not its text: a checkout folder named `tracegrad` (what `git clone`
    # makes) must not matter
    assert os.path.realpath(path) == os.path.realpath(__file__), f"points into {path}, not the user's file"
    assert not os.path.realpath(path).startswith(_PKG_DIR), path
    assert line == _line_of(marker), msg


def test_broadcast_error_names_op_shapes_and_user_line() -> None:
    a, b = np.ones((2, 3)), np.ones((4,))
    with pytest.raises(ShapeError) as info:
        a + b  # MARK-add
    msg = str(info.value)
    assert "add" in msg and "(2, 3)" in msg and "(4,)" in msg
    _assert_points_here(info.value, "MARK-add")


def test_user_file_next_to_the_package_is_the_users_line(tmp_path) -> None:
    # a user's file whose path starts with the package folder's path text (a checkout at
    # /somewhere/tracegrad with scripts in /somewhere/tracegrad/tracegrad_scripts/) is the user's
    pkg = os.path.dirname(os.path.abspath(tracegrad.__file__))
    fname = pkg + "_scripts" + os.sep + "train.py"
    code = compile("np.ones((2, 3)) + np.ones((4,))\n", fname, "exec")
    with pytest.raises(ShapeError) as info:
        exec(code, {"np": np})
    assert f"(at {fname}:1)" in str(info.value), str(info.value)


def test_shape_error_inside_record_points_at_user_line() -> None:
    x = np.ones((2, 2))
    x.attach_grad()
    with autograd.record():
        with pytest.raises(ShapeError) as info:
            np.matmul(x, np.ones((3, 3)))  # MARK-matmul
    msg = str(info.value)
    assert "matmul" in msg and "(2, 2)" in msg and "(3, 3)" in msg
    _assert_points_here(info.value, "MARK-matmul")


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: np.ones((2, 3)).reshape(5), ["reshape", "(2, 3)", "(5,)"]),
        (lambda: np.concatenate([np.ones((2, 3)), np.ones((3, 2))]), ["concatenate", "(2, 3)", "(3, 2)"]),
        (lambda: np.broadcast_to(np.ones(3), (2, 2)), ["broadcast_to", "(3,)", "(2, 2)"]),
        (lambda: np.ones(3).sum(axis=2), ["sum", "axis 2"]),
        (lambda: np.transpose(np.ones((2, 3)), (0, 0)), ["transpose", "(2, 3)"]),
        (lambda: np.squeeze(np.ones((2, 3)), 0), ["squeeze", "(2, 3)"]),
        (lambda: np.stack([np.ones(2), np.ones(3)]), ["stack", "(2,)", "(3,)"]),
        (lambda: np.where(np.ones(2) > 0, np.ones(3), np.ones(2)), ["where", "(2,)", "(3,)"]),
        (lambda: np.dot(np.ones((2, 3)), np.ones((2, 3))), ["matmul", "(2, 3)"]),
        (lambda: npx.batch_dot(np.ones((2, 3)), np.ones((2, 3))), ["batch_dot", "(2, 3)"]),
        (lambda: np.split(np.ones(5), 2), ["split", "5"]),
    ],
)
def test_shape_errors_are_shape_errors_with_the_users_line(call, words) -> None:
    with pytest.raises(ShapeError) as info:
        call()
    msg = str(info.value)
    for w in words:
        assert w in msg, (w, msg)
    assert HERE in msg, msg


def test_index_out_of_bounds_is_index_error_with_line() -> None:
    with pytest.raises(IndexError, match="out of bounds") as info:
        np.ones((2, 2))[3]
    assert HERE in str(info.value)
    with pytest.raises(IndexError, match="out of bounds"):
        np.ones((2, 2))[np.array([5], dtype="int64")]


def test_dtype_errors() -> None:
    with pytest.raises(DTypeError, match="int32"):
        np.array([1, 2], dtype="int32").attach_grad()
    with pytest.raises(DTypeError, match="complex64"):
        np.ones(2).astype("complex64")
    with pytest.raises(DTypeError):
        np.array(["a"])
    x = np.array([1.0, 2.0])
    x.attach_grad()
    with autograd.record():
        y = x * 2
    with pytest.raises(DTypeError, match="float64"):
        y.backward(np.ones(2, dtype="float64"))


def test_graph_errors_carry_mxnet_texts() -> None:
    x = np.array([1.0, 2.0])
    x.attach_grad()
    with autograd.record():
        y = x * x
    y.backward()
    with pytest.raises(GraphError, match=re.escape("Cannot differentiate node because it is not in a computational graph.")):
        y.backward()
    with pytest.raises(GraphError, match="retain_graph=True"):
        y.backward()
    z = np.array([1.0]) * 2
    with pytest.raises(GraphError, match="not in a computational graph"):
        z.backward()


def test_grad_of_a_variable_not_attached() -> None:
    x, b = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    x.attach_grad()
    with autograd.record():
        y = x * b
    with pytest.raises(GraphError, match="does not require gradient"):
        autograd.grad(y, [x, b])
    with pytest.raises(GraphError, match="2-th variable"):
        autograd.grad(y, [x, b])


def test_list_length_assertions() -> None:
    x = np.array([1.0])
    x.attach_grad()
    with autograd.record():
        y = x * 2
        z = x * 3
    with pytest.raises(AssertionError, match=re.escape("variables cannot be an empty list.")):
        autograd.grad(y, [])
    with pytest.raises(AssertionError, match=re.escape("heads and head_grads must be lists of the same length: 2 vs. 1")):
        autograd.backward([y, z], [np.ones(1)])


def test_attach_grad_bogus_req_is_key_error() -> None:
    with pytest.raises(KeyError, match="'bogus'"):
        np.array([1.0]).attach_grad("bogus")


def test_in_place_error_text() -> None:
    x = np.array([1.0])
    x.attach_grad()
    with autograd.record():
        with pytest.raises(InPlaceError, match="inplace operations like"):
            x *= 2


def test_get_symbol_rejects_non_arrays() -> None:
    with pytest.raises(AssertionError, match="get_symbol: Invalid argument type"):
        autograd.get_symbol(numpy.ones(2))


def test_errors_are_tracegrad_errors_and_builtin_kinds() -> None:
    assert issubclass(ShapeError, TracegradError) and issubclass(ShapeError, ValueError)
    assert issubclass(DTypeError, TracegradError) and issubclass(DTypeError, TypeError)
    assert issubclass(GraphError, RuntimeError) and issubclass(InPlaceError, RuntimeError)
    assert tracegrad.NoGradientError is not None


def test_scalar_conversion_of_many_elements() -> None:
    with pytest.raises(ValueError, match="ambiguous"):
        bool(np.ones(2))
    with pytest.raises((ValueError, TypeError)):
        float(np.ones(2))
    with pytest.raises(TypeError):
        [1, 2][np.array([1.0])]


def test_in_place_result_of_another_shape_is_a_shape_error() -> None:
    x = np.zeros((3,))
    with pytest.raises(ShapeError, match=r"in-place add.*\(2, 3\).*\(3,\)") as info:
        x += np.ones((2, 3))
    assert HERE in str(info.value)
    assert x.asnumpy().tolist() == [0.0, 0.0, 0.0]


def test_softmax_length_must_be_integers() -> None:
    # (issue 9 made length/use_length work; float lengths are refused, as MXNet does)
    for f in (npx.softmax, npx.log_softmax):
        with pytest.raises(DTypeError, match=r"(?s)length.*float32"):
            f(np.ones((2, 3)), length=np.array([1, 2]), use_length=True)


def test_mark_variables_checks_buffers_before_marking() -> None:
    x = np.array([1.0, 2.0])
    with pytest.raises(ShapeError, match=r"\(3,\)"):
        autograd.mark_variables([x], [np.zeros(3)])
    with pytest.raises(DTypeError, match="float64"):
        autograd.mark_variables([x], [np.zeros(2, dtype="float64")])
    assert x.grad is None
    with pytest.raises(AssertionError, match="same length"):
        autograd.mark_variables([x, x], [np.zeros(2)])


def test_bool_arithmetic_numpy_refuses_is_a_dtype_error() -> None:
    b = np.array([True, False])
    for f, op in ((lambda: -b, "neg"), (lambda: b - b, "sub"), (lambda: np.sign(b), "sign")):
        with pytest.raises(DTypeError, match=f"{op}: not defined for bool") as info:
            f()
        assert HERE in str(info.value)
    assert (b - 1).asnumpy().tolist() == [0, -1]


# ---- issue 8 (defects): sizes, grad_req and indices computed inside record() ----
@pytest.mark.parametrize(
    "call, kind, words, mark",
    [
        (lambda: np.zeros((2.5, 3)), TypeError, ["zeros", "2.5", "integer"], "MARK-sizes-1"),
        (lambda: np.ones(3.9), TypeError, ["ones", "3.9", "integer"], "MARK-sizes-2"),
        (lambda: np.ones((2, -1)), ValueError, ["ones", "negative"], "MARK-sizes-3"),
        (lambda: np.full(-3, 1.0), ValueError, ["full", "negative"], "MARK-sizes-4"),
        (lambda: np.empty((2, numpy.float64(2.0))), TypeError, ["empty", "integer"], "MARK-sizes-5"),
        (lambda: np.random.uniform(size=(2.5,)), TypeError, ["random.uniform", "2.5"], "MARK-sizes-6"),
        (lambda: np.random.normal(size=-2), ValueError, ["random.normal", "negative"], "MARK-sizes-7"),
    ],
)
def test_bad_sizes_raise_tracegrad_errors_naming_op_and_line(call, kind, words, mark) -> None:
    with pytest.raises(kind) as info:
        call()
    assert isinstance(info.value, (tracegrad.ArgumentError, tracegrad.ArgumentTypeError))
    for w in words:
        assert w in str(info.value), (w, str(info.value))
    _assert_points_here(info.value, mark)


def test_integer_sizes_of_every_kind_still_work() -> None:
    assert np.zeros((2, numpy.int64(3))).shape == (2, 3) and np.ones(0).shape == (0,)
    assert np.zeros(()).shape == () and np.full([2], 1.0).shape == (2,)


def test_unknown_grad_req_names_attach_grad_and_line() -> None:
    x = np.array([1.0])
    with pytest.raises(KeyError) as info:
        x.attach_grad(grad_req="sum")  # MARK-req
    assert isinstance(info.value, tracegrad.GradReqError)
    assert "attach_grad" in str(info.value) and "'sum'" in str(info.value) and "'add'" in str(info.value)
    _assert_points_here(info.value, "MARK-req")
    assert x.grad is None


@pytest.mark.parametrize("how", ["getitem", "take", "two_arrays"])
def test_index_computed_inside_record_fails_at_the_op(how) -> None:
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    x.attach_grad()
    with autograd.record():
        i = (x.sum() - 13).astype("int64").reshape(1)  # 8: out of range, known only when computed
        with pytest.raises(IndexError) as info:
            if how == "getitem":
                x[:, i]  # MARK-lazy-getitem
            elif how == "take":
                np.take(x, i, axis=1)  # MARK-lazy-take
            else:
                x[i, i]  # MARK-lazy-two
    assert isinstance(info.value, tracegrad.IndexOutOfRangeError)
    msg = str(info.value)
    assert "gather" in msg and "index 8" in msg and "(2, 3)" in msg and "(1,)" in msg, msg
    _assert_points_here(info.value, "MARK-lazy-" + how.split("_")[0])
    with autograd.record():  # an index in range still records and differentiates
        y = x[:, (x.sum() - 20).astype("int64").reshape(1)].sum()
    y.backward()
    assert x.grad.asnumpy().tolist() == [[0, 1, 0], [0, 1, 0]]
