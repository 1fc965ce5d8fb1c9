"""What writing a rank's batches needs: made when the rank starts, read back by any process.

:func:`start_run` inserts the run (unless another rank did), the rank and its devices, and
returns the :class:`RunContext` its batches are written with; a repeated start changes
nothing. :func:`load_context` reads the same facts back for a process that did not see the
start (another server replica, a restarted agent), so no process needs to remember a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Connection, Insert, Table, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from carbon import wire
from carbon.errors import RunConflict, RunNotFound
from carbon.sources.base import describe_hardware
from carbon.store.models import Device, Project, Run, RunRank
from carbon.store.pricing import PricedRun, Pricing

_RUN = cast(Table, Run.__table__)
_DEVICE = cast(Table, Device.__table__)
_RANK = cast(Table, RunRank.__table__)


@dataclass
class RunContext:
    """What writing a rank's batches needs to know of its run; fixed once the rank started.

    Attributes:
        run_id: The run.
        rank: The rank whose batches these are.
        team_id: The team the run belongs to.
        project: The run's project name (for metrics).
        started_at: The run's start; sample offsets count from it.
        world_size: Ranks in the run (1 for a single process).
        device_ids: Database id of each of the rank's devices, by position.
        components: ``gpu``/``cpu``/``ram`` of each device, by position.
        device_names: Model name of each device, by position (for metrics).
        start_warnings: The rank's warnings from its start, kept ahead of later ones.
        pricing: How the run's energy becomes CO2e.
    """

    run_id: str
    rank: int
    team_id: int
    project: str
    started_at: datetime
    world_size: int
    device_ids: list[int]
    components: list[str]
    device_names: list[str]
    start_warnings: list[str]
    pricing: Pricing

    def by_component(self, device_energy_j: list[float]) -> dict[str, float | None]:
        """This rank's energy per component; ``None`` for a component it does not measure."""
        totals: dict[str, float | None] = {"gpu": None, "cpu": None, "ram": None}
        for component, energy_j in zip(self.components, device_energy_j, strict=True):
            totals[component] = (totals[component] or 0.0) + energy_j
        return totals


def start_run(session: Session, start: wire.RunStart, *, team_id: int) -> RunContext | None:
    """Insert the run (unless another rank did), this rank and this rank's devices.

    Returns:
        The context to write this rank's batches with, or ``None`` when this rank had
        already started (a repeated start record changes nothing).

    Raises:
        RunConflict: The run id belongs to another team, or to a run of another project.
    """
    intensity = start.intensity
    session.execute(
        _insert_ignore(session, Project).values(
            team_id=team_id, name=start.project, created_at=start.started_at
        )
    )
    project_id = session.scalar(
        select(Project.id).where(Project.team_id == team_id, Project.name == start.project)
    )
    session.execute(
        _insert_ignore(session, Run).values(
            id=start.id,
            project_id=project_id,
            team_id=team_id,
            name=start.name,
            kind=start.kind,
            status="running",
            started_at=start.started_at,
            host=start.host,
            region=start.region,
            hardware={},
            compression=start.compression,
            tags=start.tags,
            metrics={},
            warnings=list(start.warnings),
            sample_hz=start.sample_hz,
            carbon_version=start.carbon_version,
            simulated=start.simulated,
            job_id=start.job_id,
            world_size=start.world_size,
            steps=0,
            pue=start.pue,
            intensity_g_per_kwh=intensity.intensity_g_per_kwh if intensity else None,
            intensity_source=intensity.source if intensity else None,
            intensity_zone=intensity.zone if intensity else None,
            intensity_year=intensity.year if intensity else None,
            intensity_factor_type=intensity.factor_type if intensity else None,
            intensity_fallback=intensity.fallback if intensity else False,
            intensity_fallback_reason=intensity.fallback_reason if intensity else None,
            pue_source=start.pue_source,
            last_seen_at=datetime.now(UTC),
        )
    )
    owner = session.execute(select(Run.team_id, Run.project_id).where(Run.id == start.id)).one()
    if tuple(owner) != (team_id, project_id):
        raise RunConflict(f"run id {start.id} is already used by another run")
    if session.get(RunRank, (start.id, start.rank)) is not None:
        return None
    session.add(
        RunRank(
            run_id=start.id,
            rank=start.rank,
            host=start.host,
            status="running",
            started_at=start.started_at,
            steps=0,
            warnings=list(start.warnings),
            last_seen_at=datetime.now(UTC),
        )
    )
    devices = [
        Device(run_id=start.id, rank=start.rank, energy_j=0.0, **spec.model_dump())
        for spec in start.devices
    ]
    session.add_all(devices)
    session.flush()
    every_device = session.scalars(select(Device).where(Device.run_id == start.id))
    session.execute(
        update(Run).where(Run.id == start.id).values(hardware=describe_hardware(every_device))
    )
    pricing = Pricing(session.connection(), PricedRun.of(start, team_id))
    if pricing.market is not None:
        session.execute(
            update(Run).where(Run.id == start.id).values(market_source=pricing.market_source)
        )
    return RunContext(
        run_id=start.id,
        rank=start.rank,
        team_id=team_id,
        project=start.project,
        started_at=start.started_at,
        world_size=start.world_size,
        device_ids=[device.id for device in devices],
        components=[spec.component for spec in start.devices],
        device_names=[spec.name for spec in start.devices],
        start_warnings=list(start.warnings),
        pricing=pricing,
    )


def load_context(connection: Connection, run_id: str, rank: int, *, team_id: int) -> RunContext:
    """Read back what writing a rank's batches needs, for a process that did not start it.

    Raises:
        RunNotFound: No such run in this team, or the rank never started.
    """
    run = connection.execute(
        select(
            _RUN.c.team_id,
            _RUN.c.started_at,
            _RUN.c.world_size,
            _RUN.c.pue,
            _RUN.c.intensity_g_per_kwh,
            _RUN.c.intensity_source,
            _RUN.c.intensity_zone,
            _RUN.c.intensity_year,
            _RUN.c.intensity_factor_type,
            _RUN.c.intensity_fallback,
            _RUN.c.intensity_fallback_reason,
            Project.name,
        )
        .join(Project, Project.id == _RUN.c.project_id)
        .where(_RUN.c.id == run_id)
    ).first()
    if run is None or run.team_id != team_id:
        raise RunNotFound(f"no run with id {run_id!r}")
    rank_warnings = connection.execute(
        select(_RANK.c.warnings).where(_RANK.c.run_id == run_id, _RANK.c.rank == rank)
    ).first()
    if rank_warnings is None:
        raise RunNotFound(f"run {run_id} has no rank {rank}: its start record was not received")
    devices = connection.execute(
        select(_DEVICE.c.id, _DEVICE.c.component, _DEVICE.c.name)
        .where(_DEVICE.c.run_id == run_id, _DEVICE.c.rank == rank)
        .order_by(_DEVICE.c.position)
    ).all()
    intensity = None
    if run.intensity_g_per_kwh is not None:
        intensity = wire.IntensityInfo(
            intensity_g_per_kwh=run.intensity_g_per_kwh,
            source=run.intensity_source or "",
            zone=run.intensity_zone or "",
            year=run.intensity_year,
            factor_type=run.intensity_factor_type,
            fallback=run.intensity_fallback,
            fallback_reason=run.intensity_fallback_reason,
        )
    priced = PricedRun(run_id, team_id, run.name, run.started_at, run.pue, intensity)
    return RunContext(
        run_id=run_id,
        rank=rank,
        team_id=team_id,
        project=run.name,
        started_at=run.started_at,
        world_size=run.world_size,
        device_ids=[device.id for device in devices],
        components=[device.component for device in devices],
        device_names=[device.name for device in devices],
        start_warnings=list(rank_warnings.warnings),
        pricing=Pricing(connection, priced),
    )


def _insert_ignore(session: Session, table: type[Project] | type[Run]) -> Insert:
    """An INSERT that does nothing when the row exists (another rank made it)."""
    return insert_ignore(session.connection(), cast(Table, table.__table__))


def insert_ignore(connection: Connection, table: Table) -> Insert:
    """An INSERT of a Core table that does nothing when the row exists."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    return insert(table).prefix_with("IGNORE")
