"""`python -m tracegrad.distributed -n 4 train.py`: run a script on N ranks with mpiexec."""

import sys

from .launch import main

sys.exit(main())
