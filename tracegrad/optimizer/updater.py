"""`Updater`: MXNet's per-index update callable (creates states on first use)."""

from __future__ import annotations

from typing import Any

from .optimizer import Optimizer


class Updater:
    """`updater(index, grad, weight)` (or lists of each) updates with the optimizer's rule."""

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer
        self.states: dict = {}

    def __call__(self, index: Any, grad: Any, weight: Any) -> None:
        if not isinstance(index, (list, tuple)):
            index, grad, weight = [index], [grad], [weight]
        for i, w in zip(index, weight):
            if i not in self.states:
                self.states[i] = self.optimizer.create_state_multi_precision(i, w)
        self.optimizer.update(list(index), list(weight), list(grad), [self.states[i] for i in index])

    def get_states(self, dump_optimizer: bool = False) -> bytes:
        """The states (and with `dump_optimizer` the optimizer) as MXNet 2.x's bytes."""
        from . import states_io

        return states_io.dump(self.states, self.optimizer if dump_optimizer else None)

    def set_states(self, states: bytes) -> None:
        """Read what `get_states` (or MXNet's) wrote; the weights are the optimizer's
        `param_dict` (as a Trainer sets it)."""
        from . import states_io

        self.states, opt = states_io.load(states, "the states bytes", self.optimizer.param_dict, self.optimizer)
        self.optimizer = opt


def get_updater(optimizer: Optimizer) -> Updater:
    """An Updater over `optimizer`."""
    return Updater(optimizer)
