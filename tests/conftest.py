"""Test-only helpers (the BLAS, Matplotlib and NumPy setup shared with the docstring
examples lives in the repository's top-level ``conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (README.md, examples/, docs/)."""
    return ROOT
