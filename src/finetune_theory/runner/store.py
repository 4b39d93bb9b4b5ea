"""The results store: an SQLite file that keeps every finished unit of work.

One row per unit, keyed by ``(experiment, config_hash, unit_index, seed)`` where ``seed`` is the
root seed of the sweep. Each row is written in its own transaction, so a run that dies (Ctrl-C,
``kill -9``, power cut) loses at most the units that were still being computed; the next run
with the same arguments finds the finished ones and does not compute them again.

Records are stored as JSON. Python writes a float with its shortest round-tripping ``repr``
and parses it back to the same double, so the records that come back are bit-identical to the
ones that went in (infinities and ``-0.0`` included; a NaN other than the standard one, such
as the negative NaN of ``inf - inf``, is written as its raw bits). NumPy scalars are converted
to the Python scalar of the same value on the way in.

The file is marked with an SQLite ``application_id``; a file that is not SQLite, is corrupted,
or is an SQLite database of some other program is reported with :class:`StoreError` and left
untouched.
"""

from __future__ import annotations

import json
import math
import sqlite3
import struct
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "StoreError",
    "StoredUnit",
    "ResultStore",
    "encode_records",
    "decode_records",
    "APPLICATION_ID",
    "SCHEMA_VERSION",
]

#: ``PRAGMA application_id`` of a finetune-theory store ("FTht" in ASCII)
APPLICATION_ID = 0x46546874
#: ``PRAGMA user_version``: bumped when the table layout changes
SCHEMA_VERSION = 1

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
    PRIMARY KEY (experiment, config_hash, unit_index, seed)
)
"""


class StoreError(RuntimeError):
    """The store file cannot be used (not SQLite, corrupted, foreign, unwritable)."""


@dataclass(frozen=True)
class StoredUnit:
    """One finished unit read back from the store."""

    unit_index: int
    unit_hash: str
    unit_seed: int
    version: str
    records: list[dict[str, Any]]
    seconds: float


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


# ------------------------------------------------------------------ the store
class ResultStore:
    """An SQLite results store (WAL journal, one transaction per finished unit).

    Parameters
    ----------
    path
        The database file. Created (with its folder) when missing. An existing file must be a
        finetune-theory store; anything else raises :class:`StoreError` and is not modified.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with ResultStore(pathlib.Path(tempfile.mkdtemp()) / "s.sqlite") as store:
    ...     store.put("toy", "abc", 0, 7, unit_hash="u0", unit_seed=1, version="0",
    ...               records=[{"x": 0.1}], seconds=0.0)
    ...     store.load("toy", "abc", 7, "0")[0].records
    [{'x': 0.1}]
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        existed = self._check_existing_file()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the results store {self.path}: {exc}") from None
        self._conn = conn
        try:
            if existed:
                self._check_identity()
            self._setup(new=not existed)
        except sqlite3.DatabaseError as exc:
            self.close()
            if not existed:
                raise StoreError(f"cannot create the results store {self.path}: {exc}") from None
            raise StoreError(
                f"{self.path} is corrupted or not a finetune-theory results store ({exc}); "
                "move it away or pass another store path"
            ) from None
        except StoreError:
            self.close()
            raise

    # -- opening
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

    def _check_identity(self) -> None:
        conn = self._require()
        ok = conn.execute("PRAGMA quick_check").fetchone()[0]
        if ok != "ok":
            raise StoreError(
                f"{self.path} is corrupted (SQLite quick_check: {ok}); "
                "move it away or pass another store path"
            )
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id == 0 and tables == 0:
            return  # an empty SQLite file: adopt it
        if app_id != APPLICATION_ID:
            raise StoreError(
                f"{self.path} is an SQLite database of another program, not a finetune-theory "
                "results store; move it away or pass another store path"
            )
        schema = conn.execute("PRAGMA user_version").fetchone()[0]
        if schema != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} uses store layout {schema}, this version reads layout "
                f"{SCHEMA_VERSION}; run with --fresh into another folder"
            )

    def _setup(self, *, new: bool) -> None:
        conn = self._require()
        conn.execute("PRAGMA busy_timeout = 30000")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":  # e.g. a file system without shared memory
            conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("PRAGMA synchronous = FULL")
        with self._transaction():
            conn.execute(_SCHEMA)
            if new or conn.execute("PRAGMA application_id").fetchone()[0] == 0:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the results store {self.path} is closed")
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._require()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- reading and writing
    def load(
        self, experiment: str, config_hash: str, seed: int, version: str
    ) -> dict[int, StoredUnit]:
        """The finished units of one sweep (same config, root seed and package version)."""
        rows = self._require().execute(
            "SELECT unit_index, unit_hash, unit_seed, version, records, seconds FROM units "
            "WHERE experiment = ? AND config_hash = ? AND seed = ? AND version = ?",
            (experiment, config_hash, int(seed), version),
        )
        return {
            int(idx): StoredUnit(int(idx), uhash, int(useed), ver, decode_records(text), sec)
            for idx, uhash, useed, ver, text, sec in rows
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
    ) -> None:
        """Commit one finished unit (replacing a stale row with the same key)."""
        text = records if isinstance(records, str) else encode_records(records)
        seconds = float(seconds) if math.isfinite(float(seconds)) else 0.0
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO units VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                ),
            )

    def clear(self, experiment: str) -> int:
        """Forget every stored unit of ``experiment``; the number of rows removed."""
        with self._transaction() as conn:
            cur = conn.execute("DELETE FROM units WHERE experiment = ?", (experiment,))
            return int(cur.rowcount)

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

    def close(self) -> None:
        """Close the connection (SQLite folds the WAL back into the file)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r})"
