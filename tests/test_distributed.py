"""tracegrad.distributed: collectives across real MPI ranks (mpiexec -n 2 and -n 3,
oversubscribed), failure and timeout behaviour, the one-rank world without MPI."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy
import pytest

import tracegrad
from tracegrad import np
from tracegrad.distributed import fusion, launch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(tracegrad.__file__)))
sys.path.insert(0, HERE)
from dist_worker import GROUP_SIZES, SIZES, rank_data  # noqa: E402


def _dist_missing() -> str:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install -e '.[dist]')"
    if launch.mpiexec_path() is None:
        return "no mpiexec found (pip install -e '.[dist]' installs MPICH's)"
    return ""


needs_mpi = pytest.mark.skipif(bool(_dist_missing()), reason=_dist_missing() or "ok")


def run_ranks(n: int, case: str, out: str, timeout: float = 60.0, env: dict | None = None,
              script: str = "dist_worker.py") -> subprocess.CompletedProcess:
    """`mpiexec -n n python <script> case out`, with this checkout's tracegrad."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    e["PYTHONPATH"] = ROOT + os.pathsep + e.get("PYTHONPATH", "")
    e.setdefault("TRACEGRAD_DIST_TIMEOUT", "30")
    e.update(env or {})
    cmd = launch.command(n, [os.path.join(HERE, script), case, out])
    return subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)  # CI runs without a standard input


def _ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"


def _load(out: str, n: int) -> list[dict]:
    return [dict(numpy.load(os.path.join(out, f"rank{r}.npz"))) for r in range(n)]


def _close(got: numpy.ndarray, want: numpy.ndarray, what: str, mag: numpy.ndarray | None = None) -> None:
    """Equal within a few float32 (float64) ulps of `mag` (sum of the terms' magnitudes)."""
    want = numpy.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (what, got.shape, got.dtype, want.shape, want.dtype)
    if got.dtype.kind == "f":
        eps = numpy.finfo(got.dtype).eps
        scale = numpy.maximum(numpy.abs(want) if mag is None else mag, 1e-30)
        err = numpy.max(numpy.abs(got.astype(numpy.float64) - want) / scale, initial=0.0)
        assert err <= 4 * eps, f"{what}: error {err} of the terms' magnitude"
    else:
        numpy.testing.assert_array_equal(got, want, err_msg=what)


# ---- collectives across ranks -----------------------------------------------------------
_RUNS: dict[int, list] = {}


def _collectives(n: int, tmp_path_factory) -> list[dict]:
    """The collectives case on n ranks (run once per session, shared by two tests)."""
    if n not in _RUNS:
        out = str(tmp_path_factory.mktemp(f"collectives{n}"))
        # an 8 KiB fusion threshold: two shared buffers of float32, one of float64, two direct
        _ok(run_ranks(n, "collectives", out, env={"TRACEGRAD_FUSION_THRESHOLD": "8192"}))
        _RUNS[n] = _load(out, n)
    return _RUNS[n]


@needs_mpi
@pytest.mark.parametrize("n", [2, 3])
def test_collectives_match_numpy_and_are_identical_on_every_rank(n: int, tmp_path_factory) -> None:
    res = _collectives(n, tmp_path_factory)
    for key in res[0]:  # bit-identical on every rank (MPI's reduction order is the same)
        if key not in ("world", "strided", "rowview", "bcast_kept"):
            for r in range(1, n):
                assert res[r][key].tobytes() == res[0][key].tobytes(), f"{key}: rank {r} differs"
    got = res[0]
    for size in SIZES:
        data = [rank_data(r, size).astype(numpy.float64) for r in range(n)]
        total, mag = numpy.sum(data, axis=0), numpy.sum(numpy.abs(data), axis=0)
        _close(got[f"sum{size}"], total.astype(numpy.float32), f"sum{size}", mag)
        _close(got[f"avg{size}"], (total / n).astype(numpy.float32), f"avg{size}", mag / n)

    for size in GROUP_SIZES:
        data = [rank_data(r, size).astype(numpy.float64) for r in range(n)]
        total, mag = numpy.sum(data, axis=0), numpy.sum(numpy.abs(data), axis=0)
        _close(got[f"grouped{size}"], total.astype(numpy.float32), f"grouped{size}", mag)
    f64 = [rank_data(r, 5, "float64") for r in range(n)]
    _close(got["groupedf64"], numpy.sum(f64, axis=0), "f64", numpy.sum(numpy.abs(f64), axis=0))
    ints = [numpy.arange(12, dtype=numpy.int32).reshape(3, 4) * (r + 1) for r in range(n)]
    _close(got["int_sum"], numpy.sum(ints, axis=0).astype(numpy.int32), "int_sum")
    _close(got["int_avg"], (numpy.sum(ints, axis=0) // n).astype(numpy.int32), "int_avg")
    m = [rank_data(r, 50) for r in range(n)]
    _close(got["max"], numpy.max(m, axis=0), "max")
    _close(got["min"], numpy.min(m, axis=0), "min")
    _close(got["prod"], numpy.prod([rank_data(r, 9, "float64") / 10 for r in range(n)], axis=0), "prod")
    s = numpy.sum([rank_data(r, 9).astype(numpy.float64) for r in range(n)], axis=0)
    sm = numpy.sum([numpy.abs(rank_data(r, 9)) for r in range(n)], axis=0)
    _close(got["scaled"], (1.5 * s).astype(numpy.float32), "scaled", 1.5 * sm)
    d = [rank_data(r, 2000).astype(numpy.float64).reshape(40, 50) for r in range(n)]
    _close(got["inplace"], numpy.sum(d, axis=0).astype(numpy.float32), "inplace",
           numpy.sum(numpy.abs(d), axis=0))
    bases = [rank_data(r, 600).reshape(20, 30) for r in range(n)]
    want = bases[0].copy()
    want[:, ::3] = numpy.sum([b[:, ::3].astype(numpy.float64) for b in bases], axis=0)
    absum = numpy.sum(numpy.abs(bases), axis=0)
    for r in range(n):  # the untouched columns keep each rank's own values
        mine, mag = bases[r].copy(), numpy.abs(bases[r]).astype(numpy.float64)
        mine[:, ::3], mag[:, ::3] = want[:, ::3], absum[:, ::3]
        _close(res[r]["strided"], mine, f"strided rank {r}", mag)
    for r in range(n):
        mine, mag = bases[r].copy(), numpy.abs(bases[r]).astype(numpy.float64)
        mine[2:5] = numpy.sum([b[2:5].astype(numpy.float64) for b in bases], axis=0)
        mag[2:5] = absum[2:5]
        _close(res[r]["rowview"], mine, f"rowview rank {r}", mag)
    gathered = numpy.concatenate([rank_data(r, (r + 1) * 3).reshape(r + 1, 3) for r in range(n)])
    _close(got["gather"], gathered, "gather")
    for r in range(n):
        _close(res[r]["bcast"], rank_data(n - 1, 100), "bcast")
        _close(res[r]["bcast_kept"], rank_data(r, 100), "broadcast leaves its input alone")
        _close(res[r]["bcast_"], rank_data(0, 100), "bcast_")
        for k in range(5):
            _close(res[r][f"param_p{k}"], rank_data(1 + 10 * k, 300 * k + 1), f"param p{k}")
        assert int(res[r]["object"]) == n - 1
        assert res[r]["objects"].tolist() == [10 * q for q in range(n)]
        assert res[r]["world"].tolist() == [r, n, r, n]


@needs_mpi
def test_results_are_identical_run_to_run(tmp_path, tmp_path_factory) -> None:
    first = _collectives(3, tmp_path_factory)[0]
    _ok(run_ranks(3, "collectives", str(tmp_path), env={"TRACEGRAD_FUSION_THRESHOLD": "8192"}))
    again = _load(str(tmp_path), 3)[0]
    for key in first:
        assert first[key].tobytes() == again[key].tobytes(), key


# ---- Gluon training on shards equals one process on the whole batch -----------------------
@pytest.fixture(scope="module")
def one_process_params() -> dict:
    """The reference: gluon.Trainer in this process on the whole batch (no MPI)."""
    import tempfile

    import dist_worker
    import tracegrad.distributed as hvd

    hvd.init()
    try:
        with tempfile.TemporaryDirectory() as out:
            dist_worker.train(out, "plain")
            return dict(numpy.load(os.path.join(out, "rank0.npz")))
    finally:
        hvd.shutdown()


@needs_mpi
@pytest.mark.parametrize("n, mode", [(2, "dist"), (3, "kv")])
def test_training_on_shards_equals_one_process_on_the_whole_batch(n: int, mode: str, tmp_path,
                                                                   one_process_params: dict) -> None:
    _ok(run_ranks(n, f"train_{mode}", str(tmp_path), timeout=120))
    res = _load(str(tmp_path), n)
    names = [k for k in one_process_params if k != "losses"]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias"]
    for k in names:
        want = one_process_params[k]
        for r in range(n):
            assert res[r][k].tobytes() == res[0][k].tobytes(), f"{k}: rank {r} differs from rank 0"
        rel = numpy.abs(res[0][k] - want).max() / numpy.abs(want).max()
        assert rel <= 1e-6, f"{k}: {n} ranks differ from one process by {rel:.2e} (relative)"
    moved = numpy.abs(res[0]["0.weight"] - _initial_first_weight()).max()
    assert moved > 1e-2, "training did not change the parameters"


@needs_mpi
def test_a_jit_step_compiles_forward_backward_allreduce_and_update_as_one_program(
        tmp_path, one_process_params: dict) -> None:
    """DistributedTrainer.step inside `tracegrad.jit` on 2 ranks: every call after the first
    replays the compiled program (the allreduce is a host step in it; strict compile mode),
    with the same parameters on both ranks and as one process on the whole batch."""
    _ok(run_ranks(2, "jit_dist", str(tmp_path), timeout=180, env={"TRACEGRAD_COMPILE": "strict"}))
    res = _load(str(tmp_path), 2)
    import dist_worker

    for r in range(2):
        assert int(res[r]["replays"]) == dist_worker.TRAIN_STEPS - 1, f"rank {r} did not replay"
    for k, want in one_process_params.items():
        if k == "losses":
            continue
        assert res[1][k].tobytes() == res[0][k].tobytes(), f"{k}: rank 1 differs from rank 0"
        rel = numpy.abs(res[0][k] - want).max() / numpy.abs(want).max()
        assert rel <= 1e-6, f"{k}: the compiled 2-rank step differs from one process by {rel:.2e}"


@pytest.mark.parametrize("mode", ["dist", "kv"])
def test_one_rank_distributed_training_equals_the_plain_trainer(mode: str, one_process_params: dict) -> None:
    import tempfile

    import dist_worker
    import tracegrad.distributed as hvd

    hvd.init()  # no launcher: the one-rank world, no MPI
    try:
        with tempfile.TemporaryDirectory() as out:
            dist_worker.train(out, mode)
            got = dict(numpy.load(os.path.join(out, "rank0.npz")))
    finally:
        hvd.shutdown()
    for k, want in one_process_params.items():  # (the first run here also ran interpreted steps:
        rel = numpy.abs(got[k] - want).max() / numpy.abs(want).max()  # rounding may differ)
        assert rel <= 1e-6, (k, rel)


def _initial_first_weight() -> numpy.ndarray:
    import tracegrad.initializer as init
    from tracegrad import gluon

    numpy.random.seed(100)
    np.random.seed(100)
    layer = gluon.nn.Dense(16, activation="tanh", in_units=8)
    layer.initialize(init.Xavier())
    return layer.weight.data().asnumpy()


# ---- failures: an error naming the rank, within the timeout, never a hang -----------------
@needs_mpi
@pytest.mark.parametrize("n", [2, 3])
def test_a_rank_that_raises_stops_the_job_with_an_error_naming_it(n: int, tmp_path) -> None:
    t0 = time.monotonic()
    proc = run_ranks(n, "fail", str(tmp_path), timeout=45, env={"TRACEGRAD_DIST_TIMEOUT": "20"})
    took = time.monotonic() - t0
    assert proc.returncode != 0
    assert "rank 1 failed: ValueError: boom on purpose" in proc.stderr, proc.stderr
    assert "dist_worker.py" in proc.stderr  # the failing line of the user's program
    assert f"rank 0: stopping: rank 1 failed" in proc.stderr, proc.stderr
    assert not any(f.startswith("survived") for f in os.listdir(tmp_path))
    assert took < 15, f"took {took:.1f} s: the others should stop at once, not at the timeout"


@needs_mpi
def test_a_stuck_rank_ends_the_job_at_the_timeout(tmp_path) -> None:
    t0 = time.monotonic()
    proc = run_ranks(2, "stuck", str(tmp_path), timeout=45,
                     env={"TRACEGRAD_DIST_TIMEOUT": "2", "TRACEGRAD_DIST_GRACE": "0.5"})
    took = time.monotonic() - t0
    assert proc.returncode != 0
    assert "CollectiveTimeoutError" in proc.stderr and "did not complete within 2 s" in proc.stderr
    assert "rank 0" in proc.stderr
    assert took < 20, took


@needs_mpi
def test_mismatched_shapes_are_a_clear_error_on_every_rank(tmp_path) -> None:
    _ok(run_ranks(2, "mismatch", str(tmp_path)))
    for r in range(2):
        msg = open(tmp_path / f"error{r}.txt").read()
        assert "array #1 'grads.1' is shape (5,) float32 on rank 0 but shape (6,) float32 on rank 1" in msg, msg


# ---- the one-rank world -----------------------------------------------------------------
def _plain_env() -> dict:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_", "MV2_"))}
    e["PYTHONPATH"] = ROOT + os.pathsep + e.get("PYTHONPATH", "")
    return e


ONE_RANK = """
import sys
if {block}:
    sys.modules["mpi4py"] = None  # as if the dist extra were not installed
import numpy
import tracegrad.distributed as hvd
from tracegrad import np
hvd.init()
assert (hvd.rank(), hvd.size(), hvd.local_rank(), hvd.local_size()) == (0, 1, 0, 1)
assert not hvd.mpi_enabled()
x = np.array([[1.0, -2.0], [3.0, 0.0]])
assert (hvd.allreduce(x).asnumpy() == x.asnumpy()).all()
assert (hvd.allreduce(x, op=hvd.Sum, postscale_factor=2.0).asnumpy() == 2 * x.asnumpy()).all()
y = hvd.allreduce_(x, average=False)
assert y is x
assert hvd.allgather(x).shape == (2, 2)
assert (hvd.broadcast(x, root_rank=0).asnumpy() == x.asnumpy()).all()
params = {{"w": np.ones((3,))}}
hvd.broadcast_parameters(params)
assert hvd.broadcast_object({{"a": 1}}) == {{"a": 1}} and hvd.allgather_object(5) == [5]
try:
    hvd.broadcast(x, root_rank=1)
except hvd.DistributedError as exc:
    assert "root_rank 1" in str(exc)
else:
    raise AssertionError("root_rank 1 in a one-rank world must raise")
hvd.shutdown()
print("one-rank ok")
"""


@pytest.mark.parametrize("block", [True, False])
def test_one_rank_world_without_mpiexec(block: bool) -> None:
    if not block and _dist_missing().startswith("mpi4py"):
        pytest.skip("mpi4py is not installed")
    proc = subprocess.run([sys.executable, "-c", ONE_RANK.format(block=block)], env=_plain_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "one-rank ok" in proc.stdout, proc.stderr
    if block:
        assert "mpi4py" not in proc.stderr


def test_launched_by_mpiexec_without_mpi4py_says_how_to_install() -> None:
    code = ("import sys; sys.modules['mpi4py'] = None\nimport tracegrad.distributed as hvd\n"
            "try:\n    hvd.init()\nexcept hvd.DistributedError as e:\n    print(e)\n")
    env = _plain_env()
    env["PMI_RANK"], env["PMI_SIZE"] = "0", "2"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert "mpi4py is not installed" in proc.stdout and "tracegrad[dist]" in proc.stdout, proc.stdout + proc.stderr


def test_not_initialized_is_a_clear_error() -> None:
    import tracegrad.distributed as hvd

    if hvd.is_initialized():
        pytest.skip("initialized by another test in this process")
    with pytest.raises(hvd.DistributedError, match="call tracegrad.distributed.init"):
        hvd.rank()


# ---- fusion plan ------------------------------------------------------------------------
def test_fusion_plan_groups_in_order_by_dtype_up_to_the_threshold() -> None:
    f32, f64 = numpy.float32, numpy.float64
    arrays = [numpy.zeros(10, f32), numpy.zeros(20, f32), numpy.zeros(5, f64), numpy.zeros(30, f32),
              numpy.zeros(1000, f32), numpy.zeros(3, f32)]
    small = fusion.plan(arrays, limit=256, direct=120)  # 30 float32 values and up: unpacked
    assert [([i for i, _, _ in b.items], b.direct) for b in small] == [
        ([0, 1, 5], False), ([2], False), ([3], True), ([4], True)]
    buckets = fusion.plan(arrays, limit=256)  # 64 float32 values a buffer
    got = [(str(b.dtype), [i for i, _, _ in b.items], b.total, b.direct) for b in buckets]
    assert got == [
        ("float32", [0, 1, 3, 5], 63, False),  # a buffer stays open for later arrays of its dtype
        ("float64", [2], 5, False),
        ("float32", [4], 1000, True),  # over the threshold: sent from its own storage
    ]
    assert [off for _, off, _ in buckets[0].items] == [0, 10, 30, 60]


def test_collectives_inside_a_jit_step_are_part_of_its_program() -> None:
    import tracegrad.distributed as hvd

    hvd.init()  # no launcher in the test process: the one-rank world
    try:
        w = np.array([1.0, 2.0])

        @tracegrad.jit
        def step(x):
            y = hvd.allreduce(x * 2, op=hvd.Sum)
            w[:] = w + y
            z = x + 1
            hvd.allreduce_(z, postscale_factor=0.5)  # in place: a write of the step
            return y, z

        got = [[a.asnumpy().tolist() for a in step(np.array([float(k), 1.0]))] for k in range(3)]
        assert got == [[[2.0 * k, 2.0], [(k + 1) / 2, 1.0]] for k in range(3)]
        assert w.asnumpy().tolist() == [1.0 + 0 + 2 + 4, 2.0 + 6]
        assert step.counters.replays == 2 and step.counters.calls == 3
        (variant,) = step.variants
        assert str(variant.trace).count("allreduce[") == 2, str(variant.trace)
    finally:
        hvd.shutdown()


def test_a_collective_on_numpy_arrays_inside_a_jit_step_runs_as_python() -> None:
    import tracegrad.distributed as hvd

    hvd.init()
    try:
        buf = numpy.array([1.0, 2.0])

        @tracegrad.jit
        def step(x):
            hvd.allreduce_(buf, op=hvd.Sum)  # numpy storage: a replay could not see it
            return x * 2

        with pytest.warns(Warning, match="reduces numpy arrays"):
            for k in range(2):
                step(np.array([float(k)]))
        assert step.counters.replays == 0
    finally:
        hvd.shutdown()


def test_install_as_horovod_serves_horovod_mxnet_imports() -> None:
    code = ("import tracegrad.distributed as td\ntd.install_as_horovod()\n"
            "import horovod.mxnet as hvd\nfrom horovod.mxnet import DistributedTrainer\n"
            "assert hvd is td and DistributedTrainer is td.DistributedTrainer\n"
            "hvd.init(); print('size', hvd.size())\n")
    proc = subprocess.run([sys.executable, "-c", code], env=_plain_env(), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "size 1" in proc.stdout, proc.stderr


@needs_mpi
@pytest.mark.slow
def test_example_reaches_the_same_accuracy_on_two_ranks_as_on_one() -> None:
    example = os.path.join(ROOT, "examples", "dist_mlp.py")
    args = [example, "--epochs", "2"]
    one = subprocess.run([sys.executable, *args], env=_plain_env(), capture_output=True, text=True, timeout=300)
    two = subprocess.run(launch.command(2, args), env=_plain_env(), capture_output=True, text=True, timeout=300,
                         stdin=subprocess.DEVNULL)
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    last = [p.stdout.strip().splitlines()[-1].split() for p in (one, two)]
    assert last[0][:3] == ["final", "test", "accuracy"] and last[0][3] == last[1][3], last  # accuracy
    assert abs(float(last[0][-1]) - float(last[1][-1])) <= 1e-5 * abs(float(last[0][-1])), last  # weights


def test_broadcast_parameters_of_a_deferred_parameter_says_what_to_do() -> None:
    import tracegrad.distributed as hvd
    from tracegrad import gluon

    net = gluon.nn.Dense(4)  # in_units unknown: the weight's shape waits for the first forward
    net.initialize()
    hvd.init()
    try:
        with pytest.raises(hvd.DistributedError, match="'weight' has no data yet.*run one forward pass"):
            hvd.broadcast_parameters(net.collect_params())
        net(np.ones((2, 3)))
        hvd.broadcast_parameters(net.collect_params())  # fine once the shapes are known
        with pytest.raises(tracegrad.UnsupportedError, match="compression"):
            hvd.DistributedTrainer(net.collect_params(), "sgd", compression="fp16")
    finally:
        hvd.shutdown()
