"""The results store: a folder-level SQLite database that keeps every finished unit of work.

The store is three files side by side: ``store.sqlite`` and, while a run is going or after one
was killed, ``store.sqlite-wal`` (committed units not yet folded into the main file) and
``store.sqlite-shm`` (an index of the WAL). They belong together: copy or move them together.
After every unit the WAL is folded back into the main file (a ``TRUNCATE`` checkpoint), so
``store.sqlite`` alone holds all but at most the last unit even after a ``kill -9``, unless
another process keeps the store open for reading (it holds the checkpoint off): then
:attr:`ResultStore.unfolded` counts the units that live only in the WAL.

One row per unit, keyed by ``(experiment, config_hash, unit_index, seed)`` where ``seed`` is the
root seed of the sweep. Each row is written in its own transaction, so a run that dies (Ctrl-C,
``kill -9``, power cut) loses at most the units that were still being computed; the next run
with the same arguments finds the finished ones and does not compute them again. Each row also
holds the package version and the code fingerprint of the process that computed it, and a
SHA-256 checksum of the whole row: a row whose checksum is missing or does not match (or whose
bytes are not UTF-8) is reported as damaged and never served. :meth:`ResultStore.put` refuses a
unit whose fingerprint is not the run's (:class:`~finetune_theory.runner.errors.ForeignCode`).

Records are stored as JSON by :mod:`~finetune_theory.runner._codec`, bit for bit.

The file is marked with an SQLite ``application_id``; its ``user_version`` holds a random
identity of this store, written into the main file when the store is created and into the WAL
with every transaction. A file that is not SQLite, is corrupted, or is an SQLite database of
some other program is reported with :class:`StoreError` and left untouched; so is a WAL file
whose identity is not the one of the database beside it (it is never replayed into it).
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._codec import decode_records, encode_records, row_checksum
from ._opening import APPLICATION_ID, SCHEMA_VERSION, StoreFiles
from .errors import ForeignCode, OutputError, StoreError, is_disk_full

__all__ = [
    "StoreError",
    "StoredUnit",
    "StoredRow",
    "ResultStore",
    "encode_records",
    "decode_records",
    "row_checksum",
    "APPLICATION_ID",
    "SCHEMA_VERSION",
]


@dataclass(frozen=True)
class StoredUnit:
    """One finished unit read back from the store."""

    unit_index: int
    unit_hash: str
    unit_seed: int
    version: str
    records: list[dict[str, Any]]
    seconds: float
    fingerprint: str = ""


@dataclass(frozen=True)
class StoredRow:
    """One stored row as found: a :class:`StoredUnit`, or why it is damaged."""

    unit_index: int
    unit: StoredUnit | None
    damage: str | None = None


def _sqlite_reason(exc: sqlite3.Error, path: Path) -> str:
    """``locked``, ``read-only``, ``full``, ``corrupt`` or ``other`` for an SQLite error."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc).lower()
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return "locked"
    if name.startswith(("SQLITE_READONLY", "SQLITE_PERM")) or "readonly" in text:
        return "read-only"
    if is_disk_full(exc, path):
        return "full"
    if name.startswith("SQLITE_IOERR") and not all(
        os.access(p, os.W_OK) for p in (path, path.parent) if p.exists()
    ):  # e.g. the file made immutable while open: SQLite sees EPERM on write
        return "read-only"
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return "corrupt"
    return "other"


# ------------------------------------------------------------------ the store
class ResultStore(StoreFiles):
    """An SQLite results store (WAL journal, one transaction per finished unit).

    Parameters
    ----------
    path
        The database file (its ``-wal`` and ``-shm`` files live beside it). Created (with its
        folder) when missing, all at once: a new store is built in a temporary file that is
        then linked into place. An existing file must be a finetune-theory store; anything
        else (an empty file included) raises :class:`StoreError` and is not modified.
    lock_wait
        Seconds to wait for another process that holds the store's write lock, when opening
        and for each write; longer and the store is reported as in use.

    Raises
    ------
    StoreError
        Not a store, corrupted, another program's database, a WAL file that belongs to another
        database, locked by another process, or read-only; all found out when opening, before
        any unit is computed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with ResultStore(pathlib.Path(tempfile.mkdtemp()) / "s.sqlite") as store:
    ...     store.put("toy", "abc", 0, 7, unit_hash="u0", unit_seed=1, version="0",
    ...               records=[{"x": 0.1}], seconds=0.0)
    ...     store.load("toy", "abc", 7, "0")[0].records
    [{'x': 0.1}]
    """

    def __init__(self, path: str | Path, *, lock_wait: float = 2.0) -> None:
        self.path = Path(path)
        self.created = False
        #: units committed while another reader held the checkpoint off (only in the WAL)
        self.unfolded = 0
        self._lock_wait = float(lock_wait)
        self._conn: sqlite3.Connection | None = None
        self._store_id = 0
        self._inode: tuple[int, int] | None = None
        if not self._check_existing_file():
            self._check_orphan_wal()
            self._check_writable(existed=False)
            self.created = self._create_file()
        self._check_wal()
        self._check_writable(existed=True)
        try:
            conn = sqlite3.connect(str(self.path), timeout=lock_wait, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the results store {self.path}: {exc}") from None
        self._conn = conn
        try:
            self._check_identity()
            self._setup_existing()
            st = os.stat(self.path)
            self._inode = (st.st_dev, st.st_ino)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise self._error(exc, "cannot use") from None
        except StoreError:
            self.close()
            raise

    # -- errors
    def _error(self, exc: sqlite3.Error, doing: str) -> StoreError | OutputError:
        """The one-line error for an SQLite failure while ``doing`` (e.g. "cannot use")."""
        reason = _sqlite_reason(exc, self.path)
        if reason == "locked":
            return StoreError(
                f"the results store {self.path} is in use by another process (it holds the "
                "store's write lock)",
                hint="other-store",
            )
        if reason == "read-only":
            return StoreError(
                f"the results store {self.path} is read-only ({exc})", hint="other-store"
            )
        if reason == "full":
            return OutputError(f"the disk is full: {doing} the results store {self.path}")
        if reason == "other":
            return StoreError(f"{doing} the results store {self.path}: {exc}")
        return StoreError(
            f"{self.path} is corrupted or not a finetune-theory results store ({exc})",
            hint="other-store",
        )

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the results store {self.path} is closed")
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._require()
        conn.execute("BEGIN IMMEDIATE")
        try:
            # rewriting the identity puts page 1 (with it) into every WAL commit
            conn.execute(f"PRAGMA user_version = {self._store_id}")
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _checkpoint(self) -> bool:
        """Fold the WAL into the main file and empty it; whether that was done in full.

        Another process reading the store holds the checkpoint off (it is retried after the
        next unit); an error here is not fatal: the unit is committed in the WAL.
        """
        try:
            busy, _, _ = self._require().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.OperationalError:
            return False
        return not busy

    def _check_still_there(self) -> None:
        """Raise when the store's file was removed or replaced while it was open."""
        try:
            st = os.stat(self.path)
            same = (st.st_dev, st.st_ino) == self._inode
        except OSError:
            same = False
        if not same:
            raise OutputError(
                f"the results store {self.path} was removed or replaced during the run, so "
                "units computed now cannot be kept"
            )

    # -- reading and writing
    def rows(self, experiment: str, config_hash: str, seed: int) -> list[StoredRow]:
        """Every stored row of one sweep, whatever its version or fingerprint, checked.

        A row whose bytes are not valid UTF-8 or JSON, or whose checksum is missing or does
        not match its fields, comes back with ``unit=None`` and ``damage`` saying what is wrong.

        Parameters
        ----------
        experiment : str
            The experiment's name.
        config_hash : str
            Hash of the experiment's full config.
        seed : int
            The root seed of the sweep.
        """
        try:
            cursor = self._require().execute(
                "SELECT unit_index, unit_hash, unit_seed, version, fingerprint, "
                "CAST(records AS BLOB), seconds, checksum FROM units "
                "WHERE experiment = ? AND config_hash = ? AND seed = ? ORDER BY unit_index",
                (experiment, config_hash, int(seed)),
            )
            fetched = cursor.fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc, "cannot read") from None
        return [self._checked_row(experiment, config_hash, seed, *row) for row in fetched]

    @staticmethod
    def _checked_row(
        experiment: str, config_hash: str, seed: int, idx: Any, uhash: str, useed: Any,
        ver: str, fprint: str, blob: Any, sec: Any, checksum: str,
    ) -> StoredRow:  # fmt: skip
        idx, blob = int(idx), bytes(blob)
        expected = row_checksum(experiment, config_hash, idx, seed, uhash, useed, ver, fprint, blob)
        try:
            text = blob.decode("utf-8")
        except UnicodeDecodeError:
            return StoredRow(idx, None, "its records are not valid UTF-8 text")
        if not checksum:
            return StoredRow(idx, None, "it has no checksum")
        if checksum != expected:
            return StoredRow(idx, None, "its checksum does not match its contents")
        try:
            records = decode_records(text)
        except (ValueError, TypeError):
            return StoredRow(idx, None, "its records are not valid JSON")
        return StoredRow(idx, StoredUnit(idx, uhash, int(useed), ver, records, float(sec), fprint))

    def load(
        self,
        experiment: str,
        config_hash: str,
        seed: int,
        version: str,
        fingerprint: str | None = None,
    ) -> dict[int, StoredUnit]:
        """The intact finished units of one sweep (same config, root seed, version, and code).

        ``fingerprint=None`` accepts any code fingerprint; damaged rows are left out.

        Parameters
        ----------
        experiment : str
            The experiment's name.
        config_hash : str
            Hash of the experiment's full config.
        seed : int
            The root seed of the sweep.
        version : str
            The package version the units must have been computed with.
        fingerprint : str, optional
            The code fingerprint they must carry; any when ``None``.
        """
        return {
            row.unit_index: row.unit
            for row in self.rows(experiment, config_hash, seed)
            if row.unit is not None
            and row.unit.version == version
            and (fingerprint is None or row.unit.fingerprint == fingerprint)
        }

    def put(
        self,
        experiment: str,
        config_hash: str,
        unit_index: int,
        seed: int,
        *,
        unit_hash: str,
        unit_seed: int,
        version: str,
        records: Sequence[dict[str, Any]] | str,
        seconds: float,
        fingerprint: str = "",
        run_fingerprint: str | None = None,
    ) -> None:
        """Commit one finished unit (replacing a stale row with the same key).

        ``fingerprint`` is that of the process that computed the unit; with ``run_fingerprint``
        given, a unit of other code is refused.

        Parameters
        ----------
        experiment : str
            The experiment's name.
        config_hash : str
            Hash of the experiment's full config.
        unit_index : int
            The unit's index in the sweep.
        seed : int
            The root seed of the sweep.
        unit_hash : str
            Hash of the unit's own config.
        unit_seed : int
            The seed the unit ran with.
        version : str
            The package version that computed it.
        records : sequence of dict, or str
            The unit's records (or their JSON text).
        seconds : float
            How long the unit took.
        fingerprint : str, default ""
            The code fingerprint of the process that computed it.
        run_fingerprint : str, optional
            The run's fingerprint, which ``fingerprint`` must equal.

        Raises
        ------
        ForeignCode
            ``fingerprint`` is not ``run_fingerprint``: nothing is written.
        OutputError
            The disk is full, or the store's file was removed during the run.
        StoreError
            Another process holds the store's write lock, or the store became read-only.
        """
        if run_fingerprint is not None and fingerprint != run_fingerprint:
            raise ForeignCode(
                f"unit {unit_index} of {experiment} was computed by other code (fingerprint "
                f"{fingerprint or 'none'}) than this run's ({run_fingerprint}): a worker runs "
                "another copy of the package or of its dependencies; not stored"
            )
        text = records if isinstance(records, str) else encode_records(records)
        seconds = float(seconds) if math.isfinite(float(seconds)) else 0.0
        checksum = row_checksum(
            experiment, config_hash, unit_index, seed, unit_hash, unit_seed, version,
            fingerprint, text.encode("utf-8"),
        )  # fmt: skip
        try:
            with self._transaction() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO units (experiment, config_hash, unit_index, seed, "
                    "unit_hash, unit_seed, version, records, seconds, created, fingerprint, "
                    "checksum) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        experiment, config_hash, int(unit_index), int(seed), unit_hash,
                        int(unit_seed), version, text, seconds, time.time(), fingerprint,
                        checksum,
                    ),
                )  # fmt: skip
        except sqlite3.Error as exc:
            self._check_still_there()
            raise self._error(
                exc, f"could not store unit {unit_index} of {experiment} in"
            ) from None
        if not self._checkpoint():
            self.unfolded += 1
        else:
            self.unfolded = 0
        self._check_still_there()

    def clear(self, experiment: str) -> int:
        """Forget every stored unit of ``experiment``; the number of rows removed.

        Parameters
        ----------
        experiment : str
            The experiment's name.
        """
        try:
            with self._transaction() as conn:
                cur = conn.execute("DELETE FROM units WHERE experiment = ?", (experiment,))
                removed = int(cur.rowcount)
        except sqlite3.Error as exc:
            raise self._error(exc, "could not clear") from None
        self._checkpoint()
        return removed

    def count(self, experiment: str | None = None) -> int:
        """How many units are stored (for one experiment, or in all).

        Parameters
        ----------
        experiment : str, optional
            The experiment's name; every stored unit when ``None``.
        """
        conn = self._require()
        if experiment is None:
            return int(conn.execute("SELECT count(*) FROM units").fetchone()[0])
        return int(
            conn.execute(
                "SELECT count(*) FROM units WHERE experiment = ?", (experiment,)
            ).fetchone()[0]
        )

    def still_there(self) -> bool:
        """Whether the store's file is still the one this object opened."""
        try:
            self._check_still_there()
        except OutputError:
            return False
        return True

    def close(self) -> None:
        """Close the connection (SQLite folds the WAL back into the file)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def remove(self) -> None:
        """Close and delete the store's files (used for a store a failed run left empty)."""
        self.close()
        for path in (self.path, self.wal_path, self.shm_path):
            try:
                path.unlink()
            except FileNotFoundError:
                pass

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r})"
