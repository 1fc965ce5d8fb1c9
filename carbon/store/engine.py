"""Engines and sessions for the store: SQLite by default, PostgreSQL for teams.

SQLite gets WAL mode (readers never block the sampler's writes), foreign keys and a busy
timeout. Errors from the driver are translated into :class:`carbon.errors.StoreError`
with the URL in the message and any password masked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import NullPool

from carbon.errors import StoreError


def mask_url(url: str) -> str:
    """Return the URL with any password replaced by ``***``, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparseable database URL>"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def create_store_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for a store URL.

    For a SQLite file, the parent folder is created. The engine is lazy: nothing connects
    until it is used, so callers that need a clear error on a bad URL call
    :func:`check_connection`.

    Args:
        url: SQLAlchemy URL (``sqlite:///path``, ``postgresql+psycopg://...``); a bare
            ``postgresql://`` URL is taken to mean the psycopg 3 driver.
        **kwargs: Passed to :func:`sqlalchemy.create_engine`.

    Raises:
        StoreError: The URL cannot be parsed or names a driver that is not installed.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"cannot parse database URL {mask_url(url)!r}: {exc}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            try:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the folder of database {mask_url(url)!r}: {exc}"
                ) from None
        if database in (None, "", ":memory:"):
            kwargs.setdefault("poolclass", NullPool)
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"cannot open database {mask_url(url)!r}: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine
