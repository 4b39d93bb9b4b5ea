"""Reading SQLite's own files without SQLite: the WAL's frames and the database header.

The store uses these to refuse a ``-wal`` file that does not belong to the database beside it
before SQLite would replay it (see :mod:`~finetune_theory.runner.store`).
"""

from __future__ import annotations

import struct
from pathlib import Path

__all__ = ["SQLITE_MAGIC", "WalError", "wal_page_one", "header_identity"]

#: the first 16 bytes of every SQLite database file
SQLITE_MAGIC = b"SQLite format 3\x00"
_WAL_MAGIC = (0x377F0682, 0x377F0683)


class WalError(ValueError):
    """The file is not an SQLite WAL file."""


def wal_page_one(wal: Path) -> tuple[bool, bytes | None, int]:
    """Whether ``wal`` holds valid frames, the header of the last page 1 among them, page size.

    Frames count as valid when they carry the WAL header's salts (SQLite ignores the others
    too). A missing or empty file has no frames.

    Raises
    ------
    WalError
        The file does not start with a WAL header.
    OSError
        It cannot be read.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> wal_page_one(pathlib.Path(tempfile.mkdtemp()) / "missing-wal")
    (False, None, 0)
    """
    try:
        with wal.open("rb") as fh:
            header = fh.read(32)
            if len(header) < 32:
                return False, None, 0
            magic, _, page_size, _, salt1, salt2 = struct.unpack(">6I", header[:24])
            if magic not in _WAL_MAGIC or page_size < 512 or page_size & (page_size - 1):
                raise WalError(f"{wal} is not an SQLite WAL file")
            frames, page_one = False, None
            while True:
                frame = fh.read(24)
                page = fh.read(page_size)
                if len(frame) < 24 or len(page) < page_size:
                    break
                pgno, _, s1, s2 = struct.unpack(">4I", frame[:16])
                if (s1, s2) != (salt1, salt2):
                    break  # frames of an earlier WAL generation
                frames = True
                if pgno == 1:
                    page_one = page[:100]
    except FileNotFoundError:
        return False, None, 0
    return frames, page_one, page_size


def header_identity(header: bytes) -> tuple[bytes, bytes, int]:
    """``(application_id, user_version, page size)`` fields of a 100-byte database header.

    >>> header_identity(bytes(16) + b"\\x10\\x00" + bytes(82))[2]
    4096
    """
    page = struct.unpack(">H", header[16:18])[0]
    return header[68:72], header[60:64], 65536 if page == 1 else page
