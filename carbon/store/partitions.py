"""Day partitions of the ``sample`` table on PostgreSQL.

Migration 0003 makes ``sample`` a table partitioned by range of ``t`` with a default
partition. Maintenance keeps a partition per UTC day from yesterday to a few days ahead, so
rows land in small tables that retention can drop whole. A day whose rows already sit in the
default partition (a late batch, or rows from before the migration) gets its partition too:
its rows are moved into the new table before it is attached, in one transaction.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Connection, text

PREFIX = "sample_p"
"""Partitions are named ``sample_pYYYYMMDD`` after the UTC day they hold."""


def is_partitioned(connection: Connection) -> bool:
    """Whether this store's ``sample`` table is partitioned (PostgreSQL from revision 0003)."""
    if connection.dialect.name != "postgresql":
        return False
    found = connection.execute(
        text(
            "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "WHERE c.relname = 'sample' AND c.relnamespace = to_regnamespace(current_schema())"
        )
    ).first()
    return found is not None


def day_partitions(connection: Connection) -> dict[date, str]:
    """The day partitions that exist, by the day they hold."""
    rows = connection.execute(
        text(
            "SELECT c.relname FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname = 'sample' AND c.relname LIKE :pattern"
        ),
        {"pattern": PREFIX + "%"},
    )
    days: dict[date, str] = {}
    for (name,) in rows:
        try:
            day = datetime.strptime(name.removeprefix(PREFIX), "%Y%m%d").date()
        except ValueError:
            continue
        # Only canonical names go on, so DDL built from them (retention's DROP) never sees
        # a name that strptime tolerated but carbon did not make ("sample_d2026 1 5").
        if name == f"{PREFIX}{day:%Y%m%d}":
            days[day] = name
    return days


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC instants a day's partition holds: from its midnight to the next."""
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start, start + timedelta(days=1)


def ensure_day_partitions(
    connection: Connection, *, today: date, days_behind: int = 1, days_ahead: int = 3
) -> list[str]:
    """Make the missing partitions from ``today - days_behind`` to ``today + days_ahead``.

    Also makes one for each day that has rows waiting in the default partition within
    that span. Returns the names of the partitions made.
    """
    if not is_partitioned(connection):
        return []
    existing = day_partitions(connection)
    missing = [
        today + timedelta(days=offset)
        for offset in range(-days_behind, days_ahead + 1)
        if today + timedelta(days=offset) not in existing
    ]
    if missing:
        # Writers must not route rows to the default partition while a day is taken out of
        # it: they wait (briefly) until the partitions are attached, then see them.
        connection.execute(text("LOCK TABLE sample IN SHARE ROW EXCLUSIVE MODE"))
    return [_attach_day(connection, day) for day in missing]


def _attach_day(connection: Connection, day: date) -> str:
    """Create a day's partition, move its rows out of the default partition, attach it."""
    name = f"{PREFIX}{day:%Y%m%d}"
    start, end = day_bounds(day)
    bounds = {"start": start, "end": end}
    connection.execute(text(f"CREATE TABLE {name} (LIKE sample INCLUDING DEFAULTS)"))
    connection.execute(
        text(
            f"WITH moved AS (DELETE FROM sample_default WHERE t >= :start AND t < :end "
            f"RETURNING *) INSERT INTO {name} SELECT * FROM moved"
        ),
        bounds,
    )
    # Literal bounds: ATTACH PARTITION takes no parameters.
    connection.execute(
        text(
            f"ALTER TABLE sample ATTACH PARTITION {name} "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
    )
    return name
