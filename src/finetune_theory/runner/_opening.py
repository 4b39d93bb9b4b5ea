"""Opening a results store: what a file must be before SQLite is let near it, creating a new
store all at once, and bringing an older layout up (the :class:`StoreFiles` part of
:class:`~finetune_theory.runner.store.ResultStore`)."""

from __future__ import annotations

import os
import secrets
import sqlite3
import struct
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path

from ._wal import SQLITE_MAGIC, WalError, header_identity, wal_page_one
from .errors import OutputError, StoreError, is_disk_full
from .files import current_umask

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "StoreFiles"]

#: ``PRAGMA application_id`` of a finetune-theory store ("FTht" in ASCII)
APPLICATION_ID = 0x46546874
#: the table layout (kept in the ``meta`` table; layout 1 kept it in ``user_version``)
SCHEMA_VERSION = 2

SCHEMA = """
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


def new_identity() -> int:
    """A random store identity (``user_version``): 2 and up, 0 and 1 mean "none"."""
    return 2 + secrets.randbelow(2**31 - 3)


class StoreFiles:
    """The opening checks of a store (a base of :class:`ResultStore`)."""

    path: Path
    _store_id: int

    def _require(self) -> sqlite3.Connection:  # pragma: no cover - defined by ResultStore
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:  # pragma: no cover
        raise NotImplementedError

    def _checkpoint(self) -> bool:  # pragma: no cover - defined by ResultStore
        raise NotImplementedError

    def _error(  # pragma: no cover
        self, exc: sqlite3.Error, doing: str
    ) -> StoreError | OutputError:
        raise NotImplementedError

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
                conn.execute(f"PRAGMA user_version = {new_identity()}")
                for statement in SCHEMA.split(";"):
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
        self._store_id = new_identity()
        self._wal_mode()
        with self._transaction() as tx:
            tx.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            cols = {row[1] for row in tx.execute("PRAGMA table_info(units)")}
            if cols and "fingerprint" not in cols:
                tx.execute("ALTER TABLE units ADD COLUMN fingerprint TEXT NOT NULL DEFAULT ''")
                tx.execute("ALTER TABLE units ADD COLUMN checksum TEXT NOT NULL DEFAULT ''")
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    tx.execute(statement)
            tx.execute("INSERT OR REPLACE INTO meta VALUES ('layout', ?)", (str(SCHEMA_VERSION),))
        self._checkpoint()
