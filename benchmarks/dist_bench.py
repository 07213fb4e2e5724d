"""tracegrad.distributed benchmarks: data-parallel scaling of the W3 step and allreduce cost.

    python benchmarks/dist_bench.py            # the full run (about a minute on a quiet machine)
    python benchmarks/dist_bench.py --quick    # fewer repeats and sizes

Parts (each in fresh processes, every runtime pinned to 1 thread per rank):
1. W3 (tanh MLP 784-512-10, softmax cross-entropy, SGD) at twice the batch: one process
   on batch 512 vs `mpiexec -n 2`, each rank on 256 with the gradients averaged by
   `hvd.grouped_allreduce_` between the compiled forward+backward and the compiled update.
   Target: >= 1.8x the throughput.
2. Allreduce of 100 MB of float32 between 2 local ranks: `hvd.allreduce_` (one array) and
   `hvd.grouped_allreduce_` (100 arrays of 1 MB through the fusion buffers) vs mpi4py's own
   `Allreduce` on one buffer. Target: within 1.5x.
3. Allreduce cost per message size here, and the modelled step time of W3 for 8, 64 and
   512 ranks with a ring allreduce at 10 and 100 Gb/s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
W3_GLOBAL_BATCH = 512
SIZES_BYTES = (4 << 10, 64 << 10, 1 << 20, 16 << 20, 100 << 20)
TAG = "DIST_BENCH "
if ROOT not in sys.path:  # this checkout's tracegrad, also when run as a script
    sys.path.insert(0, ROOT)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    for var in ("TRACEGRAD_NUM_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS"):
        env[var] = "1"
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run(cmd: list[str], timeout: float = 600) -> dict:
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(TAG)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads(lines[-1][len(TAG):])


# ---- workers (run inside the ranks) ---------------------------------------------------------
def _w3_worker(batch: int, steps: int, repeats: int) -> dict:
    import numpy

    import tracegrad
    import tracegrad.distributed as hvd
    from tracegrad import autograd, np, npx
    sys.path.insert(0, HERE)
    from workloads import LR, make_data

    hvd.init()
    r, n = hvd.rank(), hvd.size()
    d = make_data("W3", (batch, 784, 512, 10), seed=r)
    X, y = np.array(d["X"]), np.array(d["y"], dtype=numpy.int64)
    ps = [np.array(d[k]) for k in ("W1", "b1", "W2", "b2")]
    hvd.broadcast_parameters({str(i): p for i, p in enumerate(ps)}, root_rank=0)
    for p in ps:
        p.attach_grad()

    @tracegrad.jit
    def grads(X: Any, y: Any, W1: Any, b1: Any, W2: Any, b2: Any) -> Any:
        with autograd.record():
            h = np.tanh(np.dot(X, W1) + b1)
            loss = -npx.pick(npx.log_softmax(np.dot(h, W2) + b2), y).mean()
        loss.backward()
        return loss

    @tracegrad.jit
    def update(W1: Any, b1: Any, W2: Any, b2: Any) -> None:
        for p in (W1, b1, W2, b2):
            p -= LR * p.grad

    @tracegrad.jit
    def fused(X: Any, y: Any, W1: Any, b1: Any, W2: Any, b2: Any) -> Any:  # one process: one program
        with autograd.record():
            h = np.tanh(np.dot(X, W1) + b1)
            loss = -npx.pick(npx.log_softmax(np.dot(h, W2) + b2), y).mean()
        loss.backward()
        for p in (W1, b1, W2, b2):
            p -= LR * p.grad
        return loss

    def split_step() -> None:
        grads(X, y, *ps)
        hvd.grouped_allreduce_([p.grad for p in ps], name="w3")
        update(*ps)

    def fused_step() -> None:
        fused(X, y, *ps)

    out: dict[str, Any] = {"rank": r, "size": n, "batch": batch}
    kinds = [("split", split_step)] + ([("fused", fused_step)] if n == 1 else [])
    for kind, step in kinds:
        for _ in range(3):  # compile and warm up
            step()
        times = []
        for _ in range(repeats):
            hvd.allreduce(np.zeros((1,)))  # line the ranks up
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            hvd.allreduce(np.zeros((1,)))  # every rank has finished the steps
            times.append((time.perf_counter() - t0) / steps)
        out[kind] = min(times)
        out[kind + "_median"] = statistics.median(times)
    # the pieces of the distributed step, for the model
    t0 = time.perf_counter()
    for _ in range(steps):
        grads(X, y, *ps)
        update(*ps)
    out["compute"] = (time.perf_counter() - t0) / steps
    out["grad_bytes"] = int(sum(p.size * 4 for p in ps))
    hvd.shutdown()
    return out


def _allreduce_worker(sizes: list[int], budget: float) -> dict:
    import numpy
    from mpi4py import MPI

    import tracegrad.distributed as hvd
    from tracegrad import np

    hvd.init()
    comm = MPI.COMM_WORLD
    rows = []

    def timeit(fn: Any, nbytes: int) -> float:
        fn()
        reps = max(3, min(200, int(budget / max(nbytes / 2e9, 2e-5))))
        best = []
        for _ in range(reps):
            comm.Barrier()
            t0 = time.perf_counter()
            fn()
            best.append(time.perf_counter() - t0)
        return statistics.median(best)

    for nbytes in sizes:
        n = nbytes // 4
        buf = numpy.ones(n, numpy.float32)
        arr = np.array(numpy.ones(n, numpy.float32))
        ref = timeit(lambda: comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM), nbytes)
        ours = timeit(lambda: hvd.allreduce_(arr, op=hvd.Sum), nbytes)
        row = {"bytes": nbytes, "mpi4py": ref, "ours": ours}
        if nbytes >= (1 << 20):
            parts = [np.array(numpy.ones(n // 100, numpy.float32)) for _ in range(100)]
            row["grouped100"] = timeit(lambda: hvd.grouped_allreduce_(parts, op=hvd.Sum), nbytes)
        rows.append(row)
    hvd.shutdown()
    return {"rows": rows}


# ---- the model: ring allreduce over a network ---------------------------------------------------
def ring_allreduce_seconds(nbytes: int, ranks: int, gbit_s: float, latency_s: float) -> float:
    """A ring allreduce: 2(p-1) steps, each moving nbytes/p at the link bandwidth."""
    if ranks == 1:
        return 0.0
    bw = gbit_s * 1e9 / 8
    return 2 * (ranks - 1) * (latency_s + nbytes / ranks / bw)


def model(compute_s: float, grad_bytes: int) -> list[dict]:
    """Step time of W3 (per-rank batch 256, compute measured here) on p ranks, no overlap."""
    rows = []
    for gbit, lat in ((10.0, 25e-6), (100.0, 3e-6)):
        for p in (8, 64, 512):
            comm = ring_allreduce_seconds(grad_bytes, p, gbit, lat)
            step = compute_s + comm
            rows.append({"ranks": p, "gbit_s": gbit, "latency_us": lat * 1e6, "allreduce_ms": comm * 1e3,
                         "step_ms": step * 1e3, "efficiency": compute_s / step})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description="tracegrad.distributed benchmarks")
    ap.add_argument("--quick", action="store_true", help="fewer steps, repeats and sizes")
    ap.add_argument("--json", help="write the results to this file")
    ap.add_argument("--model-compute-ms", type=float, default=None,
                    help="model with this per-rank compute time instead of the one measured now")
    ap.add_argument("--worker", choices=["w3", "allreduce"], help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=W3_GLOBAL_BATCH, help=argparse.SUPPRESS)
    args = ap.parse_args()
    steps, repeats = (10, 3) if args.quick else (30, 5)
    sizes = list(SIZES_BYTES[1::2]) + [SIZES_BYTES[-1]] if args.quick else list(SIZES_BYTES)
    if args.worker:
        rank0 = os.environ.get("PMI_RANK", "0") == "0"
        if args.worker == "w3":
            res = _w3_worker(args.batch, steps, repeats)
        else:
            res = _allreduce_worker(sizes, 0.3 if args.quick else 1.0)
        if rank0:  # the ranks line up around every timed block: rank 0's figures are the job's
            print(TAG + json.dumps(res), flush=True)
        return

    from tracegrad.distributed.launch import command

    me = os.path.abspath(__file__)
    flags = ["--quick"] if args.quick else []
    one = _run([sys.executable, me, "--worker", "w3", "--batch", str(W3_GLOBAL_BATCH)] + flags)
    two = _run(command(2, [me, "--worker", "w3", "--batch", str(W3_GLOBAL_BATCH // 2)] + flags))
    ar = _run(command(2, [me, "--worker", "allreduce"] + flags))
    best_one = min(one["split"], one["fused"])
    compute = two["compute"] if args.model_compute_ms is None else args.model_compute_ms / 1e3
    res = {"w3_one": one, "w3_two": two, "allreduce": ar["rows"],
           "w3_speedup": best_one / two["split"],
           "model": model(compute, two["grad_bytes"])}
    print(f"W3, global batch {W3_GLOBAL_BATCH}, 1 thread per rank:")
    print(f"  1 rank  : {best_one * 1e3:7.2f} ms/step (fused program {one['fused'] * 1e3:.2f}, "
          f"split {one['split'] * 1e3:.2f})  {W3_GLOBAL_BATCH / best_one:8.0f} samples/s")
    print(f"  2 ranks : {two['split'] * 1e3:7.2f} ms/step  {W3_GLOBAL_BATCH / two['split']:8.0f} samples/s"
          f"  -> {res['w3_speedup']:.2f}x throughput (target >= 1.8x)")
    print("allreduce (sum, float32) between 2 local ranks, median seconds:")
    print(f"  {'bytes':>10} {'mpi4py':>10} {'ours':>10} {'ratio':>6} {'grouped/100':>12}")
    for row in ar["rows"]:
        g = f"{row['grouped100']:.5f}" if "grouped100" in row else ""
        print(f"  {row['bytes']:>10} {row['mpi4py']:10.6f} {row['ours']:10.6f} "
              f"{row['ours'] / row['mpi4py']:6.2f} {g:>12}")
    big = ar["rows"][-1]
    res["allreduce_100mb_ratio"] = big["ours"] / big["mpi4py"]
    res["allreduce_100mb_grouped_ratio"] = big.get("grouped100", float("nan")) / big["mpi4py"]
    print(f"  100 MB: one array {res['allreduce_100mb_ratio']:.2f}x, 100 fused arrays "
          f"{res['allreduce_100mb_grouped_ratio']:.2f}x mpi4py's one-buffer Allreduce (target <= 1.5x)")
    print(f"model: W3 per-rank batch 256, compute {compute * 1e3:.2f} ms, gradients "
          f"{two['grad_bytes'] / 1e6:.2f} MB, ring allreduce, no overlap:")
    for row in res["model"]:
        print(f"  {row['ranks']:>4} ranks {row['gbit_s']:>5.0f} Gb/s: allreduce {row['allreduce_ms']:7.3f} ms, "
              f"step {row['step_ms']:7.3f} ms, efficiency {row['efficiency']:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
