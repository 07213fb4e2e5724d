"""Finding `mpiexec` and starting ranks: `python -m tracegrad.distributed -n 4 train.py`.

The `mpich` wheel (the `dist` extra) puts `mpiexec` next to the Python executable's scripts;
that one matches the MPI that mpi4py loads, so it is preferred over one elsewhere on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from typing import Optional, Sequence


def mpiexec_path() -> Optional[str]:
    """`MPIEXEC` if set, else the mpiexec beside this Python's scripts, else one on PATH."""
    env = os.environ.get("MPIEXEC")
    if env:
        return env
    for d in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        p = os.path.join(d, "mpiexec")
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return shutil.which("mpiexec") or shutil.which("mpirun")


def command(n: int, argv: Sequence[str], hostfile: Optional[str] = None) -> list[str]:
    """The command line that runs `python argv...` on `n` ranks."""
    exe = mpiexec_path()
    if exe is None:
        raise FileNotFoundError("no mpiexec found: pip install 'tracegrad[dist]' installs MPICH's")
    cmd = [exe, "-n", str(n)]
    if hostfile:
        cmd += ["-f", hostfile]
    return cmd + [sys.executable, *argv]


def main(args: Optional[Sequence[str]] = None) -> int:
    """`python -m tracegrad.distributed [-n N] [-f HOSTFILE] script.py [args...]`."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m tracegrad.distributed",
                                 description="Run a Python script on N ranks with mpiexec.")
    ap.add_argument("-n", "--np", type=int, default=2, help="number of ranks (default 2)")
    ap.add_argument("-f", "--hostfile", default=None, help="MPICH host file (one host[:slots] a line)")
    ap.add_argument("script", help="the Python script")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments")
    ns = ap.parse_args(args)
    return subprocess.call(command(ns.np, [ns.script, *ns.args], ns.hostfile))
