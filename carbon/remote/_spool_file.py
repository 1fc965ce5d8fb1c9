"""The spool's SQLite file: its schema, its connection settings and its transactions.

One connection per process, shared by its threads under a lock; several processes share
the file through SQLite's WAL mode and a busy timeout. Every SQLite or OS error becomes a
:class:`~carbon.errors.StoreError` that names the file.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from carbon.errors import StoreError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS record (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    rank INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('start', 'batch', 'end')),
    seq INTEGER,
    body BLOB NOT NULL,
    owner_host TEXT NOT NULL,
    owner_pid INTEGER NOT NULL,
    owner_started REAL NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS record_owner ON record (owner_host, owner_pid, owner_started, id);
CREATE INDEX IF NOT EXISTS record_run ON record (run_id, id);
CREATE TABLE IF NOT EXISTS open_run (
    run_id TEXT NOT NULL,
    rank INTEGER NOT NULL,
    owner_host TEXT NOT NULL,
    owner_pid INTEGER NOT NULL,
    owner_started REAL NOT NULL,
    ended INTEGER NOT NULL DEFAULT 0,
    full_warning TEXT,
    PRIMARY KEY (run_id, rank)
);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    rank INTEGER NOT NULL,
    kind TEXT NOT NULL,
    seq INTEGER,
    body BLOB NOT NULL,
    status_code INTEGER,
    reason TEXT NOT NULL,
    rejected_at REAL NOT NULL
);
"""


class SpoolFile:
    """The SQLite file behind a spool, created with its tables on first use.

    Args:
        path: The file; its folder is created.
        busy_timeout_s: How long to wait for another process's write to finish.

    Raises:
        StoreError: The file cannot be created or opened, or a newer carbon wrote it.
    """

    def __init__(self, path: Path, busy_timeout_s: float = 30.0) -> None:
        self.path = path
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._conn: sqlite3.Connection | None = None
        with self.transaction("be created") as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the agent's spool at {path} was written by a newer carbon (format "
                    f"{version}); upgrade carbon or run `carbon sync` with the newer one"
                )
            for statement in _SCHEMA.split(";"):  # not executescript: it would commit
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def locked(self, what: str) -> Iterator[sqlite3.Connection]:
        """The connection, for reads; errors become ``StoreError`` ("cannot <what>")."""
        with self._lock:
            try:
                yield self._connection()
            except (sqlite3.Error, OSError) as exc:
                raise StoreError(f"the agent's spool at {self.path} cannot {what}: {exc}") from exc

    @contextmanager
    def transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        """The connection inside one write transaction, taken at once (``BEGIN IMMEDIATE``)."""
        with self.locked(what) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.debug("rolling back the spool's transaction failed", exc_info=True)
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close this process's connection; the file stays."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    @staticmethod
    def used_bytes(conn: sqlite3.Connection) -> int:
        """Bytes the file's pages in use take (freed pages are reused, so not counted)."""
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * page_size)

    def _connection(self) -> sqlite3.Connection:
        if self._pid != os.getpid():  # a forked child: the parent's connection is not ours
            self._conn, self._pid = None, os.getpid()
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
                self._use_wal(conn)
                conn.execute("PRAGMA synchronous = NORMAL")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL; SQLite does not wait for a busy file here, so we do."""
        deadline = time.monotonic() + self._busy_timeout_s
        while True:
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)
