"""Optimizers (MXNet 2.x `mx.optimizer`): by class or by registered name with `create`."""

from .optimizer import Optimizer, create, register, registry  # noqa: F401
from .sgd import NAG, SGD  # noqa: F401
from .adam import LAMB, Adam, AdamW  # noqa: F401
from .adaptive import AdaDelta, AdaGrad, RMSProp  # noqa: F401
from .updater import Updater, get_updater  # noqa: F401

__all__ = ["Optimizer", "create", "register", "registry", "SGD", "NAG", "Adam", "AdamW", "LAMB", "RMSProp",
           "AdaGrad", "AdaDelta", "Updater", "get_updater"]
