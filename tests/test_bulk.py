"""Samples written in bulk read back exactly, on SQLite (executemany) and PostgreSQL (COPY)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from carbon.store import open_store
from carbon.store.bulk import SampleColumns, insert_samples
from carbon.store.models import Sample

STARTED = datetime(2026, 11, 22, 23, 59, 58, 123456, tzinfo=UTC)  # crosses midnight


def test_samples_read_back_as_written(store_url: str) -> None:
    store = open_store(store_url)
    samples = SampleColumns(
        run_id="ab" * 16,
        started_at=STARTED,
        device_id=[3, 4, 3, 4],
        offset_s=[1.0, 1.0, 2.5, 2.5],
        interval_s=[1.0, 1.0, 1.5, 1.5],
        energy_j=[300.0, 0.0, 451.5, 1e-9],
        utilization=[0.5, None, 1.0, None],
    )
    with store.transaction() as connection:
        insert_samples(connection, samples)
        insert_samples(connection, SampleColumns("cd" * 16, STARTED, [], [], [], [], []))
    with store.session() as session:
        rows = session.execute(
            select(
                Sample.run_id,
                Sample.device_id,
                Sample.t,
                Sample.offset_s,
                Sample.interval_s,
                Sample.energy_j,
                Sample.power_w,
                Sample.utilization,
            ).order_by(Sample.t, Sample.device_id)
        ).all()
    assert [tuple(row) for row in rows] == [
        ("ab" * 16, 3, STARTED + timedelta(seconds=1), 1.0, 1.0, 300.0, 300.0, 0.5),
        ("ab" * 16, 4, STARTED + timedelta(seconds=1), 1.0, 1.0, 0.0, 0.0, None),
        ("ab" * 16, 3, STARTED + timedelta(seconds=2.5), 2.5, 1.5, 451.5, 301.0, 1.0),
        (
            "ab" * 16,
            4,
            STARTED + timedelta(seconds=2.5),
            2.5,
            1.5,
            1e-9,
            pytest.approx(1e-9 / 1.5),
            None,
        ),
    ]
