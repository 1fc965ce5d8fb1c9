"""Alembic environment for the carbon store.

The URL comes from the Alembic config when carbon's code runs the migration
(``carbon db upgrade`` sets it from the settings), else from carbon's settings
(``CARBON_DATABASE_URL`` / ``CARBON_HOME``), so ``alembic upgrade head`` in a checkout and
the installed package migrate the same database.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from carbon.settings import load_settings
from carbon.store.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    return url or load_settings().resolved_database_url


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against a live database, reusing a connection handed in by carbon's code."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from carbon.store.engine import create_store_engine

    engine = create_store_engine(_url())
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
