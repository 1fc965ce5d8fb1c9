"""The migrated schema is the one the models describe, on every backend."""

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url

from carbon.errors import StoreError
from carbon.store import connect_store
from carbon.store.migrate import HEAD_REVISION, migrations_dir
from carbon.store.models import Base


def test_head_revision_constant_matches_the_newest_script() -> None:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD_REVISION]


def _not_a_partition(name: str | None, type_: str, parent: dict[str, str | None]) -> bool:
    """Day partitions of ``sample`` are made by maintenance, not by the models."""
    table = name if type_ == "table" else parent.get("table_name")
    return not (table or "").startswith(("sample_default", "sample_p"))


def test_migrated_schema_matches_the_models(store_url: str) -> None:
    engine = create_engine(store_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": _not_a_partition}
        )
        differences = compare_metadata(context, Base.metadata)
        tables = set(inspect(connection).get_table_names())
    engine.dispose()
    assert differences == []
    assert {"project", "run", "device", "sample", "work", "alembic_version"} <= tables


def test_sample_table_is_indexed_by_run_and_time(store_url: str) -> None:
    engine = create_engine(store_url)
    indexes = inspect(engine).get_indexes("sample")
    engine.dispose()
    assert {ix["name"]: ix["column_names"] for ix in indexes}["ix_sample_run_time"] == [
        "run_id",
        "t",
    ]


def test_fresh_sqlite_file_is_migrated_on_first_use_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "carbon.db"
    store = connect_store(f"sqlite:///{path}")
    with store.engine.connect() as connection:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        mode = connection.execute(text("PRAGMA journal_mode")).scalar()
    store.dispose()
    assert revision == HEAD_REVISION
    assert mode == "wal"


@pytest.mark.postgres
def test_empty_postgres_is_not_migrated_behind_the_users_back(postgres_url: str) -> None:
    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("CREATE SCHEMA IF NOT EXISTS empty_one"))
    engine.dispose()
    url = postgres_url + "?options=-csearch_path%3Dempty_one"
    try:
        with pytest.raises(StoreError, match=r"is empty; .* run `carbon db upgrade`"):
            connect_store(url)
    finally:
        engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text("DROP SCHEMA empty_one CASCADE"))
        engine.dispose()


def test_database_from_a_newer_carbon_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'carbon.db'}"
    connect_store(url).dispose()
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError, match="newer than this version of carbon knows"):
        connect_store(url)


def test_processes_opening_a_new_sqlite_store_at_once_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    code = f"from carbon.store import connect_store; connect_store({url!r}).dispose()"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    errors = [proc.communicate(timeout=60)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0], errors
    store = connect_store(url, migrate=False)
    store.dispose()


@pytest.mark.postgres
def test_replicas_migrating_a_new_postgres_store_at_once_all_succeed(postgres_url: str) -> None:
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    name = f"carbon_race_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    code = f"from carbon.store import connect_store; connect_store({url!r}, migrate=True).dispose()"
    try:
        procs = [
            subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
            for _ in range(6)
        ]
        errors = [proc.communicate(timeout=120)[1] for proc in procs]
        assert [proc.returncode for proc in procs] == [0] * 6, errors
        connect_store(url, migrate=False).dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_upgrade_from_0001_keeps_runs(tmp_path: Path) -> None:
    from sqlalchemy import create_engine as make_engine

    from carbon.store.engine import create_store_engine
    from carbon.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_store_engine(url)
    upgrade(engine, "0001")
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO project (id, name, created_at) VALUES (1, 'p', '2026-01-01')")
        )
        connection.execute(
            text(
                "INSERT INTO run (id, project_id, name, kind, status, started_at, host, "
                "hardware, compression, tags, metrics, warnings, sample_hz, carbon_version, "
                "simulated, world_size, steps, pue, energy_j) VALUES ('a' || hex(randomblob(15)), "
                "1, 'n', 'training', 'completed', '2026-01-01', 'h', '{}', '{}', '{}', '{}', "
                "'[]', 10, '0.1.0', 0, 1, 0, 1.0, 123.0)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO device (id, run_id, rank, position, component, name, method, "
                "provenance, detail, energy_j) SELECT 7, id, 0, 0, 'gpu', 'g', 'counter', "
                "'measured', 'd', 123.0 FROM run"
            )
        )
        connection.execute(
            text(
                "INSERT INTO sample (run_id, device_id, t, offset_s, interval_s, energy_j, "
                "power_w) SELECT id, 7, '2026-01-01 00:00:01', 1.0, 1.0, 123.0, 123.0 FROM run"
            )
        )
    engine.dispose()
    connect_store(url).dispose()  # migrates 0001 -> head on first use
    check = make_engine(url)
    with check.connect() as connection:
        row = connection.execute(text("SELECT energy_j, intensity_fallback FROM run")).one()
        # Altering `run` copies it; its devices and samples must not cascade away.
        sample_j = connection.execute(text("SELECT sum(energy_j) FROM sample")).scalar()
        device_j = connection.execute(text("SELECT sum(energy_j) FROM device")).scalar()
        team = connection.execute(
            text("SELECT team.name FROM run JOIN team ON team.id = run.team_id")
        ).scalar()
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        minutes = connection.execute(
            text("SELECT minute, energy_j, samples, power_min_w, power_max_w FROM sample_minute")
        ).all()
    check.dispose()
    # 0004 counts the stored samples in their minutes.
    assert [tuple(m) for m in minutes] == [("2026-01-01 00:00:00.000000", 123.0, 1, 123.0, 123.0)]
    assert tuple(row) == (123.0, 0)
    assert (sample_j, device_j, team) == (123.0, 123.0, "default")
    assert revision == HEAD_REVISION


@pytest.mark.postgres
def test_upgrade_to_0004_counts_stored_samples_in_their_minutes(postgres_url: str) -> None:
    from carbon.store.engine import create_store_engine
    from carbon.store.migrate import upgrade

    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("CREATE SCHEMA IF NOT EXISTS at_0003"))
    url = postgres_url + "?options=-csearch_path%3Dat_0003"
    engine = create_store_engine(url)
    try:
        upgrade(engine, "0003")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO project (id, team_id, name, created_at) VALUES (1, 1, 'p', now())"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO run (id, project_id, team_id, name, kind, status, started_at, "
                    "host, hardware, compression, tags, metrics, warnings, sample_hz, "
                    "carbon_version, simulated, world_size, steps, pue, intensity_fallback) "
                    "VALUES ('r', 1, 1, 'n', "
                    "'training', 'completed', now(), 'h', '{}', '{}', '{}', '{}', '[]', 10, "
                    "'0.1.0', false, 1, 0, 1.0, false)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO device (id, run_id, rank, position, component, name, method, "
                    "provenance, detail, energy_j) VALUES (7, 'r', 0, 0, 'gpu', 'g', 'c', "
                    "'measured', 'd', 0)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO sample (run_id, device_id, t, offset_s, interval_s, energy_j, "
                    "power_w, utilization) VALUES "
                    "('r', 7, '2026-01-01 10:00:59+00', 59, 1, 100, 100, 0.5), "
                    "('r', 7, '2026-01-01 10:01:00+00', 60, 1, 300, 300, NULL), "
                    "('r', 7, '2026-01-01 10:01:30+00', 90, 1, 200, 200, 1.0)"
                )
            )
        upgrade(engine, "head")
        with engine.connect() as connection:
            minutes = connection.execute(
                text(
                    "SELECT to_char(minute AT TIME ZONE 'UTC', 'HH24:MI'), energy_j, samples, "
                    "power_min_w, power_max_w, utilization_sum, utilization_count "
                    "FROM sample_minute ORDER BY minute"
                )
            ).all()
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text("DROP SCHEMA at_0003 CASCADE"))
        admin.dispose()
    assert [tuple(m) for m in minutes] == [
        ("10:00", 100.0, 1, 100.0, 100.0, 0.5, 1),
        ("10:01", 500.0, 2, 200.0, 300.0, 1.0, 1),
    ]


def _downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_0005_adds_run_gaps_and_takes_them_away_again(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from carbon.store.engine import create_store_engine
    from carbon.store.migrate import upgrade

    schema = f"at_0005_{uuid.uuid4().hex[:8]}"
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'gaps.db'}"
    else:
        postgres_url = request.getfixturevalue("postgres_url")
        admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        url = postgres_url + f"?options=-csearch_path%3D{schema}"
    engine = create_store_engine(url)
    try:
        upgrade(engine, "0004")
        assert not inspect(engine).has_table("run_gap")
        upgrade(engine, "0005")
        indexes = {ix["name"]: ix["column_names"] for ix in inspect(engine).get_indexes("run_gap")}
        assert indexes == {"ix_run_gap_run_id": ["run_id"]}
        _downgrade(engine, "0004")
        assert not inspect(engine).has_table("run_gap")
        with engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
                "0004"
            )
        upgrade(engine, "head")
        assert inspect(engine).has_table("run_gap")
    finally:
        engine.dispose()
        if backend == "postgres":
            with admin.connect() as connection:
                connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
