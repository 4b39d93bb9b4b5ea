"""``finetune_theory.runner.files``: atomic writes, leftovers of killed runs, folder locks."""

from __future__ import annotations

import errno
import os

import pytest

from finetune_theory.runner import files
from finetune_theory.runner.errors import FolderInUse, OutputError


def test_atomic_write_takes_text_bytes_or_a_writer_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "a.txt"
    files.atomic_write(target, "ü")
    assert target.read_bytes() == "ü".encode()
    files.atomic_write(str(target), b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    files.atomic_write(target, lambda fh: fh.write(b"from a writer"))
    assert target.read_bytes() == b"from a writer"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_the_new_file_has_the_mode_open_would_give(tmp_path):
    target = files.atomic_write(tmp_path / "m.txt", "x")
    assert target.stat().st_mode & 0o777 == 0o666 & ~files.current_umask()
    mask = os.umask(0o022)
    os.umask(mask)
    assert files.current_umask() == mask


def test_a_failing_writer_keeps_the_old_file_and_no_partial(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")

    def broken(fh):
        fh.write(b"half")
        raise OSError(errno.EIO, "device error")

    with pytest.raises(OSError, match="device error"):
        files.atomic_write(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_a_full_disk_or_a_removed_folder_is_an_output_error(tmp_path, monkeypatch):
    with pytest.raises(OutputError, match="was removed during the run"):
        files.atomic_write(tmp_path / "gone" / "a.txt", "x")

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "replace", full)
    with pytest.raises(OutputError, match=r"the disk is full: could not write .*a\.txt"):
        files.atomic_write(tmp_path / "a.txt", "x")
    assert list(tmp_path.iterdir()) == []


def test_remove_partials_removes_only_what_atomic_writes_leave(tmp_path):
    keep = [tmp_path / "a.txt", tmp_path / ".hidden", tmp_path / "b.ftpart"]
    for path in keep:
        path.write_text("keep")
    stray = tmp_path / "sub" / ".a.txt.x1.ftpart"
    stray.parent.mkdir()
    stray.write_text("half")
    staging = tmp_path / ".figures.x2.ftpart"
    (staging / "inner").mkdir(parents=True)
    (staging / "inner" / ".f.png.x3.ftpart").write_text("half")
    removed = files.remove_partials(tmp_path)
    assert set(removed) == {stray, staging}  # the staging folder's content goes with it
    assert all(path.exists() for path in keep) and not stray.exists() and not staging.exists()


def test_a_folder_lock_is_exclusive_records_its_pid_and_is_released(tmp_path):
    with files.FolderLock(tmp_path, what="store folder") as lock:
        assert (tmp_path / files.LOCK_NAME).read_text() == f"{os.getpid()}\n"
        with pytest.raises(FolderInUse, match=rf"store folder .* \(PID {os.getpid()}\)") as info:
            files.FolderLock(tmp_path, what="store folder").acquire()
        assert info.value.hint == "other-out"
        assert lock.path == tmp_path / files.LOCK_NAME
    with files.FolderLock(tmp_path):  # free again once released
        pass
    files.FolderLock(tmp_path).release()  # releasing an unheld lock does nothing


def test_a_lock_in_a_missing_folder_names_it(tmp_path):
    with pytest.raises(OSError, match=r"cannot write to the output folder .*missing"):
        files.FolderLock(tmp_path / "missing").acquire()
