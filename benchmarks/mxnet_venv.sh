#!/usr/bin/env bash
# Creates the MXNet 2.0.0b1 venv the benchmark uses for its "mxnet" and "mxnet.hybrid" rows.
#
#   bash benchmarks/mxnet_venv.sh            # -> ~/.cache/tracegrad-bench/mxnet-venv
#   MXNET_VENV=/some/dir bash benchmarks/mxnet_venv.sh
#
# mxnet 2.0.0b1 (the last MXNet 2 wheel on PyPI, CPU, manylinux2014) uses `np.bool`, removed in
# numpy 1.24, so it needs numpy < 1.24 and therefore its own venv (tracegrad itself runs on
# numpy 2). Python 3.11 works (numpy 1.23.5 has cp311 wheels). About 60 MB of wheels.
# benchmarks.run finds the venv at the same default path (or $MXNET_VENV) and runs the worker
# with its python; without the venv the MXNet rows are SKIP with a pointer to this script.
set -euo pipefail
VENV="${MXNET_VENV:-$HOME/.cache/tracegrad-bench/mxnet-venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet "numpy<1.24" "mxnet==2.0.0b1"
"$VENV/bin/python" - <<'PY'
import mxnet, numpy
from mxnet import autograd, np
x = np.array([1.0, 2.0]); x.attach_grad()
with autograd.record():
    y = 2 * x * x
y.backward()
assert x.grad.asnumpy().tolist() == [4.0, 8.0], x.grad
print(f"mxnet {mxnet.__version__} with numpy {numpy.__version__}: OK")
PY
echo "MXNet venv ready: $VENV"
