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

from benchmarks import bandwidth, common, report, run, worker, workloads, workloads_nn  # noqa: E402
from benchmarks.impls import BY_NAME, Impl  # noqa: E402
from benchmarks.workloads import SIZES, WORKLOADS, cflow_ref, check, make_data, reference  # noqa: E402


@pytest.mark.parametrize("wid", ["W1", "W2", "W3", "W4", "W7", "W8", "W9", "W9c"])
def test_reference_passes_itself_and_catches_a_wrong_result(wid):
    data = make_data(wid, SIZES["tiny"][wid])
    got = workloads_nn.mlp_grads(data) if wid == "W8" else {}
    ref = reference(wid, data, got)
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
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "PJRT_NPROC"):
        assert env[var] == "2"
    assert "--xla_cpu_multi_thread_eigen=true" in env["XLA_FLAGS"]


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
    floors = doc["floors"]
    assert floors["status"] == "OK" and floors["triad_bytes_per_s"] > 0
    assert set(floors["bw_kernels"]) == {"copy", "scale", "add", "triad", "read4_write2"}
    assert floors["bw_bytes_per_s"] == max(floors["bw_kernels"].values())
    assert floors["w3_matmul_s"] > 0 and floors["w9c_gemm_s"] > 0
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
    assert a.sizes == "quick" and [i.name for i in a.impl_list] == [
        "numpy", "tracegrad", "tracegrad.jit", "tracegrad.gluon"]
    assert a.workloads == ["W1", "W2", "W3", "W4", "W5", "W6"] and a.rounds == 1
    assert a.json is None and a.png is None
    a = run.parse_args(["--only", "w1,W3,w9c", "--impls", "all", "--seed", "7"])
    assert a.workloads == ["W1", "W3", "W9c"] and len(a.impl_list) == len(BY_NAME)
    assert a.rounds == 2 and a.seed == 7
    assert a.json.endswith(os.path.join("benchmarks", "results", "bench_results.json"))
    assert run.parse_args([]).workloads == list(run.ALL_WORKLOADS)
    with pytest.raises(SystemExit):
        run.parse_args(["--only", "W10"])
    with pytest.raises(SystemExit):
        run.parse_args(["--rounds", "0"])
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


# ---- issue 8 part 2: benchmarks that cannot flatter us -------------------------------------
class _FakeImpl:
    """A benchmark implementation (module protocol) that is right on the first call and wrong
    on every later step: only a check of the timed steps catches it."""

    @staticmethod
    def setup(mode):
        pass

    @staticmethod
    def make(mode, wid, data, size):
        from benchmarks.impls._base import Pool, Step
        from benchmarks.workloads import reference as ref_of

        calls = {"n": 0}
        if wid == "W1":
            x = data["x"]
            out = {}

            def step():
                calls["n"] += 1
                out["x_grad"] = 4.0 * x if calls["n"] == 1 or mode == "right" else 4.0 * x + 1.0

            return Step(step, lambda: dict(out))
        if wid == "W3":
            params = {k: data[k].copy() for k in ("W1", "b1", "W2", "b2")}
            out = {}

            def step3():
                calls["n"] += 1
                r = ref_of("W3", dict(data, **params), {})
                out.update({k: v.astype(numpy.float32) for k, v in r.items()})
                if calls["n"] > 1 and mode != "right":
                    out["W1_grad"] = out["W1_grad"] * 1.001  # 1e-3 off on the replays only
                for k in params:
                    params[k] = out[k]

            return Step(step3, lambda: dict(out))
        pool = Pool(data["pool"])
        out = {}

        def step5():
            calls["n"] += 1
            a = pool.next()
            c, g = cflow_ref(a)
            if calls["n"] > 1 and mode != "right":
                g = g * 2
            out.update(a=a, c=numpy.float32(c), a_grad=g.astype(numpy.float32))

        return Step(step5, lambda: dict(out))


@pytest.fixture
def fake_impl(monkeypatch):
    monkeypatch.setitem(sys.modules, "benchmarks.impls._fake_impl", _FakeImpl)
    import benchmarks.impls as impls

    for mode in ("wrong", "right"):
        monkeypatch.setitem(impls.BY_NAME, f"fake-{mode}", Impl(f"fake-{mode}", "_fake_impl", mode, "numpy"))


@pytest.mark.parametrize("wid", ["W1", "W3", "W5"])
def test_a_wrong_timed_result_fails_the_row(fake_impl, wid):
    ok = worker.run("fake-right", wid, "tiny", 0.001, 8)
    assert ok["status"] == "OK", ok
    bad = worker.run("fake-wrong", wid, "tiny", 0.001, 8)
    assert bad["status"] == "FAIL", bad
    assert "timed step" in bad["reason"] and "first call" not in bad["reason"]
    if wid == "W3":
        assert bad["err_first_call"] < 1e-6  # the capture was right: only the replays are wrong
        assert "W1_grad" in bad["reason"]


def test_training_steps_are_checked_from_the_parameters_before_the_timed_step():
    res = worker.run("numpy", "W3", "tiny", 0.001, 8)
    assert res["status"] == "OK" and "timed step 1" in res["checked"]
    assert res["err"] < 1e-5 and res["err_first_call"] < 1e-5


def test_gate_is_1e5_on_gradients():
    data = make_data("W2", SIZES["tiny"]["W2"])
    ref = reference("W2", data, {})
    for rel, ok in ((2e-5, False), (5e-6, True)):
        got = dict(ref, w_grad=ref["w_grad"] + rel * numpy.abs(ref["w_grad"]).max())
        assert check("W2", got, ref)[0] is ok
    assert all(WORKLOADS[w].tol["*"] <= 1e-5 for w in WORKLOADS)


def test_bound_is_lowered_by_a_kernel_that_beats_it():
    floors = {"bw_bytes_per_s": 1e10, "bw_kernel": "copy"}
    n = 1 << 20
    floor = 8 * n / 1e10
    recs = [{"impl": "numpy", "workload": "W1", "status": "OK", "median_s": 2 * floor, "min_s": 1.5 * floor, "size": n},
            {"impl": "numba-fused", "workload": "W1", "status": "OK", "median_s": 0.9 * floor, "min_s": 0.8 * floor, "size": n},
            {"impl": "jax.jit", "workload": "W1", "status": "FAIL", "median_s": 0.1 * floor, "min_s": 0.1 * floor, "size": n}]
    bounds = report.add_ratios(recs, floors)
    assert bounds["W1"]["bound_s"] == pytest.approx(0.8 * floor)  # the FAIL row does not count
    assert bounds["W1"]["from"] == "numba-fused" and "under-measured" in bounds["W1"]["why"]
    assert recs[1]["x_bound"] == pytest.approx(0.9 / 0.8) and recs[0]["x_bound"] == pytest.approx(2 / 0.8)
    assert all(r["x_bound"] >= 1 for r in recs if "x_bound" in r)
    assert "under-measured" in report.table(recs, floors)
    recs[1]["min_s"] = recs[1]["median_s"] = 1.2 * floor
    bounds = report.add_ratios(recs, floors)
    assert bounds["W1"]["bound_s"] == pytest.approx(floor) and bounds["W1"]["from"] == "floor"


def test_floors_take_the_best_of_several_measurements():
    a = {"status": "OK", "bw_kernels": {"copy": 5e9, "triad": 7e9}, "w3_matmul_s": 2e-3, "w9c_gemm_s": 1e-2}
    b = {"status": "OK", "bw_kernels": {"copy": 9e9, "triad": 6e9}, "w3_matmul_s": 3e-3, "w9c_gemm_s": 8e-3}
    m = bandwidth.merge(a, b, {"status": "ERROR"})
    assert m["bw_bytes_per_s"] == 9e9 and m["bw_kernel"] == "copy" and m["measurements"] == 2
    assert m["bw_kernels"]["triad"] == 7e9 and m["w3_matmul_s"] == 2e-3 and m["w9c_gemm_s"] == 8e-3
    res = bandwidth.conv_gemm_floor(SIZES["tiny"]["W9c"], 2)
    assert 0 < res["w9c_gemm_s"] <= res["w9c_gemm_median_s"]


def test_run_order_is_seeded_random_and_interleaved():
    impls = [BY_NAME[n] for n in ("numpy", "tracegrad", "tracegrad.jit")]
    wl = ["W1", "W2", "W3", "W6"]
    order = run.schedule(wl, impls, 3, seed=11)
    assert order == run.schedule(wl, impls, 3, seed=11)
    assert order != run.schedule(wl, impls, 3, seed=12)
    rows = [(w, i.name) for w in wl if w != "W6" for i in impls]
    blocks = [[o for o in order if o[2] == r] for r in range(3)]
    for r, block in enumerate(blocks):  # every row once per round, rounds one after another
        assert sorted((w, n) for w, n, _ in block if w != "W6") == sorted(rows)
        assert order[:sum(len(b) for b in blocks[:r + 1])][-len(block):] == block
    assert [(w, n) for w, n, _ in blocks[0]] != rows[:len(blocks[0])]  # not declaration order
    assert [b[:3] for b in blocks[0]] != [b[:3] for b in blocks[1]] or blocks[0] != blocks[1]
    w6 = [o for o in order if o[0] == "W6"]
    assert {n for _, n, _ in w6} == {"tracegrad", "tracegrad.jit"} and all(r == 2 for *_, r in w6)
    for rounds in (1, 2):  # W6 reuses a W3 row's cache: it comes after every W3 row
        o = run.schedule(wl, impls, rounds, seed=3)
        assert max(i for i, x in enumerate(o) if x[0] == "W3") < min(i for i, x in enumerate(o) if x[0] == "W6")


def test_rounds_merge_to_the_best_median_and_any_failure_fails():
    ok = [{"impl": "numpy", "workload": "W1", "status": "OK", "median_s": m, "min_s": m / 2,
           "first_call_s": 0.1, "err": e, "position": p} for m, e, p in ((3.0, 1e-7, 0), (2.0, 2e-7, 5))]
    merged = run.merge_rounds(ok)
    assert merged["median_s"] == 2.0 and merged["min_s"] == 1.0 and merged["err"] == 2e-7
    assert [r["position"] for r in merged["rounds"]] == [0, 5]
    failed = run.merge_rounds([ok[0], dict(ok[1], status="FAIL", reason="wrong")])
    assert failed["status"] == "FAIL" and failed["reason"] == "wrong"


def test_numpy_w1_computes_only_the_gradient():
    import tracemalloc

    from benchmarks.impls import numpy_impl

    n = 1 << 20
    st = numpy_impl.make("hand", "W1", make_data("W1", n), n)
    st.step()
    tracemalloc.start()
    st.step()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1.5 * 4 * n  # one float32 result (x.grad); the unused y would double it
    assert set(st.fetch()) == {"x_grad"}


def test_jax_reads_the_thread_setting():
    """What the harness sets is what XLA's CPU pool has: its Eigen threads, counted."""
    pytest.importorskip("jax")
    code = ("import jax, jax.numpy as jnp; from benchmarks.common import thread_names;"
            "jax.jit(lambda a: a @ a)(jnp.ones((256, 256))).block_until_ready();"
            "print(sum(v for k, v in thread_names().items() if 'XLAEigen' in k))")
    for n in ((os.cpu_count() or 1) + 1,):  # a pool size the machine would not pick by itself
        env = common.thread_env(n)
        env["JAX_PLATFORMS"] = "cpu"
        env["PYTHONPATH"] = ROOT
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-1000:]
        assert int(out.stdout.split()[-1]) == n


def test_plain_jax_grad_runs_w5():
    pytest.importorskip("jax")
    res = worker.run("jax", "W5", "tiny", 0.001, 4)
    assert res["status"] == "OK", res
    assert "XLA Eigen pool" in res["notes"]
    assert worker.run("jax.jit", "W5", "tiny", 0.001, 4)["status"] == "N/A"


def test_jit_rows_report_their_backend():
    from benchmarks.impls.tracegrad_impl import jit_backend

    class V:
        def __init__(self, number, backend):
            self.number, self.backend, self.replays = number, backend, 3

    class F:
        variants = [V(1, "compiled"), V(2, "interpret")]
        counters = type("C", (), {"fallbacks": 2})()

    text = jit_backend(F())
    assert "compiled: 1 variant(s) (#1:3 replays)" in text and "interpret: 1 variant(s)" in text
    assert "fallbacks 2" in text
    res = worker.run("tracegrad.jit", "W4", "tiny", 0.001, 4)
    assert res["status"] == "OK", res
    assert res["backend"].startswith(("compiled", "interpret")), res["backend"]


@pytest.mark.parametrize("wid,mode", [("W7", "jit"), ("W9", "record"), ("W9c", "jit"), ("W7", "gluon"), ("W8", "gluon")])
def test_tracegrad_layer_rows_skip_naming_what_is_missing(wid, mode):
    import importlib.util

    import tracegrad

    name = {"record": "tracegrad", "jit": "tracegrad.jit", "gluon": "tracegrad.gluon"}[mode]
    res = worker.run(name, wid, "tiny", 0.001, 4)
    if mode == "gluon":
        missing = importlib.util.find_spec("tracegrad.gluon") is None
        what = "tracegrad.gluon"
    else:
        missing = not hasattr(tracegrad.npx, "convolution")
        what = "npx.convolution"
    if missing:
        assert res["status"] == "SKIP" and what in res["reason"], res
    else:
        assert res["status"] in ("OK", "SKIP"), res  # SKIP: another op of the row not there yet


def test_layer_references_agree_with_torch_float64():
    """The numpy float64 references of W7-W9c against PyTorch's autograd in float64."""
    torch = pytest.importorskip("torch")
    from benchmarks.impls import torch_nn

    for wid in ("W7", "W8", "W9", "W9c"):
        d = make_data(wid, SIZES["tiny"][wid])
        d64 = {k: v.astype(numpy.float64) if v.dtype == numpy.float32 else v for k, v in d.items()}
        if wid == "W8":
            torch.set_default_dtype(torch.float64)
            try:
                st = torch_nn.make(torch, "eager", wid, {k: v.copy() for k, v in d64.items()}, None)
                steps = [worker._fetch(st) for _ in range(3) if st.step() is None]
            finally:
                torch.set_default_dtype(torch.float32)
            ref = reference(wid, workloads.with_params(d64, steps[1], workloads_nn.w8_params()), steps[2], steps[:2])
            got = steps[2]
        else:
            st = torch_nn.make(torch, "eager", wid, {k: v.copy() for k, v in d64.items()}, SIZES["tiny"][wid])
            st.step()
            got, ref = st.fetch(), reference(wid, d64, {})
        for k, want in ref.items():
            assert numpy.allclose(got[k], want, rtol=1e-9, atol=1e-11), (wid, k)


def test_run_metadata_has_commit_load_dates_and_order(monkeypatch):
    calls = []

    def floors(*a, **k):
        calls.append(a)
        return {"status": "OK", "bw_kernels": {"copy": 1e10 * len(calls)}, "w3_matmul_s": 1e-3}

    monkeypatch.setattr(run, "measure_floors", floors)
    doc = run.run_all(["W4"], [BY_NAME["numpy"]], "tiny", 0.01, 120, quick=True, progress=False,
                      rounds=2, seed=5)
    doc2 = run.run_all(["W4"], [BY_NAME["numpy"]], "tiny", 0.01, 120, quick=False, progress=False,
                       rounds=2, seed=5)
    meta = doc["meta"]
    assert meta["order_seed"] == 5 and meta["order"] == ["W4/numpy/r0", "W4/numpy/r1"]
    assert meta["date_start"] <= meta["date_end"] and meta["loadavg_before"] and meta["loadavg_after"]
    assert len(meta["commit"]["sha"]) == 40 and meta["commit"]["dirty"] in (True, False)
    (row,) = doc["results"]
    assert row["status"] == "OK" and len(row["rounds"]) == 2
    assert len(doc["floors_runs"]) == 1  # --quick measures the floors once
    assert len(doc2["floors_runs"]) == 2 and doc2["floors"]["measurements"] == 2  # full: before and after
    assert doc2["floors"]["bw_bytes_per_s"] == 3e10  # the best of them
    text = report.table(doc["results"], doc["floors"], meta)
    assert "commit " + meta["commit"]["sha"][:12] in text and "seed 5" in text and "load average after" in text


def test_w7_reference_differentiates_the_max_pool_piece_float32_chose() -> None:
    # two window elements within float32 rounding: float32 and float64 pick different maxima
    import numpy as np

    from benchmarks import nn_ref

    x32 = np.zeros((1, 1, 2, 2), np.float32)
    x32[0, 0, 0, 0], x32[0, 0, 1, 1] = 1.0, 1.0  # a tie in float32: the first maximum wins
    x64 = x32.astype(np.float64)
    x64[0, 0, 1, 1] += 1e-9  # float64 sees the last one as larger
    _, route = nn_ref.maxpool2(x32)
    _, free = nn_ref.maxpool2(x64)
    _, routed = nn_ref.maxpool2(x64, route)
    assert free.ravel().tolist() == [3] and routed.ravel().tolist() == [0]


def test_w7_reference_accepts_the_other_piece_only_at_a_near_tie(monkeypatch):
    """A timed step whose float32 forward chose the other piece of a near-tie passes; one that
    routed a window the tie search does not offer does not."""
    d = workloads_nn.make_data("W7", 4, numpy.random.default_rng(3))
    p = workloads_nn._f64(d)
    route = workloads_nn.lenet_route(d)
    monkeypatch.setattr(workloads_nn, "NEAR_TIE", 0.05)  # widen so that this small batch has ties
    ties = workloads_nn.lenet_near_ties(p)
    layer2 = [t for t in ties if t[0] == 1]
    assert layer2 and {t[0] for t in ties} >= {0, 1}
    slot, where, pieces = layer2[0]
    flipped = list(route)
    flipped[slot] = route[slot].copy()
    flipped[slot].flat[where] = pieces[1] if route[slot].flat[where] == pieces[0] else pieces[0]
    got = workloads_nn._w7_out(p, tuple(flipped))
    assert not check("W7", got, workloads_nn._ref_w7(d))[0]
    offered = [t for t in ties if t[0] == 0][:3] + [layer2[0]]
    monkeypatch.setattr(workloads_nn, "lenet_near_ties", lambda _p: offered)
    assert check("W7", got, workloads_nn._ref_w7(d, got))[0]
    monkeypatch.setattr(workloads_nn, "lenet_near_ties", lambda _p: offered[:3])
    assert not check("W7", got, workloads_nn._ref_w7(d, got))[0]
