"""Wall-clock jumps: moving the clock during a run changes no duration, energy or end.

carbon measures intervals on the monotonic clock and reads the wall clock only to stamp
events (through :func:`carbon._clock.utc_now`, which these tests move). A run's end is its
start plus its monotonic duration, its energy per UTC hour follows the same timeline, and a
run interrupted (killed, gone silent) ends where its measurements end, not when someone
noticed.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

import carbon
from carbon import _clock, wire
from carbon.settings import Settings
from carbon.sources.base import Component
from carbon.store import open_store
from carbon.store.lifecycle import mark_silent_runs
from carbon.store.models import Sample
from carbon.store.queries import energy_by_hour
from carbon.store.sink import LocalSink
from carbon.testing import ConstantPowerSource
from tests.api_helpers import batch, run_start
from tests.test_remote_faults import receipts

POWER_W = 400.0


class MovableWallClock:
    """The wall clock as carbon reads it, set ahead or behind the real one on demand."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def _wait_for_a_batch(run: carbon.Run, store_url: str) -> None:
    """Let the run store one more batch (it makes one a second), stepping meanwhile."""
    stored = receipts(store_url, run.id)
    deadline = time.monotonic() + 30
    while receipts(store_url, run.id) <= stored:
        assert time.monotonic() < deadline, "the run stopped storing batches"
        run.step(samples=1)
        time.sleep(0.02)


def test_moving_the_wall_clock_an_hour_forward_and_back_changes_nothing_measured(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    wall = MovableWallClock()
    monkeypatch.setattr(_clock, "utc_now", wall)
    store_url = settings.resolved_database_url
    source = ConstantPowerSource(POWER_W, component=Component.GPU, name="test gpu")
    outer_start = time.monotonic()
    with carbon.track(project="p", name="jumps", settings=settings, sources=[source]) as run:
        inner_start = time.monotonic()
        _wait_for_a_batch(run, store_url)
        wall.offset = timedelta(hours=1)  # NTP, a person, a resumed VM: an hour ahead
        _wait_for_a_batch(run, store_url)
        wall.offset = timedelta(hours=-1)  # and then an hour behind
        _wait_for_a_batch(run, store_url)
        inner_s = time.monotonic() - inner_start
    outer_s = time.monotonic() - outer_start
    summary = run.summary()

    duration_s = summary["duration_s"]
    assert inner_s <= duration_s <= outer_s  # the monotonic truth, not +-3600 s
    assert summary["energy_j"] == pytest.approx(POWER_W * duration_s, rel=1e-9)
    started = datetime.fromisoformat(summary["started_at"])
    ended = datetime.fromisoformat(summary["ended_at"])
    assert (ended - started).total_seconds() == pytest.approx(duration_s, abs=1e-3)
    with open_store(store_url).session() as session:
        hours = energy_by_hour(session, run.id)
        samples = session.execute(
            select(Sample.t, Sample.offset_s, Sample.energy_j).where(Sample.run_id == run.id)
        ).all()
    assert math.fsum(hours.values()) == pytest.approx(summary["energy_j"], rel=1e-9)
    first_hour = started.replace(minute=0, second=0, microsecond=0)
    last_hour = ended.replace(minute=0, second=0, microsecond=0)
    assert set(hours) <= {first_hour, last_hour}  # no energy an hour off
    assert len(samples) >= 3
    for t, offset_s, _ in samples:
        assert abs((t - (started + timedelta(seconds=offset_s))).total_seconds()) < 1e-3
    assert math.fsum(energy_j for *_, energy_j in samples) == pytest.approx(
        summary["energy_j"], rel=1e-9
    )


def test_an_interrupted_run_ends_where_its_measurements_end(store_url: str) -> None:
    """``carbon sync`` may close a killed run days later: its end is still start + duration."""
    sink = LocalSink(open_store(store_url))
    started_at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    start = run_start(started_at=started_at)
    sink.start_run(start)
    sink.write(batch(start.id, 0, seconds=5))
    noticed = wire.RunEnd(
        run_id=start.id,
        status="interrupted",
        ended_at=started_at + timedelta(days=3),
        error="the agent process 4242 on node-1 ended without closing the run",
    )
    sink.finish_run(noticed)
    summary = sink.summary(start.id)
    assert summary["status"] == "interrupted"
    assert summary["ended_at"] == (started_at + timedelta(seconds=5)).isoformat()


def test_a_silent_run_ends_where_its_measurements_end(store_url: str) -> None:
    sink = LocalSink(open_store(store_url))
    start = run_start(started_at=datetime.now(UTC) - timedelta(hours=2))
    sink.start_run(start)
    sink.write(batch(start.id, 0, seconds=7))
    with open_store(store_url).session() as session:
        changed = mark_silent_runs(
            session, timeout_s=60, now=datetime.now(UTC) + timedelta(hours=1)
        )
    assert changed == [start.id]
    summary = sink.summary(start.id)
    assert summary["status"] == "interrupted"
    assert summary["ended_at"] == (start.started_at + timedelta(seconds=7)).isoformat()
