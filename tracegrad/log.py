"""Logging channels: `TRACEGRAD_LOG=retrace,compile,cache,fallback,guards` (or `all`).

Every channel is a child of the `tracegrad` logger (`tracegrad.compile`, ...). Naming a
channel in `TRACEGRAD_LOG` sets it to INFO and attaches one stderr handler to `tracegrad`;
otherwise channels stay at WARNING (a compile fallback still warns once per trace key).
`TRACEGRAD_DEBUG=1` also logs each compiled trace's fusion plan on the `compile` channel,
`TRACEGRAD_DEBUG=2` the generated source as well.
"""

from __future__ import annotations

import logging
import os

CHANNELS = ("retrace", "compile", "cache", "fallback", "guards")
ROOT = logging.getLogger("tracegrad")


def channel(name: str) -> logging.Logger:
    """The logger of one channel (`tracegrad.<name>`)."""
    return logging.getLogger(f"tracegrad.{name}")


def debug_level() -> int:
    """The `TRACEGRAD_DEBUG` level (0 when unset or not a number)."""
    try:
        return int(os.environ.get("TRACEGRAD_DEBUG", "0") or 0)
    except ValueError:
        return 0


def configure(spec: str | None = None) -> None:
    """Enable the channels named in `spec` (default: `TRACEGRAD_LOG`)."""
    spec = os.environ.get("TRACEGRAD_LOG", "") if spec is None else spec
    names = {s.strip() for s in spec.split(",") if s.strip()}
    if "all" in names:
        names = set(CHANNELS)
    if not names:
        return
    for n in names:
        channel(n).setLevel(logging.INFO)
    if not any(getattr(h, "_tracegrad", False) for h in ROOT.handlers):
        h = logging.StreamHandler()
        h.setFormatter(logging.Formatter("[tracegrad.%(name)s] %(message)s".replace("%(name)s", "%(channel)s")))
        h.addFilter(_ChannelFilter())
        h._tracegrad = True  # type: ignore[attr-defined]
        ROOT.addHandler(h)


class _ChannelFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.channel = record.name.rsplit(".", 1)[-1]
        return True


configure()
