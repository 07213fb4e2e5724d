"""The tracegrad benchmark harness (../shared/bench/WORKLOADS.md): W1-W6 for tracegrad and peers.

Entry point: ``python -m benchmarks.run [--quick] [--only W1,W2] [--json out.json] [--png out.png]``.
Every implementation runs in its own subprocess (``benchmarks.worker``) with two threads, is
checked against a float64 numpy reference before its time is trusted, and reports its median
step time, first-call time and peak memory. See benchmarks/README.md.
"""
