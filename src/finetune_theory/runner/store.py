"""The results store: a folder-level SQLite database that keeps every finished unit of work.

The store is three files side by side: ``store.sqlite`` and, while a run is going or after one
was killed, ``store.sqlite-wal`` (committed units not yet folded into the main file) and
``store.sqlite-shm`` (an index of the WAL). They belong together: copy or move them together.
After every unit the WAL is folded back into the main file (a ``TRUNCATE`` checkpoint), so
``store.sqlite`` alone holds all but at most the last unit even after a ``kill -9``.

One row per unit, keyed by ``(experiment, config_hash, unit_index, seed)`` where ``seed`` is the
root seed of the sweep. Each row is written in its own transaction, so a run that dies (Ctrl-C,
``kill -9``, power cut) loses at most the units that were still being computed; the next run
with the same arguments finds the finished ones and does not compute them again. Each row also
holds the package version and the code fingerprint that computed it, and a SHA-256 checksum of
the whole row: a row whose checksum does not match (or whose bytes are not UTF-8) is reported
as damaged and never served.

Records are stored as JSON. Python writes a float with its shortest round-tripping ``repr``
and parses it back to the same double, so the records that come back are bit-identical to the
ones that went in (infinities and ``-0.0`` included; a NaN other than the standard one, such
as the negative NaN of ``inf - inf``, is written as its raw bits). NumPy scalars are converted
to the Python scalar of the same value on the way in.

The file is marked with an SQLite ``application_id``; its ``user_version`` holds a random
identity of this store, written into the main file when the store is created and into the WAL
with every transaction. A file that is not SQLite, is corrupted, or is an SQLite database of
some other program is reported with :class:`StoreError` and left untouched; so is a WAL file
whose identity is not the one of the database beside it (it is never replayed into it).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import sqlite3
import struct
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import OutputError, StoreError, is_disk_full

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

_SQLITE_MAGIC = b"SQLite format 3\x00"

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
_WAL_MAGIC = (0x377F0682, 0x377F0683)


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


# ------------------------------------------------------------------ records <-> JSON
#: key of the JSON object that carries a NaN other than the standard one, as 16 hex digits
_FLOAT_BITS = "$f64"
_STANDARD_NAN = struct.pack(">d", math.nan)


def _float(value: float) -> float | dict[str, str]:
    """A float JSON keeps exactly; a NaN with a sign or payload goes as its raw bits."""
    if math.isnan(value):
        bits = struct.pack(">d", value)
        if bits != _STANDARD_NAN:  # e.g. inf - inf gives a negative NaN on x86
            return {_FLOAT_BITS: bits.hex()}
    return value


def _decode_object(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _FLOAT_BITS in obj:
        return struct.unpack(">d", bytes.fromhex(obj[_FLOAT_BITS]))[0]
    return obj


def _to_json_value(value: Any, field: str) -> Any:
    """A JSON-native value equal to ``value``; ``TypeError`` for what JSON cannot keep."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):  # np.float64 is a float subclass: kept as it is
        return _float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return _float(float(value))
    if isinstance(value, list | tuple | np.ndarray):
        return [_to_json_value(v, field) for v in np.asarray(value, dtype=object).tolist()]
    raise TypeError(
        f"record field {field!r} holds a {type(value).__name__}; records may hold only numbers, "
        "booleans, strings, None or lists of them"
    )


def encode_records(records: Sequence[dict[str, Any]]) -> str:
    """JSON text of a list of flat records (string keys; numbers, bools, strings, None).

    Raises
    ------
    TypeError
        When a record is not a dict with string keys or holds a value JSON cannot keep exactly.
    """
    clean: list[dict[str, Any]] = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise TypeError(f"record {i} is a {type(record).__name__}, not a dict")
        row: dict[str, Any] = {}
        for key, value in record.items():
            if not isinstance(key, str):
                raise TypeError(f"record {i} has a non-string key {key!r}")
            if key == _FLOAT_BITS:
                raise TypeError(f"record {i} uses the reserved key {_FLOAT_BITS!r}")
            row[key] = _to_json_value(value, key)
        clean.append(row)
    return json.dumps(clean, allow_nan=True, separators=(",", ":"))


def decode_records(text: str) -> list[dict[str, Any]]:
    """The records of :func:`encode_records`, bit for bit."""
    return json.loads(text, object_hook=_decode_object)


def row_checksum(
    experiment: str,
    config_hash: str,
    unit_index: int,
    seed: int,
    unit_hash: str,
    unit_seed: int,
    version: str,
    fingerprint: str,
    records: bytes,
) -> str:
    """SHA-256 (hex) of every field of a stored row that the sweep relies on.

    >>> a = row_checksum("toy", "h", 0, 1, "u", 2, "1.0", "f", b"[]")
    >>> a == row_checksum("toy", "h", 0, 1, "u", 2, "1.0", "f", b"[]")
    True
    >>> a == row_checksum("toy", "h", 0, 1, "u", 2, "1.0", "f", b"[ ]")
    False
    """
    key = json.dumps(
        [experiment, config_hash, int(unit_index), int(seed), unit_hash, int(unit_seed)]
        + [version, fingerprint],
        separators=(",", ":"),
    )
    return hashlib.sha256(key.encode("utf-8") + b"\0" + records).hexdigest()


def _sqlite_reason(exc: sqlite3.Error) -> str:
    """``locked``, ``read-only``, ``full``, ``corrupt`` or ``other`` for an SQLite error."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc).lower()
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return "locked"
    if name.startswith(("SQLITE_READONLY", "SQLITE_PERM")) or "readonly" in text:
        return "read-only"
    if name == "SQLITE_FULL" or "disk is full" in text:
        return "full"
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return "corrupt"
    return "other"


# ------------------------------------------------------------------ the store
class ResultStore:
    """An SQLite results store (WAL journal, one transaction per finished unit).

    Parameters
    ----------
    path
        The database file (its ``-wal`` and ``-shm`` files live beside it). Created (with its
        folder) when missing. An existing file must be a finetune-theory store; anything else
        raises :class:`StoreError` and is not modified.
    lock_wait
        Seconds to wait, when opening, for another process that holds the store's write lock;
        longer and the store is reported as in use.

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

    #: seconds of SQLite busy-waiting for normal operation (after the open-time probe)
    BUSY_TIMEOUT = 30.0

    def __init__(self, path: str | Path, *, lock_wait: float = 2.0) -> None:
        self.path = Path(path)
        self.created = False
        self._conn: sqlite3.Connection | None = None
        self._store_id = 0
        self._inode: tuple[int, int] | None = None
        existed = self._check_existing_file()
        if existed:
            self._check_wal()
        else:
            self._check_orphan_wal()
        self._check_writable(existed)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=lock_wait, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the results store {self.path}: {exc}") from None
        self._conn = conn
        try:
            if existed:
                self._check_identity()
                self._setup_existing()
            else:
                self._create()
                self.created = True
            conn.execute(f"PRAGMA busy_timeout = {int(self.BUSY_TIMEOUT * 1000)}")
            st = os.stat(self.path)
            self._inode = (st.st_dev, st.st_ino)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise self._open_error(exc, existed) from None
        except StoreError:
            self.close()
            raise

    # -- opening
    def _open_error(self, exc: sqlite3.Error, existed: bool) -> StoreError:
        reason = _sqlite_reason(exc)
        if reason == "locked":
            return StoreError(
                f"the results store {self.path} is in use by another process (it holds the "
                "store's lock); wait for it to end, or pass another --out or --store"
            )
        if reason == "read-only":
            return StoreError(
                f"the results store {self.path} is read-only ({exc}); make it and its folder "
                "writable, or pass another --out or --store"
            )
        if reason == "full":
            return StoreError(f"the disk is full: cannot write the results store {self.path}")
        if not existed:
            return StoreError(f"cannot create the results store {self.path}: {exc}")
        if reason == "other":
            return StoreError(f"cannot use the results store {self.path}: {exc}")
        return StoreError(
            f"{self.path} is corrupted or not a finetune-theory results store ({exc}); "
            "move it away or pass another store path"
        )

    def _check_existing_file(self) -> bool:
        """Whether a non-empty file is there; raise when it cannot be an SQLite database."""
        if self.path.is_dir():
            raise StoreError(f"results store path {self.path} is a folder, not a file")
        if not self.path.exists() or self.path.stat().st_size == 0:
            return False
        try:
            with self.path.open("rb") as fh:
                head = fh.read(len(_SQLITE_MAGIC))
        except OSError as exc:
            raise StoreError(f"cannot read the results store {self.path}: {exc}") from None
        if head != _SQLITE_MAGIC:
            raise StoreError(
                f"{self.path} is not a finetune-theory results store (not an SQLite file); "
                "move it away or pass another store path"
            )
        return True

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
        wal = self.wal_path
        try:
            with wal.open("rb") as fh:
                header = fh.read(32)
                if len(header) < 32:
                    return False, None, 0
                magic, _, page_size, _, salt1, salt2 = struct.unpack(">6I", header[:24])
                if magic not in _WAL_MAGIC or page_size < 512 or page_size & (page_size - 1):
                    raise StoreError(
                        f"{wal} is not an SQLite WAL file; move it away (and {self.shm_path.name}"
                        f" if present) to use {self.path.name}"
                    )
                frames, page_one = False, None
                while True:
                    frame = fh.read(24)
                    page = fh.read(page_size)
                    if len(frame) < 24 or len(page) < page_size:
                        break
                    pgno, _, s1, s2 = struct.unpack(">4I", frame[:16])
                    if (s1, s2) != (salt1, salt2):
                        break  # frames of an earlier WAL generation: SQLite ignores them too
                    frames = True
                    if pgno == 1:
                        page_one = page[:100]
        except FileNotFoundError:
            return False, None, 0
        except OSError as exc:
            raise StoreError(f"cannot read {wal}: {exc}") from None
        return frames, page_one, page_size

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
            header = fh.read(100)
        db_app, db_id = header[68:72], header[60:64]
        db_page = struct.unpack(">H", header[16:18])[0]
        db_page = 65536 if db_page == 1 else db_page
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
            raise self._refuse_wal(f"holds committed data but {self.path.name} is missing or empty")

    def _check_writable(self, existed: bool) -> None:
        """Report a read-only store or folder before SQLite is asked to write to it."""
        folder = self.path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        targets = [folder] + ([self.path] if existed else [])
        for target in targets:
            if not os.access(target, os.W_OK):
                kind = "folder" if target.is_dir() else "file"
                raise StoreError(
                    f"the results store {self.path} is read-only (its {kind} {target} cannot be "
                    "written); make it writable, or pass another --out or --store"
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
                return  # an empty SQLite file: adopted by _setup_existing
            raise StoreError(
                f"{self.path} is an SQLite database of another program, not a finetune-theory "
                "results store; move it away or pass another store path"
            )
        conn = self._require()
        ok = conn.execute("PRAGMA quick_check").fetchone()[0]
        if ok != "ok":
            ok = " ".join(str(ok).split())[:200]
            raise StoreError(
                f"{self.path} is corrupted (SQLite quick_check: {ok}); "
                "move it away or pass another store path"
            )
        layout = self._layout()
        if layout not in (1, SCHEMA_VERSION):
            raise StoreError(
                f"{self.path} uses store layout {layout}, this version reads layout "
                f"{SCHEMA_VERSION}; run with --fresh into another folder"
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

    def _create(self) -> None:
        """A new store: identity and tables go into the main file before the WAL is turned on."""
        conn = self._require()
        self._store_id = 2 + secrets.randbelow(2**31 - 3)
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {self._store_id}")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('layout', ?)", (str(SCHEMA_VERSION),))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        self._wal_mode()

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
        # an adopted empty file or a layout-1 store: give it an identity and the new columns
        self._store_id = 2 + secrets.randbelow(2**31 - 3)
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
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _checkpoint(self) -> None:
        """Fold the WAL into the main file and empty it (best effort: busy readers skip it)."""
        try:
            self._require().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.OperationalError:
            pass

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

        A row whose bytes are not valid UTF-8 or JSON, or whose checksum does not match its
        fields, comes back with ``unit=None`` and ``damage`` saying what is wrong.
        """
        cursor = self._require().execute(
            "SELECT unit_index, unit_hash, unit_seed, version, fingerprint, "
            "CAST(records AS BLOB), seconds, checksum FROM units "
            "WHERE experiment = ? AND config_hash = ? AND seed = ? ORDER BY unit_index",
            (experiment, config_hash, int(seed)),
        )
        found = []
        for idx, uhash, useed, ver, fprint, blob, sec, checksum in cursor:
            idx = int(idx)
            blob = bytes(blob)
            expected = row_checksum(
                experiment, config_hash, idx, seed, uhash, useed, ver, fprint, blob
            )
            try:
                text = blob.decode("utf-8")
            except UnicodeDecodeError:
                found.append(StoredRow(idx, None, "its records are not valid UTF-8 text"))
                continue
            if checksum and checksum != expected:
                found.append(StoredRow(idx, None, "its checksum does not match its contents"))
                continue
            try:
                records = decode_records(text)
            except (ValueError, TypeError):
                found.append(StoredRow(idx, None, "its records are not valid JSON"))
                continue
            unit = StoredUnit(idx, uhash, int(useed), ver, records, float(sec), fprint)
            found.append(StoredRow(idx, unit))
        return found

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
    ) -> None:
        """Commit one finished unit (replacing a stale row with the same key).

        Raises
        ------
        OutputError
            The disk is full, or the store's file was removed during the run.
        """
        text = records if isinstance(records, str) else encode_records(records)
        seconds = float(seconds) if math.isfinite(float(seconds)) else 0.0
        checksum = row_checksum(
            experiment,
            config_hash,
            unit_index,
            seed,
            unit_hash,
            unit_seed,
            version,
            fingerprint,
            text.encode("utf-8"),
        )
        try:
            with self._transaction() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO units (experiment, config_hash, unit_index, seed, "
                    "unit_hash, unit_seed, version, records, seconds, created, fingerprint, "
                    "checksum) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        experiment,
                        config_hash,
                        int(unit_index),
                        int(seed),
                        unit_hash,
                        int(unit_seed),
                        version,
                        text,
                        seconds,
                        time.time(),
                        fingerprint,
                        checksum,
                    ),
                )
        except sqlite3.Error as exc:
            if is_disk_full(exc):
                raise OutputError(
                    f"the disk is full: could not store unit {unit_index} of {experiment} in "
                    f"{self.path}"
                ) from None
            raise
        self._checkpoint()
        self._check_still_there()

    def clear(self, experiment: str) -> int:
        """Forget every stored unit of ``experiment``; the number of rows removed."""
        with self._transaction() as conn:
            cur = conn.execute("DELETE FROM units WHERE experiment = ?", (experiment,))
            removed = int(cur.rowcount)
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
