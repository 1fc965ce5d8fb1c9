"""Bulk inserts of the per-second samples: binary ``COPY`` on PostgreSQL, executemany elsewhere.

Samples are the big table (one row per device per second, from every agent of a team), so
on PostgreSQL they are streamed with ``COPY ... FROM STDIN (FORMAT BINARY)`` inside the
batch's transaction, and the binary stream is packed here column by column with one
:mod:`struct` call per row rather than value by value; a partitioned ``sample`` routes each
row to its day.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
"""The columns a sample row is written with, in ``COPY`` order."""

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
"""PostgreSQL types of :data:`SAMPLE_COLUMNS`, for writers that send rows one by one."""

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no header extension
_TRAILER = b"\xff\xff"
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # PostgreSQL counts time from here
_ONE_US = timedelta(microseconds=1)
_INSERT_SAMPLE = insert(cast(Table, Sample.__table__))


@dataclass(frozen=True)
class SampleColumns:
    """A batch's samples column by column, as the store writes them.

    Attributes:
        run_id: The run all samples belong to.
        started_at: The run's start; ``t`` is this plus ``offset_s``.
        device_id: Database id of each sample's device.
        offset_s: End of each sample's interval, seconds from the start.
        interval_s: Length of each sample's interval, seconds (> 0).
        energy_j: Energy of each sample, joules.
        utilization: Utilization of each sample's device, or ``None``.
    """

    run_id: str
    started_at: datetime
    device_id: Sequence[int]
    offset_s: Sequence[float]
    interval_s: Sequence[float]
    energy_j: Sequence[float]
    utilization: Sequence[float | None]

    def __len__(self) -> int:
        return len(self.device_id)

    def _columns(self) -> Iterator[tuple[int, float, float, float, float | None]]:
        """Each sample's device id, offset, interval, energy and utilization."""
        return zip(
            self.device_id,
            self.offset_s,
            self.interval_s,
            self.energy_j,
            self.utilization,
            strict=True,
        )

    def rows(self) -> list[dict[str, Any]]:
        """The samples as row dictionaries (mean power included)."""
        started = self.started_at
        return [
            {
                "run_id": self.run_id,
                "device_id": device_id,
                "t": started + timedelta(seconds=offset_s),
                "offset_s": offset_s,
                "interval_s": interval_s,
                "energy_j": energy_j,
                "power_w": energy_j / interval_s,
                "utilization": utilization,
            }
            for device_id, offset_s, interval_s, energy_j, utilization in self._columns()
        ]

    def copy_binary(self) -> bytes:
        """The samples as a complete ``COPY ... (FORMAT BINARY)`` stream."""
        run_id = self.run_id.encode()
        # Each field is its length then its value; a NULL utilization is length -1 alone.
        head = f">hi{len(run_id)}siiiqidididid"
        known = struct.Struct(head + "id").pack
        unknown = struct.Struct(head + "i").pack
        start_us = (self.started_at - _PG_EPOCH) // _ONE_US
        rows = []
        for device_id, offset_s, interval_s, energy_j, utilization in self._columns():
            fields = (
                *(8, len(run_id), run_id),
                *(4, device_id),
                *(8, start_us + round(offset_s * 1e6)),
                *(8, offset_s, 8, interval_s, 8, energy_j, 8, energy_j / interval_s),
            )
            rows.append(
                unknown(*fields, -1) if utilization is None else known(*fields, 8, utilization)
            )
        return b"".join([_SIGNATURE, *rows, _TRAILER])


def insert_samples(connection: Connection, samples: SampleColumns) -> None:
    """Insert a batch's samples in the current transaction."""
    if not len(samples):
        return
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        driver_connection = connection.connection.driver_connection
        assert driver_connection is not None
        with driver_connection.cursor() as cursor, cursor.copy(COPY_SAMPLE_SQL) as copy:
            copy.write(samples.copy_binary())
        return
    connection.execute(_INSERT_SAMPLE, samples.rows())
