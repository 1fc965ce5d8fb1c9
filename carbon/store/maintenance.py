"""Periodic upkeep of a team store: silent runs, sample partitions, retention.

The server runs it every ``CARBON_MAINTENANCE_INTERVAL_S``; ``carbon db maintain`` runs it
once (from cron, for a store written by agents directly). Every replica of the server may
run it: marking silent runs is idempotent, and the partition and retention work is done
under a PostgreSQL advisory lock by whichever replica gets it first, the others skipping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, text

from carbon.settings import Settings
from carbon.store import Store
from carbon.store.lifecycle import mark_silent_runs
from carbon.store.partitions import ensure_day_partitions
from carbon.store.retention import RetentionReport, apply_retention

ADVISORY_LOCK_KEY = 0x636172626F6E  # "carbon"
"""The PostgreSQL advisory lock that makes one replica at a time do partitions and retention."""

LOCK_TIMEOUT_MS = 2000
"""Longest wait for a table lock during partition work before the round gives up."""


@dataclass
class MaintenanceReport:
    """What one round of maintenance did.

    Attributes:
        interrupted: Runs marked ``interrupted`` because their agent went silent.
        partitions_created: Day partitions of ``sample`` made.
        retention: What retention did, when it is configured and this process ran it.
        skipped_locked: Another process held the maintenance lock: partitions and
            retention were left to it.
    """

    interrupted: list[str] = field(default_factory=list)
    partitions_created: list[str] = field(default_factory=list)
    retention: RetentionReport | None = None
    skipped_locked: bool = False


def run_maintenance(
    store: Store, settings: Settings, *, now: datetime | None = None
) -> MaintenanceReport:
    """Mark silent runs, keep the day partitions ahead, and apply the retention setting.

    Raises:
        StoreError: The database refused the work (nothing of the failed step is kept).
    """
    now = now or datetime.now(UTC)
    report = MaintenanceReport()
    with store.session() as session:
        report.interrupted = mark_silent_runs(
            session, timeout_s=settings.heartbeat_timeout_s, now=now
        )
    with store.transaction() as connection:
        if not _try_lock(connection):
            report.skipped_locked = True
            return report
        report.partitions_created = ensure_day_partitions(connection, today=now.date())
        if settings.sample_retention_days is not None:
            report.retention = apply_retention(
                connection, keep_days=settings.sample_retention_days, now=now
            )
    return report


def _try_lock(connection: Connection) -> bool:
    """Take the maintenance lock for this transaction, if no one else holds it.

    On PostgreSQL the transaction also gets a lock timeout: attaching a partition waits for
    an exclusive lock on the default partition, and batches queue behind a waiting lock;
    better to give up and try at the next round than to hold ingest up.
    """
    if connection.dialect.name != "postgresql":
        return True
    connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'"))
    return bool(
        connection.execute(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
        ).scalar()
    )
