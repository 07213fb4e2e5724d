"""`mx.metric`: the Gluon evaluation metrics (`tracegrad.gluon.metric`)."""

from .gluon.metric import *  # noqa: F401,F403
from .gluon.metric import __all__  # noqa: F401
