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
import secrets
import sqlite3
import struct
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._codec import decode_records, encode_records, row_checksum
from ._wal import SQLITE_MAGIC, WalError, header_identity, wal_page_one
from .errors import ForeignCode, OutputError, StoreError, is_disk_full
from .files import current_umask

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

#: ``PRAGMA application_id`` of a finetune-theory store ("FTht" in ASCII)
APPLICATION_ID = 0x46546874
#: the table layout (kept in the ``meta`` table; layout 1 kept it in ``user_version``)
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS units (
    experiment  TEXT    NOT NULL,
    config_hash TEXT    NOT NULL,
    unit_index  INTEGER NOT NULL,
    seed        INTEGER NOT NULL,
    unit_hash   TEXT    NOT NULL,
    unit_seed   INTEGER NOT NULL,
    version     TEXT    NOT NULL,
    records     TEXT    NOT NULL,
    seconds     REAL    NOT NULL,
    created     REAL    NOT NULL,
    fingerprint TEXT    NOT NULL DEFAULT '',
    checksum    TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (experiment, config_hash, unit_index, seed)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


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


def _new_identity() -> int:
    return 2 + secrets.randbelow(2**31 - 3)


# ------------------------------------------------------------------ the store
class ResultStore:
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
    def _error(self, exc: sqlite3.Error, doing: str) -> StoreError:
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

    # -- opening
    def _check_existing_file(self) -> bool:
        """Whether a file is there; raise when it cannot be an SQLite database."""
        if self.path.is_dir():
            raise StoreError(f"results store path {self.path} is a folder, not a file")
        if not self.path.exists():
            return False
        try:
            with self.path.open("rb") as fh:
                head = fh.read(len(SQLITE_MAGIC))
        except OSError as exc:
            raise StoreError(f"cannot read the results store {self.path}: {exc}") from None
        if head != SQLITE_MAGIC:  # an empty file too: a store is never empty
            raise StoreError(
                f"{self.path} is not a finetune-theory results store (not an SQLite file)",
                hint="other-store",
            )
        return True

    def _create_file(self) -> bool:
        """Build a new store beside ``path`` and link it into place (never half a store).

        Returns ``False`` when another process put a file there first (then opened as is).
        """
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{self.path.name}.", suffix=".new")
            os.close(fd)
            os.unlink(tmp)  # SQLite creates it (then given the permissions the umask allows)
        except OSError as exc:
            if is_disk_full(exc):
                raise OutputError(f"the disk is full: cannot create {self.path}") from None
            raise StoreError(f"cannot create the results store {self.path}: {exc}") from None
        try:
            conn = sqlite3.connect(tmp, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode = DELETE")
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {_new_identity()}")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT INTO meta VALUES ('layout', ?)", (str(SCHEMA_VERSION),))
                conn.execute("COMMIT")
            finally:
                conn.close()
            os.chmod(tmp, 0o666 & ~current_umask())  # SQLite's own default is 0644
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        except sqlite3.Error as exc:
            raise self._error(exc, "cannot create") from None
        except OSError as exc:
            if is_disk_full(exc):
                raise OutputError(f"the disk is full: cannot create {self.path}") from None
            raise StoreError(f"cannot create the results store {self.path}: {exc}") from None
        finally:
            for leftover in (tmp, tmp + "-journal"):
                try:
                    os.unlink(leftover)
                except OSError:
                    pass

    @property
    def wal_path(self) -> Path:
        """The store's write-ahead log, ``<path>-wal``."""
        return self.path.with_name(self.path.name + "-wal")

    @property
    def shm_path(self) -> Path:
        """The WAL's shared-memory index, ``<path>-shm``."""
        return self.path.with_name(self.path.name + "-shm")

    def _wal_page_one(self) -> tuple[bool, bytes | None, int]:
        """Whether the WAL holds valid frames, the last page 1 among them, and its page size."""
        try:
            return wal_page_one(self.wal_path)
        except WalError:
            raise StoreError(
                f"{self.wal_path} is not an SQLite WAL file; move it away (and "
                f"{self.shm_path.name} if present) to use {self.path.name}"
            ) from None
        except OSError as exc:
            raise StoreError(f"cannot read {self.wal_path}: {exc}") from None

    def _refuse_wal(self, why: str) -> StoreError:
        return StoreError(
            f"{self.wal_path.name} in {self.path.parent} {why}, so it is not replayed: put back "
            f"the {self.path.name} that belongs with it, or move {self.wal_path.name} and "
            f"{self.shm_path.name} away to use {self.path.name} as it is"
        )

    def _check_wal(self) -> None:
        """Refuse a WAL whose store identity is not the one of the database beside it."""
        frames, page_one, page_size = self._wal_page_one()
        if not frames:
            return
        with self.path.open("rb") as fh:
            db_app, db_id, db_page = header_identity(fh.read(100))
        ours = struct.pack(">I", APPLICATION_ID)
        if db_app == ours and struct.unpack(">I", db_id)[0] in (0, 1):
            return  # a store of layout 1 wrote no identity: nothing to compare
        if db_app != ours and (page_one is None or page_one[68:72] != ours):
            return  # another program's database and WAL: refused later as foreign, read-only
        if page_one is None or db_page != page_size:
            raise self._refuse_wal("does not belong to the database beside it")
        if (page_one[68:72], page_one[60:64]) != (db_app, db_id):
            raise self._refuse_wal("belongs to another database, not to the file beside it")

    def _check_orphan_wal(self) -> None:
        """Refuse to create a store over a WAL whose database is missing (it would be replayed)."""
        frames, _, _ = self._wal_page_one()
        if frames:
            raise self._refuse_wal(f"holds committed data but {self.path.name} is missing")

    def _check_writable(self, existed: bool) -> None:
        """Report a read-only store or folder before SQLite is asked to write to it."""
        folder = self.path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        for target in [folder] + ([self.path] if existed else []):
            if not os.access(target, os.W_OK):
                kind = "folder" if target.is_dir() else "file"
                raise StoreError(
                    f"the results store {self.path} is read-only (its {kind} {target} cannot be "
                    "written)",
                    hint="other-store",
                )

    def _read_only_identity(self) -> tuple[int, int]:
        """application_id and table count, read without writing (another program's file)."""
        uri = f"{self.path.absolute().as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=1.0)
        try:
            app = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        finally:
            conn.close()
        return int(app), int(tables)

    def _check_identity(self) -> None:
        with self.path.open("rb") as fh:
            header = fh.read(100)
        if header[68:72] != struct.pack(">I", APPLICATION_ID):
            app_id, tables = self._read_only_identity()
            if app_id == 0 and tables == 0:
                return  # an empty SQLite database: adopted by _setup_existing
            raise StoreError(
                f"{self.path} is an SQLite database of another program, not a finetune-theory "
                "results store",
                hint="other-store",
            )
        ok = self._require().execute("PRAGMA quick_check").fetchone()[0]
        if ok != "ok":
            ok = " ".join(str(ok).split())[:200]
            raise StoreError(
                f"{self.path} is corrupted (SQLite quick_check: {ok})", hint="other-store"
            )
        layout = self._layout()
        if layout not in (1, SCHEMA_VERSION):
            raise StoreError(
                f"{self.path} uses store layout {layout}, this version reads layout "
                f"{SCHEMA_VERSION}",
                hint="other-store",
            )

    def _layout(self) -> int:
        conn = self._require()
        has_meta = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()[0]
        if not has_meta:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])  # layout 1 or empty
        row = conn.execute("SELECT value FROM meta WHERE key = 'layout'").fetchone()
        return int(row[0]) if row else 0

    def _wal_mode(self) -> None:
        conn = self._require()
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":  # e.g. a file system without shared memory
            conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("PRAGMA synchronous = FULL")

    def _setup_existing(self) -> None:
        """Probe the write lock (locked? read-only?) and bring layout 1 or an empty file up."""
        conn = self._require()
        layout = self._layout()
        current = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if layout == SCHEMA_VERSION and current >= 2:
            self._store_id = current
            self._wal_mode()
            with self._transaction():  # the lock probe: fails now if locked or read-only
                pass
            return
        # an adopted empty database or a layout-1 store: an identity and the new columns
        self._store_id = _new_identity()
        self._wal_mode()
        with self._transaction() as tx:
            tx.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            cols = {row[1] for row in tx.execute("PRAGMA table_info(units)")}
            if cols and "fingerprint" not in cols:
                tx.execute("ALTER TABLE units ADD COLUMN fingerprint TEXT NOT NULL DEFAULT ''")
                tx.execute("ALTER TABLE units ADD COLUMN checksum TEXT NOT NULL DEFAULT ''")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    tx.execute(statement)
            tx.execute("INSERT OR REPLACE INTO meta VALUES ('layout', ?)", (str(SCHEMA_VERSION),))
        self._checkpoint()

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
        """Forget every stored unit of ``experiment``; the number of rows removed."""
        try:
            with self._transaction() as conn:
                cur = conn.execute("DELETE FROM units WHERE experiment = ?", (experiment,))
                removed = int(cur.rowcount)
        except sqlite3.Error as exc:
            raise self._error(exc, "could not clear") from None
        self._checkpoint()
        return removed

    def count(self, experiment: str | None = None) -> int:
        """How many units are stored (for one experiment, or in all)."""
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
