"""Initial schema: projects, runs and their ranks, devices, samples, work, windows.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "project",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", TIME, nullable=False),
    )
    op.create_table(
        "run",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("project.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("ended_at", TIME, nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("region", sa.String(64), nullable=True),
        sa.Column("hardware", JSON, nullable=False),
        sa.Column("compression", JSON, nullable=False),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("metrics", JSON, nullable=False),
        sa.Column("warnings", JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("sample_hz", sa.Float(), nullable=False),
        sa.Column("carbon_version", sa.String(32), nullable=False),
        sa.Column("simulated", sa.Boolean(), nullable=False),
        sa.Column("job_id", sa.String(128), nullable=True),
        sa.Column("world_size", sa.Integer(), nullable=False),
        sa.Column("energy_j", sa.Float(), nullable=True),
        sa.Column("energy_gpu_j", sa.Float(), nullable=True),
        sa.Column("energy_cpu_j", sa.Float(), nullable=True),
        sa.Column("energy_ram_j", sa.Float(), nullable=True),
        sa.Column("steps", sa.BigInteger(), nullable=False),
        sa.Column("samples", sa.BigInteger(), nullable=True),
        sa.Column("tokens", sa.BigInteger(), nullable=True),
        sa.Column("flops", sa.Float(), nullable=True),
        sa.Column("flops_method", sa.String(32), nullable=True),
        sa.Column("precision", sa.String(16), nullable=True),
        sa.Column("intensity_g_per_kwh", sa.Float(), nullable=True),
        sa.Column("intensity_source", sa.Text(), nullable=True),
        sa.Column("intensity_zone", sa.String(64), nullable=True),
        sa.Column("intensity_year", sa.Integer(), nullable=True),
        sa.Column("pue", sa.Float(), nullable=False),
        sa.Column("co2e_g", sa.Float(), nullable=True),
    )
    op.create_index("ix_run_project_id", "run", ["project_id"])
    op.create_index("ix_run_status", "run", ["status"])
    op.create_index("ix_run_started_at", "run", ["started_at"])
    op.create_table(
        "device",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "run_id", sa.String(32), sa.ForeignKey("run.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("component", sa.String(8), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("index", sa.Integer(), nullable=True),
        sa.Column("uuid", sa.String(96), nullable=True),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("provenance", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("power_limit_w", sa.Float(), nullable=True),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=True),
        sa.Column("energy_j", sa.Float(), nullable=False),
        sa.Column("failed_at_s", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.UniqueConstraint("run_id", "rank", "position"),
    )
    op.create_index("ix_device_run_id", "device", ["run_id"])
    op.create_table(
        "run_rank",
        sa.Column(
            "run_id", sa.String(32), sa.ForeignKey("run.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("rank", sa.Integer(), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("ended_at", TIME, nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("energy_gpu_j", sa.Float(), nullable=True),
        sa.Column("energy_cpu_j", sa.Float(), nullable=True),
        sa.Column("energy_ram_j", sa.Float(), nullable=True),
        sa.Column("steps", sa.BigInteger(), nullable=False),
        sa.Column("samples", sa.BigInteger(), nullable=True),
        sa.Column("tokens", sa.BigInteger(), nullable=True),
        sa.Column("flops", sa.Float(), nullable=True),
        sa.Column("warnings", JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_table(
        "sample",
        sa.Column("id", BIGID, primary_key=True),
        sa.Column(
            "run_id", sa.String(32), sa.ForeignKey("run.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "device_id",
            sa.Integer(),
            sa.ForeignKey("device.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("t", TIME, nullable=False),
        sa.Column("offset_s", sa.Float(), nullable=False),
        sa.Column("interval_s", sa.Float(), nullable=False),
        sa.Column("energy_j", sa.Float(), nullable=False),
        sa.Column("power_w", sa.Float(), nullable=False),
        sa.Column("utilization", sa.Float(), nullable=True),
    )
    op.create_index("ix_sample_run_time", "sample", ["run_id", "t"])
    op.create_table(
        "work",
        sa.Column("id", BIGID, primary_key=True),
        sa.Column(
            "run_id", sa.String(32), sa.ForeignKey("run.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("t", TIME, nullable=False),
        sa.Column("offset_s", sa.Float(), nullable=False),
        sa.Column("interval_s", sa.Float(), nullable=False),
        sa.Column("steps", sa.BigInteger(), nullable=False),
        sa.Column("samples", sa.BigInteger(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("flops", sa.Float(), nullable=False),
    )
    op.create_index("ix_work_run_time", "work", ["run_id", "t"])
    op.create_table(
        "run_window",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "run_id", sa.String(32), sa.ForeignKey("run.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("energy_j", sa.Float(), nullable=True),
        sa.Column("energy_gpu_j", sa.Float(), nullable=True),
        sa.Column("energy_cpu_j", sa.Float(), nullable=True),
        sa.Column("energy_ram_j", sa.Float(), nullable=True),
        sa.Column("steps", sa.BigInteger(), nullable=False),
        sa.Column("samples", sa.BigInteger(), nullable=True),
        sa.Column("tokens", sa.BigInteger(), nullable=True),
        sa.Column("flops", sa.Float(), nullable=True),
    )
    op.create_index("ix_run_window_run_id", "run_window", ["run_id"])


def downgrade() -> None:
    op.drop_table("run_window")
    op.drop_table("work")
    op.drop_table("sample")
    op.drop_table("run_rank")
    op.drop_table("device")
    op.drop_table("run")
    op.drop_table("project")
