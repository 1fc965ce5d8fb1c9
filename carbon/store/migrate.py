"""Run the Alembic migrations from code, so an installed package can migrate its store.

The migration scripts live in ``migrations/`` at the top of the source tree and are shipped
inside the wheel as ``carbon/_migrations``; :func:`migrations_dir` finds whichever exists.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

from carbon.errors import StoreError

HEAD_REVISION = "0005"
"""The revision the code expects; a test checks it equals the newest script's."""


def migrations_dir() -> Path:
    """Folder of the Alembic environment: in the installed package, else in the checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_migrations", package.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise StoreError(
        "the database migrations are missing from this installation "
        f"(looked in {package / '_migrations'} and {package.parent / 'migrations'})"
    )


def current_revision(connection: Connection) -> str | None:
    """The schema revision recorded in the database, or ``None`` for an empty database."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` to ``revision`` (the newest by default)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            # SQLite alters a table by copying it and dropping the old one; with foreign keys
            # on, that drop would cascade to the rows of every table referring to it.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise StoreError(
                            f"migrating to {revision} left {len(broken)} row(s) whose "
                            f"references are broken (first: {tuple(broken[0])}); nothing was "
                            "changed"
                        )
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()
