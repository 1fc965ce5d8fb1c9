"""Retention of raw samples: past the retention period they are removed.

Raw samples (one per device per second) are what the store grows by. Every sample also
counts in its device's minute (``sample_minute``) from the moment it is stored
(:mod:`carbon.store.minutes`), so removing old samples loses no energy: run totals, energy
per hour, CO2e and the per-minute series stay as they were. Whole day partitions are
dropped on PostgreSQL, rows are deleted elsewhere; the cut is at a UTC midnight, so a
partition is either kept whole or dropped whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import cast

from sqlalchemy import Connection, Table, delete, func, select, text

from carbon.store.models import Sample
from carbon.store.partitions import day_partitions, is_partitioned

_SAMPLE = cast(Table, Sample.__table__)


@dataclass
class RetentionReport:
    """What one application of retention did.

    Attributes:
        cutoff: Samples before this instant were removed.
        samples_removed: Raw samples removed (their minutes keep their energy).
        partitions_dropped: Day partitions dropped (PostgreSQL).
    """

    cutoff: datetime
    samples_removed: int = 0
    partitions_dropped: list[str] = field(default_factory=list)


def retention_cutoff(now: datetime, keep_days: int) -> datetime:
    """The UTC midnight before which samples are past a retention of ``keep_days`` days."""
    day = (now.astimezone(UTC) - timedelta(days=keep_days)).date()
    return datetime.combine(day, time(), tzinfo=UTC)


def apply_retention(connection: Connection, *, keep_days: int, now: datetime) -> RetentionReport:
    """Remove the samples older than ``keep_days`` days (to a UTC midnight)."""
    cutoff = retention_cutoff(now, keep_days)
    report = RetentionReport(cutoff)
    report.samples_removed = int(
        connection.execute(select(func.count()).where(_SAMPLE.c.t < cutoff)).scalar() or 0
    )
    if is_partitioned(connection):
        for day, name in sorted(day_partitions(connection).items()):
            if datetime.combine(day, time(), tzinfo=UTC) < cutoff:
                connection.execute(text(f"DROP TABLE {name}"))
                report.partitions_dropped.append(name)
        connection.execute(text("DELETE FROM sample_default WHERE t < :cutoff"), {"cutoff": cutoff})
    else:
        connection.execute(delete(_SAMPLE).where(_SAMPLE.c.t < cutoff))
    return report
