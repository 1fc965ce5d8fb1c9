"""Retention of raw samples: roll them up into per-minute energy, then drop them.

Raw samples (one per device per second) are what the store grows by. Past the retention
period they are summed into ``sample_minute`` (energy, covered seconds and count per device
per UTC minute) and removed: whole day partitions are dropped on PostgreSQL, rows are
deleted elsewhere. Run totals, energy per hour and CO2e live on their own rows and do not
change; a device's samples plus its roll-ups still add up to its energy. The cut is at a
UTC midnight, so a partition is either kept whole or dropped whole, and the roll-up and the
drop happen in one transaction: a failure leaves both undone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, func, literal_column, select, text
from sqlalchemy.dialects import postgresql, sqlite

from carbon.store.models import Sample, SampleMinute
from carbon.store.partitions import day_partitions, is_partitioned

_SAMPLE = cast(Table, Sample.__table__)
_MINUTE = cast(Table, SampleMinute.__table__)


@dataclass
class RetentionReport:
    """What one application of retention did.

    Attributes:
        cutoff: Samples before this instant were rolled up and removed.
        samples_rolled_up: Raw samples summed into per-minute rows.
        partitions_dropped: Day partitions dropped (PostgreSQL).
    """

    cutoff: datetime
    samples_rolled_up: int = 0
    partitions_dropped: list[str] = field(default_factory=list)


def retention_cutoff(now: datetime, keep_days: int) -> datetime:
    """The UTC midnight before which samples are past a retention of ``keep_days`` days."""
    day = (now.astimezone(UTC) - timedelta(days=keep_days)).date()
    return datetime.combine(day, time(), tzinfo=UTC)


def apply_retention(connection: Connection, *, keep_days: int, now: datetime) -> RetentionReport:
    """Roll up and remove the samples older than ``keep_days`` days (to a UTC midnight)."""
    cutoff = retention_cutoff(now, keep_days)
    report = RetentionReport(cutoff)
    report.samples_rolled_up = _roll_up(connection, cutoff)
    if is_partitioned(connection):
        for day, name in sorted(day_partitions(connection).items()):
            if datetime.combine(day, time(), tzinfo=UTC) < cutoff:
                connection.execute(text(f"DROP TABLE {name}"))
                report.partitions_dropped.append(name)
        connection.execute(text("DELETE FROM sample_default WHERE t < :cutoff"), {"cutoff": cutoff})
    else:
        connection.execute(delete(_SAMPLE).where(_SAMPLE.c.t < cutoff))
    return report


def _roll_up(connection: Connection, cutoff: datetime) -> int:
    """Add the samples before ``cutoff`` to their minutes' roll-ups; return how many."""
    count = connection.execute(select(func.count()).where(_SAMPLE.c.t < cutoff)).scalar() or 0
    if not count:
        return 0
    if connection.dialect.name == "postgresql":
        minute: Any = func.date_trunc("minute", _SAMPLE.c.t)
        module: Any = postgresql
    else:
        # Times are stored as text in SQLite; keep the same layout with seconds zeroed.
        minute = func.strftime("%Y-%m-%d %H:%M:00.000000", _SAMPLE.c.t)
        module = sqlite
    rolled = (
        select(
            _SAMPLE.c.device_id,
            minute.label("minute"),
            _SAMPLE.c.run_id,
            func.sum(_SAMPLE.c.energy_j),
            func.sum(_SAMPLE.c.interval_s),
            func.count(),
        )
        .where(_SAMPLE.c.t < cutoff)
        .group_by(_SAMPLE.c.device_id, literal_column("minute"), _SAMPLE.c.run_id)
    )
    statement = module.insert(_MINUTE).from_select(
        ["device_id", "minute", "run_id", "energy_j", "interval_s", "samples"], rolled
    )
    statement = statement.on_conflict_do_update(
        index_elements=["device_id", "minute"],
        set_={
            "energy_j": _MINUTE.c.energy_j + statement.excluded.energy_j,
            "interval_s": _MINUTE.c.interval_s + statement.excluded.interval_s,
            "samples": _MINUTE.c.samples + statement.excluded.samples,
        },
    )
    connection.execute(statement)
    return int(count)
