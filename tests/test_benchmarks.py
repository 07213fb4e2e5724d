"""The benchmark harness's plumbing (benchmarks/): references and checks, one worker per row,
SKIP/N/A instead of crashes, the table/JSON/PNG, W6 cold/warm, gpu.py's command line.

Default-run tests use tiny sizes and the cheap implementations; the `bench` test runs the
real `--quick` command and holds it to its one-minute budget.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # benchmarks/ is a top-level folder of the source tree, not installed
    sys.path.insert(0, ROOT)

from benchmarks import common, report, run, worker  # noqa: E402
from benchmarks.impls import BY_NAME, Impl  # noqa: E402
from benchmarks.workloads import SIZES, WORKLOADS, cflow_ref, check, make_data, reference  # noqa: E402


@pytest.mark.parametrize("wid", ["W1", "W2", "W3", "W4"])
def test_reference_passes_itself_and_catches_a_wrong_result(wid):
    data = make_data(wid, SIZES["tiny"][wid])
    ref = reference(wid, data, {})
    ok, err, _ = check(wid, {k: v.astype(numpy.float32) for k, v in ref.items()}, ref)
    assert ok and err < 1e-6
    key = next(k for k in ref if k != "loss")
    bad = dict(ref)
    bad[key] = ref[key] * 1.01
    ok, _, msg = check(wid, bad, ref)
    assert not ok and key in msg
    ok, _, msg = check(wid, {k: v for k, v in ref.items() if k != key}, ref)
    assert not ok and "missing" in msg


def test_cflow_reference_is_the_tutorials_closed_form():
    a = numpy.array([0.3, 0.7], numpy.float32)
    c, g = cflow_ref(a)
    assert g[1] == 0 and g[0] == 1024.0  # 2^10 * (0.3 + 0.7) = 1024 >= 1000
    assert c == pytest.approx(0.3 * 1024.0, rel=1e-6)


def test_data_is_deterministic_float32():
    a, b = make_data("W3", SIZES["tiny"]["W3"]), make_data("W3", SIZES["tiny"]["W3"])
    assert all(numpy.array_equal(a[k], b[k]) for k in a)
    assert a["X"].dtype == numpy.float32 and a["y"].dtype == numpy.int64


def test_thread_env_pins_every_runtime():
    env = common.thread_env(2, base={})
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        assert env[var] == "2"
    assert "intra_op_parallelism_threads=2" in env["XLA_FLAGS"]


@pytest.mark.parametrize("wid", ["W1", "W2", "W3", "W4", "W5"])
def test_numpy_worker_in_process(wid):
    res = worker.run("numpy", wid, "tiny", 0.001, 5)
    assert res["status"] == "OK", res
    assert res["median_s"] > 0 and res["first_call_s"] > 0 and res["reps"] >= 1
    assert res["err"] < 1e-5


def test_result_protocol_roundtrip(capsys):
    common.emit({"impl": "x", "median_s": 1.5})
    assert common.parse_result("noise\n" + capsys.readouterr().out) == {"impl": "x", "median_s": 1.5}


def test_missing_peer_and_missing_venv_are_skips(monkeypatch, tmp_path):
    ghost = Impl("ghost", "numpy_impl", "hand", "no_such_package_tracegrad_bench")
    res = run.run_worker(ghost, "W1", "tiny", 0.01, 30, str(tmp_path))
    assert res["status"] == "SKIP" and "not installed" in res["reason"]
    monkeypatch.setattr(run, "MXNET_VENV", str(tmp_path / "nope"))
    res = run.run_worker(BY_NAME["mxnet"], "W1", "tiny", 0.01, 30, str(tmp_path))
    assert res["status"] == "SKIP" and "mxnet_venv.sh" in res["reason"]


def test_run_all_table_json_png(tmp_path):
    """Subprocess workers (numpy, tracegrad) on W1 and W3, W6 (cold = W3's first call on an
    empty cache, warm = a second process on that cache), and every output."""
    impls = [BY_NAME["numpy"], BY_NAME["tracegrad"]]
    doc = run.run_all(["W1", "W3", "W6"], impls, "tiny", 0.02, 240, quick=True, progress=False)
    rows = {(r["workload"], r["impl"]): r for r in doc["results"]}
    assert rows[("W1", "numpy")]["status"] == "OK"
    assert rows[("W1", "numpy")]["x_numpy"] == pytest.approx(1.0)
    assert rows[("W1", "tracegrad")]["status"] == "OK", rows[("W1", "tracegrad")]
    assert rows[("W3", "tracegrad")]["status"] == "OK", rows[("W3", "tracegrad")]
    w6 = rows[("W6", "tracegrad")]
    assert w6["status"] == "OK", w6
    assert w6["cold_first_call_s"] == rows[("W3", "tracegrad")]["first_call_s"]
    assert w6["warm_first_call_s"] > 0
    assert ("W6", "numpy") not in rows  # W6 is for implementations with a compile cache
    assert doc["floors"]["status"] == "OK" and doc["floors"]["triad_bytes_per_s"] > 0
    assert rows[("W1", "numpy")]["x_bound"] > 0
    text = report.table(doc["results"], doc["floors"])
    assert "W1 square" in text and "W6 compile" in text and "tracegrad" in text
    report.write_json(str(tmp_path / "r.json"), doc)
    assert json.loads((tmp_path / "r.json").read_text())["results"]
    pytest.importorskip("matplotlib")
    assert report.write_png(str(tmp_path / "r.png"), doc["results"], doc["floors"]) is None
    assert (tmp_path / "r.png").stat().st_size > 1000


def test_ratios_and_fail_rows_are_excluded():
    floors = {"triad_bytes_per_s": 1e10, "w3_matmul_s": 1e-3}
    recs = [
        {"impl": "numpy", "workload": "W1", "status": "OK", "median_s": 2e-3, "size": 1 << 20},
        {"impl": "torch", "workload": "W1", "status": "OK", "median_s": 1e-3, "size": 1 << 20},
        {"impl": "jax.jit", "workload": "W1", "status": "FAIL", "median_s": 1e-6, "size": 1 << 20},
        {"impl": "tracegrad", "workload": "W1", "status": "OK", "median_s": 5e-4, "size": 1 << 20},
    ]
    report.add_ratios(recs, floors)
    tg = recs[3]
    assert tg["x_numpy"] == pytest.approx(0.25) and tg["x_best_peer"] == pytest.approx(0.5)
    assert tg["best_peer"] == "torch"  # the FAIL row's time is not trusted
    assert tg["x_bound"] == pytest.approx(5e-4 / (8 * (1 << 20) / 1e10))
    assert "x_numpy" not in recs[2]
    assert "FAIL" in report.table(recs, floors)


def test_gpu_script_is_import_safe_and_parses_arguments():
    code = ("import sys, benchmarks.gpu as g; "
            "assert 'torch' not in sys.modules and 'numba' not in sys.modules; "
            "print(g.parse_args([]).workloads)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "['W1', 'W2', 'W3']" in out.stdout
    from benchmarks import gpu

    a = gpu.parse_args(["--only", "w1,W2", "--impls", "torch,numba-cuda", "--n1", "1024", "--reps", "3"])
    assert a.workloads == ["W1", "W2"] and a.impl_list == ["torch", "numba-cuda"]
    assert gpu.size_of("W1", a) == 1024 and gpu.size_of("W2", a) == 1 << 22
    assert gpu.size_of("W3", a) == (256, 784, 512, 10)
    assert gpu.size_of("W3", gpu.parse_args(["--w3", "8,16,8,10"])) == (8, 16, 8, 10)
    for bad in (["--only", "W9"], ["--impls", "cupy"], ["--reps", "0"], ["--w3", "8,16"]):
        with pytest.raises(SystemExit):
            gpu.parse_args(bad)


def test_run_argument_parsing():
    a = run.parse_args(["--quick"])
    assert a.sizes == "quick" and [i.name for i in a.impl_list] == ["numpy", "tracegrad", "tracegrad.jit"]
    assert a.json is None and a.png is None
    a = run.parse_args(["--only", "w1,W3", "--impls", "all"])
    assert a.workloads == ["W1", "W3"] and len(a.impl_list) == len(BY_NAME)
    assert a.json.endswith(os.path.join("benchmarks", "results", "bench_results.json"))
    with pytest.raises(SystemExit):
        run.parse_args(["--only", "W7"])
    with pytest.raises(SystemExit):
        run.parse_args(["--impls", "tensorflow"])
    assert set(WORKLOADS) >= set(run.ALL_WORKLOADS)
    listing = run.list_impls()
    assert "numpy" in listing and "tracegrad" in listing and len(listing.splitlines()) == len(BY_NAME)


@pytest.mark.bench
def test_quick_benchmark_command_under_a_minute(tmp_path):
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--json",
                          str(tmp_path / "q.json")], cwd=ROOT, capture_output=True, text=True,
                         timeout=180)
    wall = time.perf_counter() - t0
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads((tmp_path / "q.json").read_text())
    for r in doc["results"]:
        assert r["status"] in ("OK", "SKIP"), r
    assert "W2 gelu_mse" in out.stdout
    assert wall < 60, f"--quick took {wall:.0f} s"


@pytest.mark.slow
def test_gpu_script_under_the_cuda_simulator():
    """gpu.py's numba-cuda and tracegrad rows end to end on tiny sizes (NUMBA_ENABLE_CUDASIM)."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    out = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--n1", "256", "--n2", "256",
                          "--w3", "2,4,4,10", "--reps", "1", "--warmup", "0",
                          "--impls", "numba-cuda,tracegrad,torch"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [ln.split() for ln in out.stdout.splitlines()]
    status = {(ln[0], ln[1]): ln[2] for ln in lines if len(ln) > 2 and ln[0] in ("W1", "W2", "W3")}
    assert status[("W1", "numba-cuda")] == "OK" and status[("W2", "numba-cuda")] == "OK"
    assert status[("W3", "numba-cuda")] == "SKIP" and status[("W1", "torch")] == "SKIP"
    assert status[("W1", "tracegrad")] in ("OK", "SKIP"), out.stdout
