"""Store upkeep: batches stored once, silent runs, day partitions and sample retention."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, select, text

from carbon import wire
from carbon.settings import load_settings
from carbon.store import open_store
from carbon.store.maintenance import ADVISORY_LOCK_KEY, run_maintenance
from carbon.store.models import BatchReceipt, Run, RunRank, Sample, SampleMinute
from carbon.store.partitions import day_partitions, ensure_day_partitions
from carbon.store.queries import sample_energy_by_device
from carbon.store.sink import LocalSink

RUN_ID = "feedfacefeedfacefeedfacefeedface"


def _start(started_at: datetime) -> wire.RunStart:
    return wire.RunStart(
        id=RUN_ID,
        project="p",
        name="n",
        kind="training",
        started_at=started_at,
        host="h",
        region=None,
        pue=1.0,
        intensity=None,
        sample_hz=10,
        carbon_version="test",
        devices=[
            wire.DeviceSpec(
                position=position,
                component="gpu",
                name="g",
                method="m",
                provenance="measured",
                detail="d",
            )
            for position in range(2)
        ],
    )


def _batch(seq: int, seconds: int, first_s: int = 0, power_w: float = 100.0) -> wire.Batch:
    """``seconds`` one-second samples on each of two GPUs, from ``first_s``."""
    ends = [float(first_s + k + 1) for k in range(seconds)]
    return wire.Batch(
        run_id=RUN_ID,
        seq=seq,
        sample_device=[0] * seconds + [1] * seconds,
        sample_offset_s=ends * 2,
        sample_interval_s=[1.0] * (2 * seconds),
        sample_energy_j=[power_w] * seconds + [2 * power_w] * seconds,
        sample_utilization=[None] * (2 * seconds),
        totals=wire.Totals(
            duration_s=float(first_s + seconds),
            device_energy_j=[power_w * (first_s + seconds), 2 * power_w * (first_s + seconds)],
            steps=0,
        ),
    )


def test_a_batch_sent_twice_is_stored_once(store_url: str) -> None:
    sink = LocalSink(open_store(store_url))
    sink.start_run(_start(datetime.now(UTC)))
    sink.write(_batch(0, 5))
    sink.write(_batch(0, 5))  # a retry of a batch whose acknowledgement was lost
    sink.write(_batch(1, 5, first_s=5))
    with sink.store.session() as session:
        run = session.get(Run, RUN_ID)
        assert run is not None
        assert session.scalar(select(func.count()).select_from(Sample)) == 20
        assert session.scalar(select(func.count()).select_from(BatchReceipt)) == 2
        assert sorted(sample_energy_by_device(session, RUN_ID).values()) == [1000.0, 2000.0]
        assert run.energy_j == pytest.approx(3000.0)


def test_a_repeated_start_changes_nothing(store_url: str) -> None:
    store = open_store(store_url)
    start = _start(datetime.now(UTC))
    LocalSink(store).start_run(start)
    sink = LocalSink(store)  # another process picks the run up
    sink.start_run(start)
    sink.write(_batch(0, 3))
    with store.session() as session:
        run = session.get(Run, RUN_ID)
        assert run is not None
        assert len(run.devices) == 2
        assert run.energy_j == pytest.approx(900.0)


def test_a_silent_run_is_interrupted_keeping_its_data_and_may_still_end(store_url: str) -> None:
    store = open_store(store_url)
    sink = LocalSink(store)
    started = datetime.now(UTC)
    sink.start_run(_start(started))
    sink.write(_batch(0, 4))
    settings = load_settings(database_url=store_url, heartbeat_timeout_s=60)
    soon = run_maintenance(store, settings, now=datetime.now(UTC) + timedelta(seconds=30))
    assert soon.interrupted == []
    late = run_maintenance(store, settings, now=datetime.now(UTC) + timedelta(seconds=120))
    assert late.interrupted == [RUN_ID]
    with store.session() as session:
        run = session.get(Run, RUN_ID)
        assert run is not None
        assert run.status == "interrupted"
        assert "the agent went silent" in (run.error or "")
        assert run.energy_j == pytest.approx(1200.0)
    sink.finish_run(
        wire.RunEnd(run_id=RUN_ID, status="completed", ended_at=datetime.now(UTC))
    )  # the agent was only cut off: its end still counts
    with store.session() as session:
        rank = session.get(RunRank, (RUN_ID, 0))
        run = session.get(Run, RUN_ID)
        assert rank is not None
        assert run is not None
        assert (run.status, rank.status, run.error) == ("completed", "completed", None)


def test_retention_removes_old_samples_whose_minutes_keep_their_energy(store_url: str) -> None:
    store = open_store(store_url)
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    old = datetime(2026, 10, 1, 10, 0, 30, tzinfo=UTC)  # 52 days before
    sink = LocalSink(store)
    sink.start_run(_start(old))
    sink.write(_batch(0, 90))  # 10:00:30 - 10:02:00: minutes 10:00, 10:01 and 10:01:?? end
    with store.transaction() as connection:
        ensure_day_partitions(connection, today=old.date(), days_behind=0, days_ahead=0)
    settings = load_settings(database_url=store_url, sample_retention_days=30)
    report = run_maintenance(store, settings, now=now)
    assert report.retention is not None
    assert report.retention.samples_removed == 180
    assert report.retention.cutoff == datetime(2026, 10, 23, tzinfo=UTC)
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Sample)) == 0
        minutes = session.execute(
            select(
                SampleMinute.minute, func.sum(SampleMinute.energy_j), func.sum(SampleMinute.samples)
            )
            .group_by(SampleMinute.minute)
            .order_by(SampleMinute.minute)
        ).all()
        by_device = sorted(sample_energy_by_device(session, RUN_ID).values())
        run = session.get(Run, RUN_ID)
        assert run is not None
    # Samples are stamped with the end of their second: 10:00:31 ... 10:02:00.
    assert [(m.astimezone(UTC).strftime("%H:%M"), e, n) for m, e, n in minutes] == [
        ("10:00", 29 * 300.0, 58),
        ("10:01", 60 * 300.0, 120),
        ("10:02", 1 * 300.0, 2),
    ]
    assert by_device == [9000.0, 18000.0]
    assert run.energy_j == pytest.approx(27000.0)
    if store.engine.dialect.name == "postgresql":
        assert report.retention.partitions_dropped == ["sample_p20261001"]


def test_retention_does_not_touch_samples_inside_the_period(store_url: str) -> None:
    store = open_store(store_url)
    sink = LocalSink(store)
    sink.start_run(_start(datetime.now(UTC) - timedelta(hours=2)))
    sink.write(_batch(0, 10))
    report = run_maintenance(store, load_settings(database_url=store_url, sample_retention_days=1))
    assert report.retention is not None
    with store.session() as session:
        kept = session.scalar(select(func.sum(Sample.energy_j)))
        minutes = session.scalar(select(func.sum(SampleMinute.energy_j)))
    assert report.retention.samples_removed == 0
    assert kept == pytest.approx(10 * (100.0 + 200.0))  # 10 s of the two devices
    assert minutes == pytest.approx(kept)


@pytest.mark.postgres
def test_day_partitions_take_todays_rows_and_move_waiting_ones(postgres_url: str) -> None:
    store = open_store(postgres_url)
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE run, project CASCADE"))
        for name in day_partitions(connection).values():
            connection.execute(text(f"DROP TABLE {name}"))
    engine.dispose()
    today = datetime.now(UTC)
    started = today - timedelta(seconds=30)
    sink = LocalSink(store)
    sink.start_run(_start(started))
    sink.write(_batch(0, 10))  # no day partition yet: the rows wait in the default one
    with store.transaction() as connection:
        made = ensure_day_partitions(connection, today=today.date())
        where = dict(
            connection.execute(
                text("SELECT tableoid::regclass::text, count(*) FROM sample GROUP BY 1")
            ).all()
        )
    expected = Counter(
        f"sample_p{started + timedelta(seconds=k + 1):%Y%m%d}" for k in range(10) for _ in range(2)
    )
    assert len(made) == 5
    assert where == dict(expected)
    sink.write(_batch(1, 10, first_s=10))
    with store.transaction() as connection:
        assert ensure_day_partitions(connection, today=today.date()) == []
        in_default = connection.execute(text("SELECT count(*) FROM sample_default")).scalar()
        total = connection.execute(text("SELECT count(*) FROM sample")).scalar()
    assert (in_default, total) == (0, 40)


@pytest.mark.postgres
def test_only_one_replica_does_partitions_and_retention_at_a_time(postgres_url: str) -> None:
    store = open_store(postgres_url)
    engine = create_engine(postgres_url)
    settings = load_settings(database_url=postgres_url, sample_retention_days=30)
    with engine.connect() as other:
        other.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        report = run_maintenance(store, settings)
        other.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
    engine.dispose()
    assert report.skipped_locked is True
    assert report.retention is None
    assert run_maintenance(store, settings).skipped_locked is False


def test_db_maintain_marks_a_silent_run_from_the_command_line(store_url: str) -> None:
    from tests.test_cli import cli

    store = open_store(store_url)
    sink = LocalSink(store)
    sink.start_run(_start(datetime.now(UTC) - timedelta(minutes=10)))
    sink.write(_batch(0, 3))
    with store.transaction() as connection:
        connection.execute(
            text("UPDATE run_rank SET last_seen_at = :at"),
            {"at": datetime.now(UTC) - timedelta(minutes=6)},
        )
    result = cli(
        "db",
        "maintain",
        env={"CARBON_DATABASE_URL": store_url, "CARBON_HEARTBEAT_TIMEOUT_S": "300"},
    )
    assert result.returncode == 0, result.stderr
    assert "runs marked interrupted (silent > 300 s): 1" in result.stdout
    assert "retention: off" in result.stdout
    with store.session() as session:
        run = session.get(Run, RUN_ID)
        assert run is not None
        assert run.status == "interrupted"
