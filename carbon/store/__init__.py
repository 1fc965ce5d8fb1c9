"""The SQL store: tables, migrations, the local sink and the one query layer.

:func:`open_store` is the way in: it connects, checks the schema revision and, for SQLite,
migrates a new or older database on first use.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from carbon.errors import StoreError
from carbon.store.engine import create_store_engine, mask_url
from carbon.store.migrate import HEAD_REVISION, current_revision, upgrade

__all__ = ["Store", "close_stores", "connect_store", "open_store"]


class Store:
    """A database that holds carbon's runs: an engine and a session factory.

    Attributes:
        engine: The SQLAlchemy engine.
        display_url: The URL with any password masked, for messages.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.display_url = mask_url(engine.url.render_as_string(hide_password=False))
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error.

        Raises:
            StoreError: The database refused the work; the message names the store.
        """
        session = self._sessions()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            raise StoreError(f"database {self.display_url!r}: {_reason(exc)}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection in a transaction, for the hot path of bulk writes (no ORM).

        Raises:
            StoreError: The database refused the work; the message names the store.
        """
        try:
            with self.engine.begin() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise StoreError(f"database {self.display_url!r}: {_reason(exc)}") from exc

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _reason(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_PG_MIGRATION_LOCK = 0x636172626F6D  # "carbom"
"""The PostgreSQL advisory lock held while a store is migrated."""


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Hold an exclusive lock on the store while it is migrated.

    Several processes (the ranks of a job, the replicas of a server starting after an
    upgrade) may open a store at once; the lock makes one migrate while the others wait
    and then find the schema in place. SQLite: a lock file beside the database;
    PostgreSQL: a session advisory lock.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_MIGRATION_LOCK}
                )
                connection.commit()
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def connect_store(url: str, *, migrate: bool | None = None) -> Store:
    """Open a store and make sure its schema is the one this code expects.

    Args:
        url: SQLAlchemy URL of the database.
        migrate: Migrate a database that is empty or older; by default only SQLite is
            migrated on first use, a shared PostgreSQL store is migrated on purpose with
            ``carbon db upgrade``.

    Raises:
        StoreError: The database cannot be reached, or it is at a revision this code cannot
            use; the message names the URL with its password masked.
    """
    engine = create_store_engine(url)
    if migrate is None:
        migrate = engine.dialect.name == "sqlite"
    try:
        with engine.connect() as connection:
            revision = current_revision(connection)
        if revision != HEAD_REVISION:
            if revision is not None and revision > HEAD_REVISION:
                raise StoreError(
                    f"database {mask_url(url)!r} is at schema revision {revision}, newer than "
                    f"this version of carbon knows ({HEAD_REVISION}): upgrade carbon"
                )
            if not migrate:
                state = "empty" if revision is None else f"at revision {revision}"
                raise StoreError(
                    f"database {mask_url(url)!r} is {state}; this version of carbon needs "
                    f"revision {HEAD_REVISION}: run `carbon db upgrade`"
                )
            with _migration_lock(engine):
                with engine.connect() as connection:
                    revision = current_revision(connection)
                if revision != HEAD_REVISION:
                    upgrade(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StoreError(f"cannot open database {mask_url(url)!r}: {_reason(exc)}") from None
    except StoreError:
        engine.dispose()
        raise
    return Store(engine)


_open: dict[str, Store] = {}
_open_lock = threading.Lock()


def open_store(url: str) -> Store:
    """The process's store for ``url``, connected and checked once, then reused.

    Runs in one process share the engine (and its pool) instead of connecting and checking
    the schema at every start; :func:`close_stores` closes them all.
    """
    with _open_lock:
        store = _open.get(url)
        if store is None:
            store = _open[url] = connect_store(url)
        return store


def close_stores() -> None:
    """Dispose of every store :func:`open_store` opened in this process."""
    with _open_lock:
        for store in _open.values():
            store.dispose()
        _open.clear()
