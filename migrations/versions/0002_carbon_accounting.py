"""Carbon accounting: energy per hour, hourly intensities, market factors, provenance.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("run") as batch:
        batch.add_column(sa.Column("pue_source", sa.Text(), nullable=True))
        batch.add_column(sa.Column("intensity_factor_type", sa.String(16), nullable=True))
        batch.add_column(
            sa.Column("intensity_fallback", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("intensity_fallback_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("co2e_method", sa.String(16), nullable=True))
        batch.add_column(sa.Column("co2e_market_g", sa.Float(), nullable=True))
        batch.add_column(sa.Column("market_source", sa.Text(), nullable=True))
    with op.batch_alter_table("run") as batch:
        batch.alter_column("intensity_fallback", server_default=None)
    op.create_table(
        "run_energy_hour",
        sa.Column(
            "run_id", sa.String(32), sa.ForeignKey("run.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("rank", sa.Integer(), primary_key=True),
        sa.Column("hour_start", TIME, primary_key=True),
        sa.Column("energy_j", sa.Float(), nullable=False),
    )
    op.create_table(
        "intensity_hour",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("hour_start", TIME, nullable=False),
        sa.Column("intensity_g_per_kwh", sa.Float(), nullable=False),
        sa.Column("factor_type", sa.String(16), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.UniqueConstraint("zone", "hour_start"),
    )
    op.create_table(
        "market_factor",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("project", sa.String(200), nullable=True),
        sa.Column("zone", sa.String(64), nullable=True),
        sa.Column("intensity_g_per_kwh", sa.Float(), nullable=True),
        sa.Column("renewable_share", sa.Float(), nullable=True),
        sa.Column("valid_from", TIME, nullable=True),
        sa.Column("valid_to", TIME, nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("market_factor")
    op.drop_table("intensity_hour")
    op.drop_table("run_energy_hour")
    with op.batch_alter_table("run") as batch:
        for column in (
            "market_source",
            "co2e_market_g",
            "co2e_method",
            "intensity_fallback_reason",
            "intensity_fallback",
            "intensity_factor_type",
            "pue_source",
        ):
            batch.drop_column(column)
