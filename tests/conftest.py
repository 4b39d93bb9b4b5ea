"""Shared test setup.

OpenBLAS spins its threads while waiting; with pytest-xdist running one process per core, two
BLAS threads per process fight over the same cores and small SVDs get tens of times slower.
The suite therefore runs BLAS single-threaded (parallelism comes from the xdist workers).
The environment variables cover libraries loaded later; ``threadpool_limits`` covers those
already loaded (it only acts on loaded libraries, hence the imports before it).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy  # noqa: E402,F401
import scipy.linalg  # noqa: E402,F401
from threadpoolctl import threadpool_limits  # noqa: E402

threadpool_limits(limits=1)
