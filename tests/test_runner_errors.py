"""``finetune_theory.runner.errors``: the runner's error classes, the hints the command line
words, and the disk-full and missing-extra diagnoses."""

from __future__ import annotations

import ast
import errno
import sqlite3
from pathlib import Path

import pytest

from finetune_theory.runner import errors

SRC = Path(errors.__file__).resolve().parents[1]


def _hints_in_source() -> set[str]:
    found = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "hint":
                if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                    found.add(node.value.value)
    return found


def test_every_hint_raised_is_declared_and_worded_by_the_command_line():
    from finetune_theory.cli import reproduce

    used = _hints_in_source()
    assert used, "the scan found no hint= keyword"
    assert used <= set(errors.HINTS)
    assert set(errors.HINTS) == set(reproduce._HINTS)


def test_fatal_faults_end_the_run_and_a_unit_failure_does_not():
    for name in ("StoreError", "OutputError", "ExecutorLost", "FolderInUse", "SourceChanged",
                 "StaleBytecode", "ForeignCode"):
        assert issubclass(getattr(errors, name), errors.RunEnded), name
    assert not issubclass(errors.UnitFailed, errors.RunnerError)
    fail = errors.UnitFailed("unit 3 raised", "Traceback ...", missing="torch")
    assert str(fail) == "unit 3 raised" and fail.details.startswith("Traceback")
    assert errors.missing_extra(fail.missing) == 'pip install "finetune-theory[torch]"'


@pytest.mark.parametrize(
    ("module", "extra"),
    [("matplotlib.pyplot", "plot"), ("PIL", "data"), ("distributed", "dask"), ("dask", "dask")],
)
def test_missing_extra_names_the_install_line(module, extra):
    assert errors.missing_extra(module) == f'pip install "finetune-theory[{extra}]"'


@pytest.mark.parametrize("module", [None, "", "numpy", "scipy.linalg"])
def test_missing_extra_is_none_for_core_or_no_module(module):
    assert errors.missing_extra(module) is None


def test_disk_full_from_os_errors_and_sqlite_messages(tmp_path, monkeypatch):
    assert errors.is_disk_full(OSError(errno.ENOSPC, "no space"))
    assert errors.is_disk_full(OSError(errno.EDQUOT, "quota"))
    assert not errors.is_disk_full(OSError(errno.EIO, "io"))
    assert errors.is_disk_full(sqlite3.OperationalError("database or disk is full"))
    assert not errors.is_disk_full(ValueError("database or disk is full"))
    io = sqlite3.OperationalError("disk I/O error")
    assert not errors.is_disk_full(io)  # without a path: not known to be full
    monkeypatch.setattr(errors, "_free_bytes", lambda path: 1024)
    assert errors.is_disk_full(io, tmp_path / "store.sqlite")
    monkeypatch.setattr(errors, "_free_bytes", lambda path: 10**9)
    assert not errors.is_disk_full(io, tmp_path / "store.sqlite")


def test_free_bytes_looks_at_the_nearest_existing_folder(tmp_path):
    free = errors._free_bytes(tmp_path / "not" / "yet" / "there.sqlite")
    assert free is not None and free > 0
