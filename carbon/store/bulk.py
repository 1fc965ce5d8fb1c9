"""Bulk inserts of the per-second rows: ``COPY`` on PostgreSQL, one executemany elsewhere.

Samples are the big table (one row per device per second, from every agent of a team), so
on PostgreSQL they are streamed with ``COPY ... FROM STDIN`` inside the batch's transaction
instead of being inserted row by row; a partitioned ``sample`` routes each row to its day.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, insert

from carbon.store.models import Sample

SAMPLE_COLUMNS = (
    "run_id",
    "device_id",
    "t",
    "offset_s",
    "interval_s",
    "energy_j",
    "power_w",
    "utilization",
)
"""The columns of a sample row, in the order :func:`insert_samples` expects them."""

_SAMPLE = cast(Table, Sample.__table__)
_INSERT_SAMPLE = insert(_SAMPLE)
COPY_SAMPLE_SQL = f"COPY sample ({', '.join(SAMPLE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
SAMPLE_PG_TYPES = (
    "varchar",
    "int4",
    "timestamptz",
    "float8",
    "float8",
    "float8",
    "float8",
    "float8",
)
"""PostgreSQL types of :data:`SAMPLE_COLUMNS`: binary COPY sends values without text forms."""


def insert_samples(connection: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert sample rows (tuples in :data:`SAMPLE_COLUMNS` order) in the current transaction."""
    if not rows:
        return
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        driver_connection = connection.connection.driver_connection
        assert driver_connection is not None
        with driver_connection.cursor() as cursor, cursor.copy(COPY_SAMPLE_SQL) as copy:
            copy.set_types(list(SAMPLE_PG_TYPES))
            for row in rows:
                copy.write_row(row)
        return
    connection.execute(
        _INSERT_SAMPLE, [dict(zip(SAMPLE_COLUMNS, row, strict=True)) for row in rows]
    )
