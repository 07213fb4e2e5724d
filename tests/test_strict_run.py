"""The op and gradient suites under TRACEGRAD_COMPILE=strict, in a subprocess of the default run.

Strict mode compiles every trace and raises where the default mode would quietly run the
interpreter, so a trace the compiler stops handling fails here instead of only getting
slower. The subprocess uses a private cache folder and `NUMBA_OPT=0`: what is checked is
that every trace compiles and gives the suite's answers, not the speed of the code (the
optimized code runs in tests/codegen/, e.g. test_compiled_cases.py). The table-driven tests
run (every op case's forward in float64 and its gradient against central differences);
the hypothesis searches, the float32 variants and the hand-written tests stay out (each
new shape is one more compile: the whole two files cost ~20 minutes of compiling).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUITES = [
    ("tests/test_ops_forward.py", "test_forward_matches_numpy_float64"),
    ("tests/test_gradients.py", "test_gradient_matches_central_differences"),
]


@pytest.fixture(scope="module")
def strict_run(tmp_path_factory) -> tuple[int, str]:
    env = dict(os.environ)
    env.update(TRACEGRAD_COMPILE="strict", NUMBA_OPT="0",
               TRACEGRAD_CACHE_DIR=str(tmp_path_factory.mktemp("strict-cache")))
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    out, rc = [], 0
    for path, select in SUITES:
        cmd = [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", path]
        if select:
            cmd += ["-k", select]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        rc = rc or proc.returncode
        out.append(f"$ {' '.join(cmd[3:])}\n{proc.stdout[-20000:]}{proc.stderr[-5000:]}")
    return rc, "\n".join(out)


def test_op_and_gradient_suites_pass_in_strict_mode(strict_run) -> None:
    rc, output = strict_run
    assert rc == 0, output[-12000:]
    passed = sum(int(n) for n in re.findall(r"(\d+) passed", output))
    assert passed >= 250, output[-4000:]  # the selections ran (not an empty -k match)
