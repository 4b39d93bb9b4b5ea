"""Setup shared by the test suite and the docstring examples of the package (doctests).

OpenBLAS spins its threads while waiting; with pytest-xdist running one process per core, two
BLAS threads per process fight over the same cores and small SVDs get tens of times slower.
Everything therefore runs BLAS single-threaded (parallelism comes from the xdist workers).
The environment variables cover libraries loaded later; ``threadpool_limits`` covers those
already loaded (it only acts on loaded libraries, hence the imports before it).

Docstring examples see ``np`` already imported and NumPy's default print options, set here
explicitly so that no earlier test can change how an example's output is written. Matplotlib
draws off-screen.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("MPLBACKEND", "Agg")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.linalg  # noqa: E402,F401
from _pytest.doctest import DoctestModule  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

threadpool_limits(limits=1)

PACKAGE = Path(__file__).resolve().parent / "src" / "finetune_theory"


def pytest_collect_file(file_path, parent):
    """Collect the docstring examples of every module of the package (not of the tests).

    This is ``--doctest-modules`` restricted to ``src/finetune_theory`` (``testpaths`` names
    it), so a test file that fails to import is reported once, not twice.
    ``python -m finetune_theory.cli`` runs the command line when imported: left out.
    """
    if (
        file_path.suffix == ".py"
        and PACKAGE in file_path.parents
        and file_path.name != "__main__.py"
    ):
        if PACKAGE / "networks" in file_path.parents and not _has_torch():
            return None  # the examples of finetune_theory.networks need the torch extra
        return DoctestModule.from_parent(parent, path=file_path)
    return None


def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


PRINT_OPTIONS = {
    "precision": 8,
    "threshold": 1000,
    "edgeitems": 3,
    "linewidth": 75,
    "suppress": False,
    "floatmode": "maxprec",
    "sign": "-",
    "legacy": False,
}


@pytest.fixture(autouse=True)
def _numpy_print_options(doctest_namespace):
    """Fixed NumPy print options for every test and docstring example; ``np`` in doctests."""
    doctest_namespace["np"] = np
    with np.printoptions(**PRINT_OPTIONS):
        yield
