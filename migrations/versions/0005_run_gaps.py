"""Gaps of a run: spans in which a device, or every device, has no per-second samples.

A lost GPU, a power source that failed, a read that failed, or an agent spool that was full
leave spans without samples; from this revision each is stored with its reason, so a run's
record says where it is incomplete and why.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_gap",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "run_id", sa.String(32), sa.ForeignKey("run.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_index("ix_run_gap_run_id", "run_gap", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_run_gap_run_id", table_name="run_gap")
    op.drop_table("run_gap")
