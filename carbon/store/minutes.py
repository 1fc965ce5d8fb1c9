"""Each batch's samples added to their devices' minutes (``sample_minute``), as it is stored.

A minute holds its samples' energy, the seconds they cover, how many there are, the lowest
and highest one-second power, and the utilization's sum and count: everything a plot of
the minute needs, mergeable when a later batch adds to the same minute. A sample counts in
the minute of its end (``t``), as retention counted it before minutes were kept at ingest.
"""

from __future__ import annotations

import functools
import math
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, func
from sqlalchemy.dialects import postgresql, sqlite

from carbon import wire
from carbon.store.models import SampleMinute

_MINUTE = cast(Table, SampleMinute.__table__)
_SECONDS_PER_MINUTE = 60.0


def minute_rows(
    run_id: str, started_at: datetime, device_ids: list[int], batch: wire.Batch
) -> list[dict[str, Any]]:
    """The batch's samples summed per device and UTC minute, as rows to add."""
    minute0 = started_at.replace(second=0, microsecond=0)
    into_minute_s = (started_at - minute0).total_seconds()
    rows: dict[tuple[int, int], list[Any]] = {}
    for position, end_s, interval_s, energy_j, utilization in zip(
        batch.sample_device,
        batch.sample_offset_s,
        batch.sample_interval_s,
        batch.sample_energy_j,
        batch.sample_utilization,
        strict=True,
    ):
        key = (device_ids[position], math.floor((into_minute_s + end_s) / _SECONDS_PER_MINUTE))
        power_w = energy_j / interval_s if interval_s > 0 else None
        used = utilization is not None
        row = rows.get(key)
        if row is None:
            rows[key] = [energy_j, interval_s, 1, power_w, power_w, utilization or 0.0, int(used)]
            continue
        row[0] += energy_j
        row[1] += interval_s
        row[2] += 1
        if power_w is not None:
            row[3] = power_w if row[3] is None else min(row[3], power_w)
            row[4] = power_w if row[4] is None else max(row[4], power_w)
        row[5] += utilization or 0.0
        row[6] += int(used)
    return [
        {
            "device_id": device_id,
            "minute": minute0 + timedelta(minutes=index),
            "run_id": run_id,
            "energy_j": energy_j,
            "interval_s": covered_s,
            "samples": count,
            "power_min_w": lowest,
            "power_max_w": highest,
            "utilization_sum": utilization_sum,
            "utilization_count": utilization_count,
        }
        for (device_id, index), (
            energy_j,
            covered_s,
            count,
            lowest,
            highest,
            utilization_sum,
            utilization_count,
        ) in rows.items()
    ]


def add_minutes(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Add the rows to their minutes (insert, or merge into a minute already there)."""
    if rows:
        connection.execute(_minute_upsert(connection.dialect.name), rows)


@functools.cache
def _minute_upsert(dialect: str) -> Any:
    """The minute upsert for a dialect, built once (every batch of every run uses it)."""
    postgres = dialect == "postgresql"
    module: Any = postgresql if postgres else sqlite
    statement = module.insert(_MINUTE)
    new = statement.excluded
    if postgres:  # LEAST and GREATEST skip NULLs
        lowest = func.least(_MINUTE.c.power_min_w, new.power_min_w)
        highest = func.greatest(_MINUTE.c.power_max_w, new.power_max_w)
    else:  # SQLite's min() and max() of several values return NULL if one is
        lowest = func.min(
            func.coalesce(_MINUTE.c.power_min_w, new.power_min_w),
            func.coalesce(new.power_min_w, _MINUTE.c.power_min_w),
        )
        highest = func.max(
            func.coalesce(_MINUTE.c.power_max_w, new.power_max_w),
            func.coalesce(new.power_max_w, _MINUTE.c.power_max_w),
        )
    return statement.on_conflict_do_update(
        index_elements=["device_id", "minute"],
        set_={
            "energy_j": _MINUTE.c.energy_j + new.energy_j,
            "interval_s": _MINUTE.c.interval_s + new.interval_s,
            "samples": _MINUTE.c.samples + new.samples,
            "power_min_w": lowest,
            "power_max_w": highest,
            "utilization_sum": _MINUTE.c.utilization_sum + new.utilization_sum,
            "utilization_count": _MINUTE.c.utilization_count + new.utilization_count,
        },
    )
