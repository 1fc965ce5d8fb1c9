"""Per-minute series kept at ingest: every sample also counts in its device's minute.

``sample_minute`` held only the samples retention had removed. From this revision every
batch adds its samples to their minutes as it is stored, with the lowest and highest
one-second power and the utilization's sum and count, so a long run's power is drawn from
its minutes (1/60 of its samples) and retention only has to delete. The samples stored so
far are added to their minutes here.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.add_column("sample_minute", sa.Column("power_min_w", sa.Float(), nullable=True))
    op.add_column("sample_minute", sa.Column("power_max_w", sa.Float(), nullable=True))
    op.add_column(
        "sample_minute",
        sa.Column("utilization_sum", sa.Float(), nullable=False, server_default="0"),
    )
    op.add_column(
        "sample_minute",
        sa.Column("utilization_count", sa.Integer(), nullable=False, server_default="0"),
    )
    if postgres:
        minute = "date_trunc('minute', t)"
        lowest = "LEAST(sample_minute.power_min_w, excluded.power_min_w)"
        highest = "GREATEST(sample_minute.power_max_w, excluded.power_max_w)"
    else:
        # SQLite stores times as text; the same layout with the seconds zeroed.
        minute = "strftime('%Y-%m-%d %H:%M:00.000000', t)"
        lowest = (
            "min(coalesce(sample_minute.power_min_w, excluded.power_min_w), "
            "coalesce(excluded.power_min_w, sample_minute.power_min_w))"
        )
        highest = (
            "max(coalesce(sample_minute.power_max_w, excluded.power_max_w), "
            "coalesce(excluded.power_max_w, sample_minute.power_max_w))"
        )
    # WHERE true: SQLite needs it to tell the upsert's ON CONFLICT from a join's ON.
    op.execute(
        f"""
        INSERT INTO sample_minute (device_id, minute, run_id, energy_j, interval_s, samples,
                                   power_min_w, power_max_w, utilization_sum, utilization_count)
        SELECT device_id, {minute}, run_id, sum(energy_j), sum(interval_s), count(*),
               min(power_w), max(power_w), coalesce(sum(utilization), 0), count(utilization)
        FROM sample WHERE true
        GROUP BY device_id, {minute}, run_id
        ON CONFLICT (device_id, minute) DO UPDATE SET
            energy_j = sample_minute.energy_j + excluded.energy_j,
            interval_s = sample_minute.interval_s + excluded.interval_s,
            samples = sample_minute.samples + excluded.samples,
            power_min_w = {lowest},
            power_max_w = {highest},
            utilization_sum = sample_minute.utilization_sum + excluded.utilization_sum,
            utilization_count = sample_minute.utilization_count + excluded.utilization_count
        """
    )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    minute = "date_trunc('minute', t)" if postgres else "strftime('%Y-%m-%d %H:%M:00.000000', t)"
    # Back to roll-ups of removed samples only: minutes whose samples are still stored go.
    op.execute(
        f"DELETE FROM sample_minute WHERE (device_id, minute) IN "
        f"(SELECT device_id, {minute} FROM sample)"
    )
    for column in ("utilization_count", "utilization_sum", "power_max_w", "power_min_w"):
        op.drop_column("sample_minute", column)
