"""SQLAlchemy 2.0 tables of the store.

A run owns its devices; a device owns its samples (one per device per second, each with the
energy of its interval, so a device's samples sum to its total). Work counters (steps,
samples, tokens, FLOPs) are stored as per-second deltas beside them. Totals live on the run
row and are kept current while the run goes, so lists never scan samples.

The schema is created by Alembic migrations (``migrations/``); ``Base.metadata`` is used
directly only by tests that compare it with the migrated schema.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

JsonType = JSON().with_variant(JSONB(), "postgresql")
# SQLite's INTEGER PRIMARY KEY autoincrements only as INTEGER, not BIGINT.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL keeps the zone; SQLite stores text without it. Values are converted to UTC
    on the way in and come back aware on the way out, so code never sees a naive time.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive times and store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: carbon stores timezone-aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC time."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of carbon's tables."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JsonType, list[Any]: JsonType}


DEFAULT_TEAM_ID = 1
"""The team of a store used without a server (made by the migration, named ``default``)."""

KEY_ROLES = ("ingest", "read", "admin")
"""What an API key may do: send runs, read them, or both plus manage the team."""


class Team(Base):
    """A team: the unit of tenancy. Its projects, runs and keys are invisible to others."""

    __tablename__ = "team"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ApiKey(Base):
    """An API key of a team: stored only as a SHA-256 hash, with its role and visible prefix."""

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    team: Mapped[Team] = relationship()


class Project(Base):
    """A named group of runs (``bert-ft``) of one team; names are unique within a team."""

    __tablename__ = "project"
    __table_args__ = (UniqueConstraint("team_id", "name", name="uq_project_team_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id"), default=DEFAULT_TEAM_ID)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    runs: Mapped[list[Run]] = relationship(back_populates="project")


class Run(Base):
    """One tracked training or inference run, with its totals kept current."""

    __tablename__ = "run"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"), index=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id"), index=True, default=DEFAULT_TEAM_ID)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), index=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    duration_s: Mapped[float | None] = mapped_column(Float)
    host: Mapped[str] = mapped_column(String(255))
    region: Mapped[str | None] = mapped_column(String(64))
    hardware: Mapped[dict[str, Any]]
    compression: Mapped[dict[str, Any]]
    tags: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]]
    warnings: Mapped[list[Any]]
    error: Mapped[str | None] = mapped_column(Text)
    sample_hz: Mapped[float] = mapped_column(Float)
    carbon_version: Mapped[str] = mapped_column(String(32))
    simulated: Mapped[bool] = mapped_column(Boolean, default=False)
    job_id: Mapped[str | None] = mapped_column(String(128))
    world_size: Mapped[int] = mapped_column(Integer, default=1)

    energy_j: Mapped[float | None] = mapped_column(Float)
    energy_gpu_j: Mapped[float | None] = mapped_column(Float)
    energy_cpu_j: Mapped[float | None] = mapped_column(Float)
    energy_ram_j: Mapped[float | None] = mapped_column(Float)
    steps: Mapped[int] = mapped_column(BigInteger, default=0)
    samples: Mapped[int | None] = mapped_column(BigInteger)
    tokens: Mapped[int | None] = mapped_column(BigInteger)
    flops: Mapped[float | None] = mapped_column(Float)
    flops_method: Mapped[str | None] = mapped_column(String(32))
    precision: Mapped[str | None] = mapped_column(String(16))

    intensity_g_per_kwh: Mapped[float | None] = mapped_column(Float)
    intensity_source: Mapped[str | None] = mapped_column(Text)
    intensity_zone: Mapped[str | None] = mapped_column(String(64))
    intensity_year: Mapped[int | None] = mapped_column(Integer)
    pue: Mapped[float] = mapped_column(Float)
    pue_source: Mapped[str | None] = mapped_column(Text)
    co2e_g: Mapped[float | None] = mapped_column(Float)
    intensity_factor_type: Mapped[str | None] = mapped_column(String(16))
    intensity_fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    intensity_fallback_reason: Mapped[str | None] = mapped_column(Text)
    co2e_method: Mapped[str | None] = mapped_column(String(16))
    co2e_market_g: Mapped[float | None] = mapped_column(Float)
    market_source: Mapped[str | None] = mapped_column(Text)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    project: Mapped[Project] = relationship(back_populates="runs")
    devices: Mapped[list[Device]] = relationship(
        back_populates="run", order_by="Device.position", cascade="all, delete-orphan"
    )
    windows: Mapped[list[Window]] = relationship(
        back_populates="run", order_by="Window.start_s", cascade="all, delete-orphan"
    )
    gaps: Mapped[list[RunGap]] = relationship(
        back_populates="run",
        order_by="(RunGap.rank, RunGap.start_s, RunGap.id)",
        cascade="all, delete-orphan",
        lazy="selectin",
    )


class Device(Base):
    """A device measured during one run, and how it was measured."""

    __tablename__ = "device"
    __table_args__ = (UniqueConstraint("run_id", "rank", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(Integer, default=0)
    position: Mapped[int] = mapped_column(Integer)
    component: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(255))
    index: Mapped[int | None] = mapped_column(Integer)
    uuid: Mapped[str | None] = mapped_column(String(96))
    method: Mapped[str] = mapped_column(String(32))
    provenance: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text)
    power_limit_w: Mapped[float | None] = mapped_column(Float)
    memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    energy_j: Mapped[float] = mapped_column(Float, default=0.0)
    failed_at_s: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)

    run: Mapped[Run] = relationship(back_populates="devices")


class RunRank(Base):
    """One process's share of a run: a single process is rank 0; a job has one per rank.

    Each rank measures its own devices and counts its own work; the run's totals are the
    sums over its ranks, so devices are never counted twice.
    """

    __tablename__ = "run_rank"

    run_id: Mapped[str] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    duration_s: Mapped[float | None] = mapped_column(Float)
    energy_gpu_j: Mapped[float | None] = mapped_column(Float)
    energy_cpu_j: Mapped[float | None] = mapped_column(Float)
    energy_ram_j: Mapped[float | None] = mapped_column(Float)
    steps: Mapped[int] = mapped_column(BigInteger, default=0)
    samples: Mapped[int | None] = mapped_column(BigInteger)
    tokens: Mapped[int | None] = mapped_column(BigInteger)
    flops: Mapped[float | None] = mapped_column(Float)
    warnings: Mapped[list[Any]]
    error: Mapped[str | None] = mapped_column(Text)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class BatchReceipt(Base):
    """That a rank's batch ``seq`` is stored, so a batch sent twice is stored once."""

    __tablename__ = "batch_receipt"

    run_id: Mapped[str] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Sample(Base):
    """Energy of one device over one interval (about a second).

    On PostgreSQL the table is partitioned by day on ``t`` (its key there is ``(id, t)``);
    old days are rolled up into :class:`SampleMinute` and dropped by the retention setting.
    ``run_id`` and ``device_id`` carry no foreign keys: the write path takes both from the
    rank's own rows, and keys would cost two index probes per row at ingest and lock
    ``run`` and ``device`` whenever a day partition is attached, against the batches
    being written.
    """

    __tablename__ = "sample"
    __table_args__ = (Index("ix_sample_run_time", "run_id", "t"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(32))
    device_id: Mapped[int] = mapped_column(Integer)
    t: Mapped[datetime] = mapped_column(UtcDateTime())
    offset_s: Mapped[float] = mapped_column(Float)
    interval_s: Mapped[float] = mapped_column(Float)
    energy_j: Mapped[float] = mapped_column(Float)
    power_w: Mapped[float] = mapped_column(Float)
    utilization: Mapped[float | None] = mapped_column(Float)


class SampleMinute(Base):
    """One device's samples over one UTC minute, kept current as batches are stored.

    Every sample counts in its minute (by the minute of its end, ``t``), so a device's
    minutes add up to its energy, a long run's power is drawn from 1/60 of its rows, and
    retention removes old samples without losing their energy. Minutes summed before
    revision 0004, by retention, have no power range or utilization.
    """

    __tablename__ = "sample_minute"
    __table_args__ = (Index("ix_sample_minute_run_time", "run_id", "minute"),)

    device_id: Mapped[int] = mapped_column(
        ForeignKey("device.id", ondelete="CASCADE"), primary_key=True
    )
    minute: Mapped[datetime] = mapped_column(UtcDateTime(), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"))
    energy_j: Mapped[float] = mapped_column(Float)
    interval_s: Mapped[float] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(Integer)
    power_min_w: Mapped[float | None] = mapped_column(Float)
    power_max_w: Mapped[float | None] = mapped_column(Float)
    utilization_sum: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    utilization_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Work(Base):
    """Work done over one interval: deltas of the run's step counters."""

    __tablename__ = "work"
    __table_args__ = (Index("ix_work_run_time", "run_id", "t"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"))
    t: Mapped[datetime] = mapped_column(UtcDateTime())
    offset_s: Mapped[float] = mapped_column(Float)
    interval_s: Mapped[float] = mapped_column(Float)
    steps: Mapped[int] = mapped_column(BigInteger)
    samples: Mapped[int] = mapped_column(BigInteger)
    tokens: Mapped[int] = mapped_column(BigInteger)
    flops: Mapped[float] = mapped_column(Float)


class Window(Base):
    """A named measurement window inside a run (``with run.measure("eval")``)."""

    __tablename__ = "run_window"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    start_s: Mapped[float] = mapped_column(Float)
    duration_s: Mapped[float] = mapped_column(Float)
    energy_j: Mapped[float | None] = mapped_column(Float)
    energy_gpu_j: Mapped[float | None] = mapped_column(Float)
    energy_cpu_j: Mapped[float | None] = mapped_column(Float)
    energy_ram_j: Mapped[float | None] = mapped_column(Float)
    steps: Mapped[int] = mapped_column(BigInteger)
    samples: Mapped[int | None] = mapped_column(BigInteger)
    tokens: Mapped[int | None] = mapped_column(BigInteger)
    flops: Mapped[float | None] = mapped_column(Float)

    run: Mapped[Run] = relationship(back_populates="windows")


class RunGap(Base):
    """A span in which a rank's device, or all its devices, has no per-second samples.

    A lost GPU, a failed power source, a read that failed (``position`` is the device's) or
    a full agent spool (``position`` is ``None``: every device). The run's totals still hold
    the energy measured; the gap says where the per-second record is missing and why.
    ``end_s`` is ``None`` for a gap still open at the run's end: it lasts until the end.
    Batches repeat a rank's gaps, so a gap is found again by its device and ``start_s``.
    """

    __tablename__ = "run_gap"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    position: Mapped[int | None] = mapped_column(Integer)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)

    run: Mapped[Run] = relationship(back_populates="gaps")


class RunEnergyHour(Base):
    """Energy a rank of a run drew in one UTC hour: the fact CO2e is computed from.

    Kept current at each batch, so CO2e for any hour-by-hour intensity series or any other
    region is recomputed from it without reading the samples.
    """

    __tablename__ = "run_energy_hour"

    run_id: Mapped[str] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    hour_start: Mapped[datetime] = mapped_column(UtcDateTime(), primary_key=True)
    energy_j: Mapped[float] = mapped_column(Float)


class IntensityHour(Base):
    """Grid carbon intensity of a zone over one UTC hour, imported from a user's file."""

    __tablename__ = "intensity_hour"
    __table_args__ = (UniqueConstraint("zone", "hour_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    zone: Mapped[str] = mapped_column(String(64))
    hour_start: Mapped[datetime] = mapped_column(UtcDateTime())
    intensity_g_per_kwh: Mapped[float] = mapped_column(Float)
    factor_type: Mapped[str | None] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(Text)


class MarketFactor(Base):
    """A contractual emission factor (supplier factor or renewable share) for market-based CO2e.

    Applies to the runs of a project, or of a zone, started within its validity; reported
    apart from the location-based figure, never netted into it.
    """

    __tablename__ = "market_factor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(
        ForeignKey("team.id", ondelete="CASCADE"), index=True, default=DEFAULT_TEAM_ID
    )
    project: Mapped[str | None] = mapped_column(String(200))
    zone: Mapped[str | None] = mapped_column(String(64))
    intensity_g_per_kwh: Mapped[float | None] = mapped_column(Float)
    renewable_share: Mapped[float | None] = mapped_column(Float)
    valid_from: Mapped[datetime | None] = mapped_column(UtcDateTime())
    valid_to: Mapped[datetime | None] = mapped_column(UtcDateTime())
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
