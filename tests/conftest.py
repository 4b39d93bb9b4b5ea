"""Shared test setup.

OpenBLAS spins its threads while waiting; with pytest-xdist running one process per core, two
BLAS threads per process fight over the same cores and small SVDs get tens of times slower.
The suite therefore runs BLAS single-threaded (parallelism comes from the xdist workers).
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits

threadpool_limits(limits=1)
