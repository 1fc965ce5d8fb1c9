"""Shared fixtures: a store on SQLite and on PostgreSQL, and settings that point at it.

Store tests take the ``store_url`` fixture and run once per backend. PostgreSQL tests use a
database made for this test session on the server at ``CARBON_TEST_POSTGRES_URL`` (default
127.0.0.1:5432, database ``test``, trust auth), dropped at the end. Where that server cannot
be reached the PostgreSQL cases skip, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import gc
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from carbon.settings import Settings, load_settings
from carbon.store import close_stores, connect_store

ADMIN_URL = os.environ.get(
    "CARBON_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TABLES = (
    "batch_receipt",
    "sample_minute",
    "api_key",
    "run_energy_hour",
    "intensity_hour",
    "market_factor",
    "run_window",
    "work",
    "sample",
    "device",
    "run_rank",
    "run",
    "project",
    "team",
)


@pytest.fixture(autouse=True)
def _isolated_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[None]:
    """No test sees the developer's CARBON_* variables or home folder."""
    for key in list(os.environ):
        if key.startswith("CARBON_") and key != "CARBON_TEST_POSTGRES_URL":
            monkeypatch.delenv(key)
    monkeypatch.setenv("CARBON_HOME", str(tmp_path / "carbon-home"))
    yield
    close_stores()
    if {"store_url", "postgres_url"} & set(request.fixturenames):
        # A database connection left open by the test is collected (and reported) here, in
        # the test that leaked it, not in whichever test the collector happens to run in.
        gc.collect()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database, copied for each test (migrating once is enough)."""
    path = tmp_path_factory.mktemp("template") / "carbon.db"
    store = connect_store(f"sqlite:///{path}", migrate=True)
    store.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A migrated PostgreSQL database for this test session, dropped afterwards."""
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"carbon_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        message = f"PostgreSQL at {make_url(ADMIN_URL).render_as_string()} unreachable: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    store = connect_store(url, migrate=True)
    store.dispose()
    try:
        yield url
    finally:
        close_stores()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty, migrated store: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "carbon.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        connection.execute(
            text("INSERT INTO team (id, name, created_at) VALUES (1, 'default', now())")
        )
        connection.execute(text("SELECT setval(pg_get_serial_sequence('team', 'id'), 1)"))
    engine.dispose()
    yield url


@pytest.fixture
def settings(store_url: str, tmp_path: Path) -> Settings:
    """Settings pointing at the test's store, in France, with 20 readings a second."""
    return load_settings(home=tmp_path, database_url=store_url, region="FR", sample_hz=20)
