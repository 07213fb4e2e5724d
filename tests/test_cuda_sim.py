"""The CUDA renderer under Numba's CUDA simulator, compared with the CPU results.

The simulator must be switched on before numba.cuda is first imported, so the cases
(tests/cuda_sim_cases.py) run in subprocesses with NUMBA_ENABLE_CUDASIM=1 (every op case
of tests/op_cases.py included). They run in three shards, one subprocess and one test each
(the op table's core cases, its nn and linalg cases, every other case), so a parallel run
spreads them over its workers; a failing shard names its failing cases. Tests marked `gpu`
run the same cases on a real GPU and are skipped (and deselected by default) where there is
none.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = os.path.join(ROOT, "tests", "cuda_sim_cases.py")


def _case_names(slow: bool = False) -> list[str]:
    """The case names (those ending in `_slow` only run in the slow driver test)."""
    with open(CASES) as fh:
        names = re.findall(r"^def (test_\w+)\(", fh.read(), re.M)
    return [n for n in names if n.endswith("_slow") == slow]


def _has_numba_cuda() -> bool:
    try:
        return importlib.util.find_spec("numba.cuda") is not None
    except ImportError:
        return False


def _run_cases(env_extra: dict[str, str], timeout: int, select: str = "not _slow",
               targets: tuple[str, ...] = (CASES,)) -> tuple[int, str]:
    env = dict(os.environ)
    env.update(env_extra)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-rfE", "-p", "no:cacheprovider", "-m", "", "-k", select, *targets],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr


OP_CASES = "test_op_cases_all_on_gpu"
# shard -> (the tests it runs, as node ids or as every other case)
SHARDS = {
    "op_cases_core": [f"{OP_CASES}[core]"],
    "op_cases_nn_linalg": [f"{OP_CASES}[nn_linalg]"],
    "other_cases": [n for n in _case_names() if n != OP_CASES],
}


def _outcome(output: str, name: str) -> str:
    m = re.search(rf"::{re.escape(name)} (PASSED|FAILED|ERROR|SKIPPED)", output)
    return m.group(1) if m else "MISSING"


def test_the_shards_hold_every_case() -> None:
    assert OP_CASES in _case_names()
    assert {n.split("[")[0] for names in SHARDS.values() for n in names} == set(_case_names())


@pytest.mark.parametrize("shard", sorted(SHARDS))
def test_cuda_simulator_cases(shard: str) -> None:
    if not _has_numba_cuda():
        pytest.skip("numba.cuda is not installed (pip install tracegrad[cuda])")
    names = SHARDS[shard]
    if shard.startswith("op_cases"):
        targets, select = tuple(f"{CASES}::{n}" for n in names), ""
    else:
        targets, select = (CASES,), f"not _slow and not {OP_CASES}"
    rc, output = _run_cases({"NUMBA_ENABLE_CUDASIM": "1"}, timeout=540, select=select, targets=targets)
    outcomes = {n: _outcome(output, n) for n in names}
    bad = {n: o for n, o in outcomes.items() if o not in ("PASSED", "SKIPPED")}
    assert not bad and rc == 0, f"{bad}\n{output[-6000:]}"
    assert "PASSED" in outcomes.values(), output[-6000:]  # (not every case skipped)


def test_gpu_without_cuda_is_a_clear_error() -> None:
    """Without a GPU (this process never enables the simulator) asking for one says what to do."""
    code = (
        "from tracegrad import npx\n"
        "from tracegrad.device import DeviceError\n"
        "assert npx.num_gpus() == 0\n"
        "try:\n    npx.gpu(0)\nexcept DeviceError as e:\n    print('MSG', e)\n"
    )
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    if "MSG" not in proc.stdout and proc.returncode == 0:
        pytest.skip("this machine has a CUDA GPU")
    assert proc.returncode == 0, proc.stderr
    assert "pip install tracegrad[cuda]" in proc.stdout and "NUMBA_ENABLE_CUDASIM" in proc.stdout


@pytest.mark.gpu
def test_cases_on_a_real_gpu() -> None:
    if not _has_numba_cuda():
        pytest.skip("numba.cuda is not installed")
    probe = subprocess.run(
        [sys.executable, "-c", "from numba import cuda; print(cuda.is_available())"],
        capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"},
    )  # fmt: skip
    if "True" not in probe.stdout:
        pytest.skip("no CUDA GPU on this machine")
    env = {"TRACEGRAD_TEST_REAL_GPU": "1", "NUMBA_ENABLE_CUDASIM": "0"}
    rc, output = _run_cases(env, timeout=600, select="")
    assert rc == 0, output[-8000:]


def test_device_strings_and_equality() -> None:
    from tracegrad import npx
    from tracegrad.device import DeviceError, as_device

    assert as_device("cpu") == npx.cpu() == "cpu(0)" and as_device("cpu(0)") == npx.cpu(0)
    assert hash(npx.cpu()) == hash(as_device(" CPU "))
    with pytest.raises(DeviceError, match="not a device"):
        as_device("tpu(0)")
    with npx.cpu():
        assert npx.current_device() == npx.cpu()
