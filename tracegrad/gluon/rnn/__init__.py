"""`gluon.rnn`: recurrent cells and fused recurrent layers (MXNet 2.x names)."""

from __future__ import annotations

from .rnn_cell import *  # noqa: F401,F403
from .rnn_layer import *  # noqa: F401,F403
