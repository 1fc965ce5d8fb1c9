"""Team server: teams and API keys, batch receipts, heartbeats, partitioned samples, roll-ups.

Every project, run and contractual (market) factor belongs to a team; existing ones go to
the team ``default`` (id 1), which is also the team of a store used without a server.
Project names become unique per team. ``sample`` loses its foreign keys (the write path
guarantees them; per row they cost index probes, and they lock ``run`` and ``device`` when
a partition is attached). On PostgreSQL it becomes a table partitioned by range of ``t``
(one partition per day, made ahead by the server's maintenance, and a default partition for
anything else), keeping its rows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s", "fk": "fk_%(table_name)s_%(column_0_name)s"}
SAMPLE_COLUMNS = "id, run_id, device_id, t, offset_s, interval_s, energy_j, power_w, utilization"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    team = op.create_table(
        "team",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("created_at", TIME, nullable=False),
    )
    op.execute(team.insert().values(id=1, name="default", created_at=sa.func.now()))
    if postgres:
        op.execute("SELECT setval(pg_get_serial_sequence('team', 'id'), 1)")
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "team_id", sa.Integer(), sa.ForeignKey("team.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("revoked_at", TIME, nullable=True),
        sa.Column("last_used_at", TIME, nullable=True),
    )
    op.create_index("ix_api_key_team_id", "api_key", ["team_id"])

    if postgres:
        op.drop_constraint("project_name_key", "project", type_="unique")
    with op.batch_alter_table("project", naming_convention=NAMING) as batch:
        if not postgres:
            batch.drop_constraint("uq_project_name", type_="unique")
        batch.add_column(sa.Column("team_id", sa.Integer(), nullable=False, server_default="1"))
        batch.create_foreign_key("fk_project_team_id", "team", ["team_id"], ["id"])
        batch.create_unique_constraint("uq_project_team_name", ["team_id", "name"])
    with op.batch_alter_table("run") as batch:
        batch.add_column(sa.Column("team_id", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("last_seen_at", TIME, nullable=True))
        batch.create_foreign_key("fk_run_team_id", "team", ["team_id"], ["id"])
        batch.create_index("ix_run_team_id", ["team_id"])
    with op.batch_alter_table("project") as batch:
        batch.alter_column("team_id", server_default=None)
    with op.batch_alter_table("run") as batch:
        batch.alter_column("team_id", server_default=None)
    with op.batch_alter_table("run_rank") as batch:
        batch.add_column(sa.Column("last_seen_at", TIME, nullable=True))
    with op.batch_alter_table("market_factor") as batch:
        batch.add_column(sa.Column("team_id", sa.Integer(), nullable=False, server_default="1"))
        batch.create_foreign_key(
            "fk_market_factor_team_id", "team", ["team_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_market_factor_team_id", ["team_id"])
    with op.batch_alter_table("market_factor") as batch:
        batch.alter_column("team_id", server_default=None)

    op.create_table(
        "batch_receipt",
        sa.Column(
            "run_id", sa.String(32), sa.ForeignKey("run.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("rank", sa.Integer(), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("received_at", TIME, nullable=False),
    )
    op.create_table(
        "sample_minute",
        sa.Column(
            "device_id",
            sa.Integer(),
            sa.ForeignKey("device.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("minute", TIME, primary_key=True),
        sa.Column(
            "run_id", sa.String(32), sa.ForeignKey("run.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("energy_j", sa.Float(), nullable=False),
        sa.Column("interval_s", sa.Float(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
    )
    op.create_index("ix_sample_minute_run_time", "sample_minute", ["run_id", "minute"])
    if postgres:
        _partition_samples()
    else:
        _unlink_samples()


def _unlink_samples() -> None:
    """Rebuild SQLite's ``sample`` without foreign keys, keeping its rows and ids."""
    op.execute("ALTER TABLE sample RENAME TO sample_linked")
    op.execute("DROP INDEX ix_sample_run_time")
    op.create_table(
        "sample",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("t", TIME, nullable=False),
        sa.Column("offset_s", sa.Float(), nullable=False),
        sa.Column("interval_s", sa.Float(), nullable=False),
        sa.Column("energy_j", sa.Float(), nullable=False),
        sa.Column("power_w", sa.Float(), nullable=False),
        sa.Column("utilization", sa.Float(), nullable=True),
    )
    op.execute(f"INSERT INTO sample ({SAMPLE_COLUMNS}) SELECT {SAMPLE_COLUMNS} FROM sample_linked")
    op.execute("DROP TABLE sample_linked")
    op.create_index("ix_sample_run_time", "sample", ["run_id", "t"])


def _partition_samples() -> None:
    """Rebuild ``sample`` as a table partitioned by day on ``t``, keeping its rows and ids."""
    op.execute("ALTER SEQUENCE sample_id_seq OWNED BY NONE")
    op.execute("ALTER TABLE sample RENAME TO sample_unpartitioned")
    op.execute("ALTER INDEX ix_sample_run_time RENAME TO ix_sample_unpartitioned_run_time")
    op.execute(
        """
        CREATE TABLE sample (
            id BIGINT NOT NULL DEFAULT nextval('sample_id_seq'),
            run_id VARCHAR(32) NOT NULL,
            device_id INTEGER NOT NULL,
            t TIMESTAMP WITH TIME ZONE NOT NULL,
            offset_s DOUBLE PRECISION NOT NULL,
            interval_s DOUBLE PRECISION NOT NULL,
            energy_j DOUBLE PRECISION NOT NULL,
            power_w DOUBLE PRECISION NOT NULL,
            utilization DOUBLE PRECISION,
            PRIMARY KEY (id, t)
        ) PARTITION BY RANGE (t)
        """
    )
    op.execute("ALTER SEQUENCE sample_id_seq OWNED BY sample.id")
    op.execute("CREATE TABLE sample_default PARTITION OF sample DEFAULT")
    op.execute(
        f"INSERT INTO sample ({SAMPLE_COLUMNS}) SELECT {SAMPLE_COLUMNS} FROM sample_unpartitioned"
    )
    op.execute("DROP TABLE sample_unpartitioned")
    op.create_index("ix_sample_run_time", "sample", ["run_id", "t"])


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("ALTER SEQUENCE sample_id_seq OWNED BY NONE")
        op.execute("ALTER TABLE sample RENAME TO sample_partitioned")
        op.execute("ALTER INDEX ix_sample_run_time RENAME TO ix_sample_partitioned_run_time")
        op.execute(
            "CREATE TABLE sample (LIKE sample_partitioned INCLUDING DEFAULTS, PRIMARY KEY (id))"
        )
        op.execute(
            "ALTER TABLE sample ADD FOREIGN KEY (run_id) REFERENCES run (id) ON DELETE CASCADE"
        )
        op.execute(
            "ALTER TABLE sample ADD FOREIGN KEY (device_id) REFERENCES device (id) "
            "ON DELETE CASCADE"
        )
        op.execute(
            f"INSERT INTO sample ({SAMPLE_COLUMNS}) SELECT {SAMPLE_COLUMNS} FROM sample_partitioned"
        )
        op.execute("DROP TABLE sample_partitioned CASCADE")
        op.execute("ALTER SEQUENCE sample_id_seq OWNED BY sample.id")
        op.create_index("ix_sample_run_time", "sample", ["run_id", "t"])
    else:
        op.execute("ALTER TABLE sample RENAME TO sample_unlinked")
        op.execute("DROP INDEX ix_sample_run_time")
        op.create_table(
            "sample",
            sa.Column("id", sa.Integer(), primary_key=True),
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
        op.execute(
            f"INSERT INTO sample ({SAMPLE_COLUMNS}) SELECT {SAMPLE_COLUMNS} FROM sample_unlinked"
        )
        op.execute("DROP TABLE sample_unlinked")
        op.create_index("ix_sample_run_time", "sample", ["run_id", "t"])
    op.drop_index("ix_sample_minute_run_time", table_name="sample_minute")
    op.drop_table("sample_minute")
    op.drop_table("batch_receipt")
    with op.batch_alter_table("market_factor") as batch:
        batch.drop_index("ix_market_factor_team_id")
        batch.drop_constraint("fk_market_factor_team_id", type_="foreignkey")
        batch.drop_column("team_id")
    with op.batch_alter_table("run_rank") as batch:
        batch.drop_column("last_seen_at")
    with op.batch_alter_table("run") as batch:
        batch.drop_index("ix_run_team_id")
        batch.drop_constraint("fk_run_team_id", type_="foreignkey")
        batch.drop_column("last_seen_at")
        batch.drop_column("team_id")
    with op.batch_alter_table("project") as batch:
        batch.drop_constraint("uq_project_team_name", type_="unique")
        batch.drop_constraint("fk_project_team_id", type_="foreignkey")
        batch.drop_column("team_id")
        batch.create_unique_constraint("project_name_key", ["name"])
    op.drop_index("ix_api_key_team_id", table_name="api_key")
    op.drop_table("api_key")
    op.drop_table("team")
