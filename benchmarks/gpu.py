"""The CUDA benchmark for issue 5: W1 2^24 and W2 2^22 (and W3) on one NVIDIA GPU.

    python -m benchmarks.gpu [--only W1,W2,W3] [--impls tracegrad,torch,torch.compile,numba-cuda]
                             [--n1 16777216] [--n2 4194304] [--w3 256,784,512,10]
                             [--reps 50] [--json gpu.json]

Rows: tracegrad on CUDA (arrays created with device=npx.gpu(0); SKIP when tracegrad has no
GPU support or sees no GPU), torch eager and torch.compile on CUDA (the whole step with
torch.func.grad_and_value), a hand-written numba-cuda fused kernel, and the bandwidth bound
measured in the same run (device-to-device copy: 2 x bytes / time, best of `reps`). Every row
is checked against the float64 numpy reference before its time is shown. Each step is timed
from launch to device synchronize (median of `reps` after warm-up), so host-side launch
overhead counts, as it does for a user. Runs in well under 5 minutes on an H100; imports
nothing heavy until main() runs (it is import-safe on machines without a GPU).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any, Callable, Optional

IMPLS = ("tracegrad", "torch", "torch.compile", "numba-cuda")
WORKLOADS_GPU = ("W1", "W2", "W3")


class Unavailable(Exception):
    """This row cannot run here (reported as SKIP with the reason)."""


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.splitlines()[0])
    p.add_argument("--only", default="W1,W2,W3", help="comma-separated workloads among W1,W2,W3")
    p.add_argument("--impls", default=",".join(IMPLS), help=f"comma-separated among {','.join(IMPLS)}")
    p.add_argument("--n1", type=int, default=1 << 24, help="W1 size (default 2^24)")
    p.add_argument("--n2", type=int, default=1 << 22, help="W2 size (default 2^22)")
    p.add_argument("--w3", default="256,784,512,10", help="W3 batch,d_in,hidden,classes")
    p.add_argument("--reps", type=int, default=50, help="timed steps per row")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--device", type=int, default=0, help="CUDA device index")
    p.add_argument("--json", default=None, help="write the rows here")
    a = p.parse_args(argv)
    a.workloads = [w.strip().upper() for w in a.only.split(",") if w.strip()]
    bad = [w for w in a.workloads if w not in WORKLOADS_GPU]
    if bad:
        p.error(f"unknown workload(s) {bad}; choose from {','.join(WORKLOADS_GPU)}")
    a.impl_list = [i.strip() for i in a.impls.split(",") if i.strip()]
    bad = [i for i in a.impl_list if i not in IMPLS]
    if bad:
        p.error(f"unknown implementation(s) {bad}; choose from {','.join(IMPLS)}")
    if a.reps < 1 or a.n1 < 1 or a.n2 < 1:
        p.error("--reps, --n1 and --n2 must be positive")
    try:
        a.w3_size = tuple(int(v) for v in a.w3.split(","))
    except ValueError:
        a.w3_size = ()
    if len(a.w3_size) != 4 or min(a.w3_size) < 1:
        p.error("--w3 takes four positive integers: batch,d_in,hidden,classes")
    return a


def size_of(wid: str, a: argparse.Namespace) -> Any:
    """The size of workload `wid` under these arguments."""
    return {"W1": a.n1, "W2": a.n2, "W3": a.w3_size}[wid]


# ---- timing ------------------------------------------------------------------------------
def time_steps(step: Callable[[], Any], sync: Callable[[], None], reps: int, warmup: int) -> dict[str, float]:
    """First call (incl. compile), then the median launch-to-synchronize time of `reps` steps."""
    t0 = time.perf_counter()
    step()
    sync()
    first = time.perf_counter() - t0
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return {"first_call_s": first, "median_s": statistics.median(times), "min_s": min(times)}


# ---- implementations: each returns (step, fetch, sync) -----------------------------------
def _torch(compiled: bool, wid: str, d: dict[str, Any], dev: int) -> tuple:
    try:
        import torch
    except ImportError as e:
        raise Unavailable(f"torch not installed ({e})") from e
    if not torch.cuda.is_available():
        raise Unavailable("torch sees no CUDA device (CPU build or no driver)")
    from .impls import torch_impl

    torch_impl.torch = torch
    cuda = torch.device("cuda", dev)
    t = {k: torch.from_numpy(v).to(cuda) for k, v in d.items()}
    out: dict[str, Any] = {}
    func = torch.func
    if wid == "W1":
        if compiled:
            fn = torch.compile(func.grad(lambda x: (2 * x * x).sum()))

            def step() -> None:
                out["x_grad"] = fn(t["x"])
        else:
            x = t["x"].requires_grad_()

            def step() -> None:
                x.grad = None
                (2 * x * x).sum().backward()
                out["x_grad"] = x.grad
    elif wid == "W2":
        x, tt, w, b = t["x"], t["t"], t["w"], t["b"]
        if compiled:
            fn = torch.compile(func.grad_and_value(torch_impl._gelu_mse, argnums=(0, 1)))

            def step() -> None:
                (gw, gb), loss = fn(w, b, x, tt)
                out.update(loss=loss, w_grad=gw, b_grad=gb)
        else:
            w.requires_grad_()
            b.requires_grad_()

            def step() -> None:
                w.grad = b.grad = None
                loss = torch_impl._gelu_mse(w, b, x, tt)
                loss.backward()
                out.update(loss=loss.detach(), w_grad=w.grad, b_grad=b.grad)
    else:
        names = ("W1", "b1", "W2", "b2")
        ps = [t[k] for k in names]
        gv = func.grad_and_value(torch_impl._mlp_loss, argnums=(0, 1, 2, 3))

        def train(W1: Any, b1: Any, W2: Any, b2: Any, X: Any, y: Any) -> Any:
            grads, loss = gv(W1, b1, W2, b2, X, y)
            return [p - 0.1 * g for p, g in zip((W1, b1, W2, b2), grads)], grads, loss

        fn = torch.compile(train) if compiled else train

        def step() -> None:
            new, grads, loss = fn(*ps, t["X"], t["y"])
            if "loss" not in out:
                out.update({k + "_grad": g for k, g in zip(names, grads)}, loss=loss)
                out.update({k: p for k, p in zip(names, new)})
            ps[:] = new

    def fetch() -> dict[str, Any]:
        return {k: v.detach().cpu().numpy() for k, v in out.items()}

    return step, fetch, lambda: torch.cuda.synchronize(cuda)


def _tracegrad(wid: str, d: dict[str, Any], dev: int) -> tuple:
    try:
        import tracegrad
        from tracegrad import autograd, np, npx
    except ImportError as e:
        raise Unavailable(f"tracegrad not importable ({e})") from e
    if not hasattr(npx, "gpu") or not hasattr(npx, "num_gpus"):
        raise Unavailable("this tracegrad has no npx.gpu (issue 5 not landed)")
    try:
        n_gpus = npx.num_gpus()
    except Exception as e:  # a missing numba-cuda or driver shows here
        raise Unavailable(f"npx.num_gpus() failed: {type(e).__name__}: {e}") from e
    if n_gpus <= dev:
        raise Unavailable(f"tracegrad sees {n_gpus} GPU(s)")
    gpu = npx.gpu(dev)
    npx.set_np()
    try:
        arr = {k: np.array(v, dtype=v.dtype, device=gpu) for k, v in d.items()}
    except TypeError as e:
        raise Unavailable(f"np.array(..., device=npx.gpu(i)) is not supported: {e}") from e
    from numba import cuda

    out: dict[str, Any] = {}
    if wid == "W1":
        x = arr["x"]
        x.attach_grad()

        def step() -> None:
            with autograd.record():
                y = 2 * x * x
            y.backward()

        def fetch() -> dict[str, Any]:
            return {"x_grad": x.grad.asnumpy()}
    elif wid == "W2":
        x, t, w, b = arr["x"], arr["t"], arr["w"], arr["b"]
        w.attach_grad()
        b.attach_grad()

        def step() -> None:
            with autograd.record():
                z = x * w + b
                h = 0.5 * z * (1 + np.tanh(0.7978845608 * (z + 0.044715 * z ** 3)))
                loss = np.mean((h - t) ** 2)
            loss.backward()
            out["loss"] = loss

        def fetch() -> dict[str, Any]:
            return {"loss": out["loss"].asnumpy(), "w_grad": w.grad.asnumpy(),
                    "b_grad": b.grad.asnumpy()}
    else:
        X, y = arr["X"], arr["y"]
        names = ("W1", "b1", "W2", "b2")
        ps = [arr[k] for k in names]
        for p in ps:
            p.attach_grad()

        def step() -> None:
            with autograd.record():
                h = np.tanh(np.dot(X, ps[0]) + ps[1])
                logits = np.dot(h, ps[2]) + ps[3]
                loss = -npx.pick(npx.log_softmax(logits), y).mean()
            loss.backward()
            if "res" not in out:  # step 1's gradients, before the update
                out["res"] = {k + "_grad": p.grad.asnumpy() for k, p in zip(names, ps)}
                out["res"]["loss"] = loss.asnumpy()
            for p in ps:
                p -= 0.1 * p.grad
            if "params" not in out:
                out["params"] = {k: p.asnumpy() for k, p in zip(names, ps)}

        def fetch() -> dict[str, Any]:
            return {**out["res"], **out["params"]}

    _ = tracegrad
    return step, fetch, cuda.synchronize


def _numba_cuda(wid: str, d: dict[str, Any], dev: int) -> tuple:
    if wid == "W3":
        raise Unavailable("no hand-written numba-cuda MLP (matmul); W1/W2 only")
    try:
        from numba import cuda
    except ImportError as e:
        raise Unavailable(f"numba-cuda not installed ({e}); pip install -e '.[cuda]'") from e
    if not cuda.is_available():
        raise Unavailable("numba sees no CUDA device")
    import numpy

    from . import _gpu_kernels as K

    cuda.select_device(dev)
    dd = {k: cuda.to_device(v) for k, v in d.items()}
    n = d["x"].size
    blocks = max(1, min(4096, (n + K.BLOCK - 1) // K.BLOCK))
    if wid == "W1":
        gx = cuda.device_array_like(dd["x"])

        def step() -> None:
            K.square_grad[blocks, K.BLOCK](dd["x"], gx)

        def fetch() -> dict[str, Any]:
            return {"x_grad": gx.copy_to_host()}
    else:
        gw, gb = cuda.device_array_like(dd["w"]), cuda.device_array_like(dd["b"])
        acc = cuda.to_device(numpy.zeros(1, numpy.float64))
        blocks = min(blocks, 2048)

        def step() -> None:
            acc[:1] = 0.0  # one tiny memset, part of the step
            K.gelu_mse[blocks, K.BLOCK](dd["x"], dd["t"], dd["w"], dd["b"], gw, gb, acc)

        def fetch() -> dict[str, Any]:
            return {"loss": numpy.asarray(acc.copy_to_host()[0] / n), "w_grad": gw.copy_to_host(),
                    "b_grad": gb.copy_to_host()}

    return step, fetch, cuda.synchronize


def copy_bandwidth(n_bytes: int, reps: int, dev: int) -> Optional[float]:
    """Device-to-device copy bandwidth (bytes/s, read + write counted), torch or numba-cuda."""
    try:
        import torch

        if torch.cuda.is_available():
            src = torch.empty(n_bytes // 4, dtype=torch.float32, device=f"cuda:{dev}")
            dst = torch.empty_like(src)
            dst.copy_(src)
            torch.cuda.synchronize()
            best = float("inf")
            for _ in range(reps):
                t0 = time.perf_counter()
                dst.copy_(src)
                torch.cuda.synchronize()
                best = min(best, time.perf_counter() - t0)
            return 2 * n_bytes / best
    except ImportError:
        pass
    try:
        import numpy
        from numba import cuda

        if not cuda.is_available():
            return None
        src = cuda.device_array(n_bytes // 4, numpy.float32)
        dst = cuda.device_array_like(src)
        dst.copy_to_device(src)
        cuda.synchronize()
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            dst.copy_to_device(src)
            cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
        return 2 * n_bytes / best
    except ImportError:
        return None


def run_row(impl: str, wid: str, a: argparse.Namespace) -> dict[str, Any]:
    """One checked, timed row."""
    from .workloads import check, make_data, reference

    size = size_of(wid, a)
    row: dict[str, Any] = {"impl": impl, "workload": wid, "size": size}
    d = make_data(wid, size)
    try:
        if impl == "tracegrad":
            step, fetch, sync = _tracegrad(wid, d, a.device)
        elif impl == "numba-cuda":
            step, fetch, sync = _numba_cuda(wid, d, a.device)
        else:
            step, fetch, sync = _torch(impl == "torch.compile", wid, d, a.device)
        if wid == "W3":  # step 1's results are checked (SGD changes the parameters after it)
            t0 = time.perf_counter()
            step()
            sync()
            first = time.perf_counter() - t0
            got = fetch()
            row.update(time_steps(step, sync, a.reps, a.warmup))
            row["first_call_s"] = first
        else:
            row.update(time_steps(step, sync, a.reps, a.warmup))
            got = fetch()
        ok, err, msg = check(wid, got, reference(wid, d, got))
        row.update(status="OK" if ok else "FAIL", err=err)
        if not ok:
            row["reason"] = msg
    except Unavailable as e:
        row.update(status="SKIP", reason=str(e))
    except Exception as e:  # shown in the table, never hidden
        row.update(status="ERROR", reason=f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")
    return row


def main(argv: Optional[list[str]] = None) -> int:
    a = parse_args(argv)
    t_start = time.perf_counter()
    from .workloads import WORKLOADS

    bw = copy_bandwidth(1 << 28, 20, a.device)
    rows = []
    for wid in a.workloads:
        for impl in a.impl_list:
            rows.append(run_row(impl, wid, a))
            r = rows[-1]
            print(f"  {wid} {impl:14} {r['status']}", file=sys.stderr, flush=True)
    print(f"device-to-device copy bandwidth: {bw / 1e9:.0f} GB/s" if bw else
          "device-to-device copy bandwidth: unavailable (no torch/numba-cuda GPU)")
    print(f"{'wl':3} {'implementation':14} {'status':6} {'median us':>10} {'first s':>8} "
          f"{'x bound':>8} {'x torch':>8} {'x torch.compile':>15} {'rel err':>8}")
    for wid in a.workloads:
        spec = WORKLOADS[wid]
        bound = spec.min_bytes(size_of(wid, a)) / bw if bw and spec.min_bytes else None
        tc = next((r.get("median_s") for r in rows if r["workload"] == wid
                   and r["impl"] == "torch.compile" and r["status"] == "OK"), None)
        te = next((r.get("median_s") for r in rows if r["workload"] == wid
                   and r["impl"] == "torch" and r["status"] == "OK"), None)
        for r in (r for r in rows if r["workload"] == wid):
            ok = r["status"] == "OK"
            med = r.get("median_s") if ok else None
            r["bound_s"] = bound
            r["x_bound"] = med / bound if med and bound else None
            r["x_torch_compile"] = med / tc if med and tc else None
            r["x_torch"] = med / te if med and te else None
            f = (lambda v, s=".2f": "-" if v is None else format(v, s))
            print(f"{wid:3} {r['impl']:14} {r['status']:6} {f(med * 1e6 if med else None, '.1f'):>10} "
                  f"{f(r.get('first_call_s'), '.2f'):>8} {f(r['x_bound']):>8} {f(r['x_torch']):>8} "
                  f"{f(r['x_torch_compile']):>15} {f(r.get('err'), '.1e'):>8}")
        if bound:
            print(f"    {wid} bound (minimal traffic / copy bandwidth): {bound * 1e6:.1f} us")
    for r in rows:
        if r.get("reason"):
            print(f"  {r['workload']} {r['impl']}: {r['status']}: {r['reason']}")
    print("targets (issue 5): W1 tracegrad <= 1.5x bound; W2 tracegrad x torch.compile <= 0.33; "
          "W3 tracegrad x torch <= 1.0")
    print(f"total {time.perf_counter() - t_start:.0f} s")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"copy_bytes_per_s": bw, "rows": rows}, fh, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
