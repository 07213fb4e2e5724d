"""tracegrad.distributed benchmarks: data-parallel scaling of the W3 step and allreduce cost.

    python benchmarks/dist_bench.py            # the full run (about a minute on a quiet machine)
    python benchmarks/dist_bench.py --quick    # fewer repeats and sizes

Parts (each in fresh processes, every runtime pinned to 1 thread per rank):
1. W3 (tanh MLP 784-512-10, softmax cross-entropy, SGD) and W7 (LeNet-5 in Gluon, SGD) at
   twice the batch: one process on the global batch (512, 256) vs `mpiexec -n 2`, each rank
   on half. Every step is one `tracegrad.jit` program: forward, backward, the allreduce of
   the gradients (a host step inside the program: `hvd.grouped_allreduce_` for W3,
   `gluon.Trainer(kvstore='horovod')` for W7) and the update. W3's pieces are also timed one
   by one (forward+backward, allreduce, update). Target: >= 1.8x the throughput.
   `--rounds N` interleaves N such pairs (the machine may be shared: best and median).
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
    env["TRACEGRAD_BACKGROUND"] = "0"  # compile before the timed steps, not in a child beside them
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
def _timed(step: Any, steps: int, repeats: int) -> tuple[float, float, list[float]]:
    """(best, median, all) seconds per step over `repeats` blocks of `steps` steps, the ranks
    lined up before and after every block (so a block's time is the slowest rank's)."""
    import numpy

    import tracegrad.distributed as hvd
    from tracegrad import np

    times = []
    for _ in range(repeats):
        hvd.allreduce(np.zeros((1,)))
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        hvd.allreduce(np.zeros((1,)))
        times.append((time.perf_counter() - t0) / steps)
    return min(times), statistics.median(times), [float(t) for t in numpy.round(times, 6)]


def _w3_worker(batch: int, steps: int, repeats: int) -> dict:
    """W3 as one compiled program per step (forward, backward, allreduce of the gradients on
    2 ranks, update), plus the pieces of the step timed one by one."""
    import numpy

    import tracegrad
    import tracegrad.distributed as hvd
    from tracegrad import autograd, np, npx
    from tracegrad.distributed import collectives
    from benchmarks.workloads import LR, make_data

    hvd.init()
    r, n = hvd.rank(), hvd.size()
    d = make_data("W3", (batch, 784, 512, 10), seed=r)
    X, y = np.array(d["X"]), np.array(d["y"], dtype=numpy.int64)
    ps = [np.array(d[k]) for k in ("W1", "b1", "W2", "b2")]
    hvd.broadcast_parameters({str(i): p for i, p in enumerate(ps)}, root_rank=0)
    for p in ps:
        p.attach_grad()

    def fwd_bwd(X: Any, y: Any, W1: Any, b1: Any, W2: Any, b2: Any) -> Any:
        with autograd.record():
            h = np.tanh(np.dot(X, W1) + b1)
            loss = -npx.pick(npx.log_softmax(np.dot(h, W2) + b2), y).mean()
        loss.backward()
        return loss

    def sgd(W1: Any, b1: Any, W2: Any, b2: Any) -> None:
        for p in (W1, b1, W2, b2):
            p -= LR * p.grad

    grads, update = tracegrad.jit(fwd_bwd), tracegrad.jit(sgd)

    @tracegrad.jit
    def fused(X: Any, y: Any, W1: Any, b1: Any, W2: Any, b2: Any) -> Any:  # one program
        loss = fwd_bwd(X, y, W1, b1, W2, b2)
        if n > 1:
            hvd.grouped_allreduce_([W1.grad, b1.grad, W2.grad, b2.grad], name="w3")
        sgd(W1, b1, W2, b2)
        return loss

    def split_step() -> None:
        grads(X, y, *ps)
        hvd.grouped_allreduce_([p.grad for p in ps], name="w3")
        update(*ps)

    out: dict[str, Any] = {"rank": r, "size": n, "batch": batch}
    for kind, step in (("fused", lambda: fused(X, y, *ps)), ("split", split_step)):
        for _ in range(3):  # compile and warm up
            step()
        s0 = dict(collectives.PROGRAM_STATS)
        out[kind], out[kind + "_median"], out[kind + "_all"] = _timed(step, steps, repeats)
        calls = collectives.PROGRAM_STATS["calls"] - s0["calls"]
        if calls:
            out[kind + "_allreduce_in_program"] = (collectives.PROGRAM_STATS["seconds"] - s0["seconds"]) / calls
    out["fused_replays"] = fused.counters.replays
    # the pieces, each timed alone (medians of `steps` calls; the allreduce after a barrier,
    # so it is the transfer alone, without waiting for a late rank)
    pieces: dict[str, list] = {"fwd_bwd": [], "allreduce": [], "update": []}
    gs = [p.grad for p in ps]
    for _ in range(steps):
        t0 = time.perf_counter()
        grads(X, y, *ps)
        t1 = time.perf_counter()
        hvd.allreduce(np.zeros((1,)))
        t2 = time.perf_counter()
        hvd.grouped_allreduce_(gs, name="w3")
        t3 = time.perf_counter()
        update(*ps)
        t4 = time.perf_counter()
        pieces["fwd_bwd"].append(t1 - t0)
        pieces["allreduce"].append(t3 - t2)
        pieces["update"].append(t4 - t3)
    for k, v in pieces.items():
        out["piece_" + k] = statistics.median(v)
    out["compute"] = out["piece_fwd_bwd"] + out["piece_update"]
    out["grad_bytes"] = int(sum(p.size * 4 for p in ps))
    hvd.shutdown()
    return out


def _w7_worker(batch: int, steps: int, repeats: int) -> dict:
    """W7 (LeNet-5, Gluon) as one compiled program per step: `gluon.Trainer(kvstore='horovod')`
    on 2 ranks (forward, backward, allreduce, update under tracegrad.jit)."""
    import importlib
    from types import SimpleNamespace

    import numpy

    import tracegrad
    import tracegrad.distributed as hvd
    from tracegrad.distributed import collectives
    from benchmarks.impls import gluon_steps
    from benchmarks.workloads_nn import LR7, make_data

    hvd.init()
    r, n = hvd.rank(), hvd.size()
    d = make_data("W7", batch, numpy.random.default_rng(100 + r))
    mx = SimpleNamespace(np=tracegrad.np, npx=tracegrad.npx, autograd=tracegrad.autograd,
                         gluon=importlib.import_module("tracegrad.gluon"))
    net, _ = gluon_steps.build(mx, "W7", d)
    net.hybridize(static_alloc=True, static_shape=True)
    params = net.collect_params()
    hvd.broadcast_parameters(params, root_rank=0)
    trainer = mx.gluon.Trainer(params, "sgd", {"learning_rate": LR7},
                               kvstore="horovod" if n > 1 else "device")
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    X, y = mx.np.array(d["X"]), mx.np.array(d["y"], dtype=d["y"].dtype)

    train_step = tracegrad.jit(gluon_steps.step_fn(mx, net, loss_fn, trainer, batch))

    out: dict[str, Any] = {"rank": r, "size": n, "batch": batch}
    for _ in range(3):
        train_step(X, y)
    s0 = dict(collectives.PROGRAM_STATS)
    out["fused"], out["fused_median"], out["fused_all"] = _timed(lambda: train_step(X, y), steps, repeats)
    calls = collectives.PROGRAM_STATS["calls"] - s0["calls"]
    if calls:
        out["fused_allreduce_in_program"] = (collectives.PROGRAM_STATS["seconds"] - s0["seconds"]) / calls
    out["fused_replays"] = train_step.counters.replays
    out["grad_bytes"] = int(sum(p.data().size * 4 for p in params.values()))
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


W7_GLOBAL_BATCH = 256


def _load() -> float:
    return os.getloadavg()[0]


def _pair(me: str, wid: str, batch: int, flags: list[str]) -> dict:
    """One rank on the global batch, then 2 ranks on half of it each; their figures."""
    from tracegrad.distributed.launch import command

    load0 = _load()
    one = _run([sys.executable, me, "--worker", wid, "--batch", str(batch)] + flags)
    two = _run(command(2, [me, "--worker", wid, "--batch", str(batch // 2)] + flags))
    return {"one": one, "two": two, "load": [load0, _load()],
            "speedup": one["fused"] / two["fused"],
            "speedup_median": one["fused_median"] / two["fused_median"]}


def main() -> None:
    ap = argparse.ArgumentParser(description="tracegrad.distributed benchmarks")
    ap.add_argument("--quick", action="store_true", help="fewer steps, repeats and sizes")
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure the 1-rank/2-rank pairs this many times, interleaved (default 1)")
    ap.add_argument("--only", action="append", choices=["w3", "w7", "allreduce"],
                    help="run only these parts (repeatable; default all)")
    ap.add_argument("--json", help="write the results to this file")
    ap.add_argument("--model-compute-ms", type=float, default=None,
                    help="model with this per-rank compute time instead of the one measured now")
    ap.add_argument("--worker", choices=["w3", "w7", "allreduce"], help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=W3_GLOBAL_BATCH, help=argparse.SUPPRESS)
    args = ap.parse_args()
    steps, repeats = (10, 3) if args.quick else (30, 5)
    sizes = list(SIZES_BYTES[1:]) if args.quick else list(SIZES_BYTES)
    if args.worker:
        rank0 = os.environ.get("PMI_RANK", "0") == "0"
        if args.worker == "w3":
            res = _w3_worker(args.batch, steps, repeats)
        elif args.worker == "w7":
            res = _w7_worker(args.batch, steps, repeats)
        else:
            res = _allreduce_worker(sizes, 0.3 if args.quick else 1.0)
        if rank0:  # the ranks line up around every timed block: rank 0's figures are the job's
            print(TAG + json.dumps(res), flush=True)
        return

    from tracegrad.distributed.launch import command

    me = os.path.abspath(__file__)
    flags = ["--quick"] if args.quick else []
    parts = args.only or ["w3", "w7", "allreduce"]
    res: dict[str, Any] = {"rounds": {}}
    for k in range(args.rounds):
        for wid, batch in (("w3", W3_GLOBAL_BATCH), ("w7", W7_GLOBAL_BATCH)):
            if wid in parts:
                pair = _pair(me, wid, batch, flags)
                res["rounds"].setdefault(wid, []).append(pair)
                print(f"round {k + 1} {wid.upper()} (load {pair['load'][0]:.1f}-{pair['load'][1]:.1f}): "
                      f"1 rank {pair['one']['fused'] * 1e3:.2f} ms/step, 2 ranks "
                      f"{pair['two']['fused'] * 1e3:.2f} ms/step -> {pair['speedup']:.2f}x "
                      f"(medians {pair['speedup_median']:.2f}x)", flush=True)
    for wid, batch in (("w3", W3_GLOBAL_BATCH), ("w7", W7_GLOBAL_BATCH)):
        pairs = res["rounds"].get(wid)
        if not pairs:
            continue
        best = [p["speedup"] for p in pairs]
        res[wid + "_speedup_best"] = max(best)
        res[wid + "_speedup_median"] = statistics.median(best)
        two = pairs[-1]["two"]
        print(f"{wid.upper()}, global batch {batch}, 1 thread per rank, one compiled program per step "
              f"(allreduce inside it on 2 ranks; {two['fused_replays']} replays): throughput ratio "
              f"best {max(best):.2f}x, median {statistics.median(best):.2f}x over {len(best)} rounds "
              f"(target >= 1.8x); loads {[round(p['load'][0], 1) for p in pairs]}")
        if "fused_allreduce_in_program" in two:
            print(f"  2 ranks: step {two['fused'] * 1e3:.2f} ms, of which the allreduce host step "
                  f"{two['fused_allreduce_in_program'] * 1e3:.2f} ms ({two['grad_bytes'] / 1e6:.2f} MB)")
        if wid == "w3":
            print(f"  2-rank pieces alone (medians): forward+backward {two['piece_fwd_bwd'] * 1e3:.2f} ms, "
                  f"allreduce {two['piece_allreduce'] * 1e3:.2f} ms, update {two['piece_update'] * 1e3:.2f} ms; "
                  f"split step {two['split'] * 1e3:.2f} ms")
    if "allreduce" in parts:
        ar = _run(command(2, [me, "--worker", "allreduce"] + flags))
        res["allreduce"] = ar["rows"]
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
    w3 = res["rounds"].get("w3")
    if w3 or args.model_compute_ms is not None:
        compute = w3[-1]["two"]["compute"] if args.model_compute_ms is None else args.model_compute_ms / 1e3
        grad_bytes = w3[-1]["two"]["grad_bytes"] if w3 else 1_628_200
        res["model"] = model(compute, grad_bytes)
        print(f"model: W3 per-rank batch 256, compute {compute * 1e3:.2f} ms, gradients "
              f"{grad_bytes / 1e6:.2f} MB, ring allreduce, no overlap:")
        for row in res["model"]:
            print(f"  {row['ranks']:>4} ranks {row['gbit_s']:>5.0f} Gb/s: allreduce {row['allreduce_ms']:7.3f} ms, "
                  f"step {row['step_ms']:7.3f} ms, efficiency {row['efficiency']:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
