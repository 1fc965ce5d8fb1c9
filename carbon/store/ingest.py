"""Writing a run's records into the store: the one write path of the local sink and the server.

Every function takes the database connection it works in and the team the records belong
to, and keeps nothing between calls except a :class:`RunContext` the caller may cache (a
run's start facts never change), so several server processes can write one run's ranks.

- :func:`start_run` inserts the run (unless another rank did), the rank and its devices; a
  repeated start changes nothing.
- :func:`write_batch` stores a batch once: a receipt per ``(run, rank, seq)`` makes a
  retried batch a no-op. Samples go in bulk (``COPY`` on PostgreSQL); the rank's totals and
  the run's (summed over ranks, with CO2e) are set in the same transaction, so lists never
  scan samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Insert, Table, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from carbon import wire
from carbon.errors import RunConflict, RunNotFound
from carbon.sources.base import describe_hardware
from carbon.store.bulk import SampleColumns, insert_samples
from carbon.store.models import (
    BatchReceipt,
    Device,
    Project,
    Run,
    RunRank,
    Window,
    Work,
)
from carbon.store.pricing import PricedRun, Pricing, add_energy_hours, energy_hour_rows

_RUN = cast(Table, Run.__table__)
_DEVICE = cast(Table, Device.__table__)
_RANK = cast(Table, RunRank.__table__)
_RECEIPT = cast(Table, BatchReceipt.__table__)
_INSERT_WORK = insert(cast(Table, Work.__table__))
_INSERT_WINDOW = insert(cast(Table, Window.__table__))
_DEVICE_ENERGY = (
    update(_DEVICE)
    .where(_DEVICE.c.id == bindparam("b_id"))
    .values(energy_j=bindparam("b_energy_j"))
)
_DEVICE_FAILED = (
    update(_DEVICE)
    .where(_DEVICE.c.id == bindparam("b_id"))
    .values(error=bindparam("b_error"), failed_at_s=bindparam("b_failed_at_s"))
)
_RANK_COLUMNS = (
    "duration_s",
    "energy_gpu_j",
    "energy_cpu_j",
    "energy_ram_j",
    "steps",
    "samples",
    "tokens",
    "flops",
    "warnings",
    "last_seen_at",
)
_RANK_TOTALS = (
    update(_RANK)
    .where(_RANK.c.run_id == bindparam("b_run_id"), _RANK.c.rank == bindparam("b_rank"))
    .values({column: bindparam(f"b_{column}") for column in _RANK_COLUMNS})
)
"""Statements of the per-second write, built once: they run at every batch."""


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


@dataclass
class BatchResult:
    """What storing a batch did, for the server's counters.

    Attributes:
        stored: False when the batch had been stored before (a retry): nothing changed.
        samples: Samples stored.
        energy_j_by_device: Energy of the batch's samples per ``(component, device name)``.
        co2e_g_added: How much the run's location-based CO2e grew; ``None`` when unknown.
    """

    stored: bool
    samples: int = 0
    energy_j_by_device: dict[tuple[str, str], float] = field(default_factory=dict)
    co2e_g_added: float | None = None


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


def write_batch(connection: Connection, context: RunContext, batch: wire.Batch) -> BatchResult:
    """Store one batch, once, and bring the rank's and the run's totals up to date.

    Raises:
        ValueError: The batch names a device position the rank does not have.
    """
    positions = len(context.device_ids)
    if any(not 0 <= p < positions for p in (*batch.sample_device, *batch.failed_devices)):
        raise ValueError(f"sample_device: the rank has devices 0..{positions - 1} only")
    if len(batch.totals.device_energy_j) != positions:
        raise ValueError(
            f"totals.device_energy_j has {len(batch.totals.device_energy_j)} values for "
            f"{positions} devices"
        )
    now = datetime.now(UTC)
    receipt = (
        _insert_ignore_core(connection, _RECEIPT)
        .values(run_id=batch.run_id, rank=batch.rank, seq=batch.seq, received_at=now)
        .returning(_RECEIPT.c.seq)
    )
    if connection.execute(receipt).first() is None:
        return BatchResult(stored=False)
    started = context.started_at
    device_ids = context.device_ids
    samples = SampleColumns(
        run_id=batch.run_id,
        started_at=started,
        device_id=[device_ids[position] for position in batch.sample_device],
        offset_s=batch.sample_offset_s,
        interval_s=batch.sample_interval_s,
        energy_j=batch.sample_energy_j,
        utilization=batch.sample_utilization,
    )
    energy_by_device: dict[tuple[str, str], float] = {}
    for position, energy_j in zip(batch.sample_device, batch.sample_energy_j, strict=True):
        key = (context.components[position], context.device_names[position])
        energy_by_device[key] = energy_by_device.get(key, 0.0) + energy_j
    insert_samples(connection, samples)
    add_energy_hours(connection, energy_hour_rows(batch.run_id, batch.rank, started, batch))
    if batch.work_offset_s:
        connection.execute(
            _INSERT_WORK,
            [
                {
                    "run_id": batch.run_id,
                    "t": started + timedelta(seconds=offset_s),
                    "offset_s": offset_s,
                    "interval_s": interval_s,
                    "steps": steps,
                    "samples": samples,
                    "tokens": tokens,
                    "flops": flops,
                }
                for offset_s, interval_s, steps, samples, tokens, flops in zip(
                    batch.work_offset_s,
                    batch.work_interval_s,
                    batch.work_steps,
                    batch.work_samples,
                    batch.work_tokens,
                    batch.work_flops,
                    strict=True,
                )
            ],
        )
    if batch.windows:
        connection.execute(
            _INSERT_WINDOW, [{"run_id": batch.run_id, **w.model_dump()} for w in batch.windows]
        )
    totals = batch.totals
    connection.execute(
        _DEVICE_ENERGY,
        [
            {"b_id": device_id, "b_energy_j": energy_j}
            for device_id, energy_j in zip(context.device_ids, totals.device_energy_j, strict=True)
        ],
    )
    for position, message in batch.failed_devices.items():
        connection.execute(
            _DEVICE_FAILED,
            {
                "b_id": context.device_ids[position],
                "b_error": message,
                "b_failed_at_s": batch.failed_at_s.get(position),
            },
        )
    by_component = context.by_component(totals.device_energy_j)
    rank_values: dict[str, Any] = {
        "duration_s": totals.duration_s,
        "energy_gpu_j": by_component["gpu"],
        "energy_cpu_j": by_component["cpu"],
        "energy_ram_j": by_component["ram"],
        "steps": totals.steps,
        "samples": totals.samples,
        "tokens": totals.tokens,
        "flops": totals.flops,
    }
    warnings = list(dict.fromkeys([*context.start_warnings, *totals.warnings]))
    connection.execute(
        _RANK_TOTALS,
        {"b_run_id": batch.run_id, "b_rank": batch.rank, "b_warnings": warnings}
        | {"b_last_seen_at": now}
        | {f"b_{key}": value for key, value in rank_values.items()},
    )
    run_values: dict[str, Any] = {"last_seen_at": now}
    if batch.rank == 0 or context.world_size == 1:
        run_values.update(
            metrics=dict(totals.metrics),
            flops_method=totals.flops_method,
            precision=totals.precision,
        )
    # Lock the run's row: ranks written at once by several processes add up in turn.
    previous_g = connection.execute(
        select(_RUN.c.co2e_g).where(_RUN.c.id == batch.run_id).with_for_update()
    ).scalar()
    if context.world_size == 1:
        # One process: the run's totals are this rank's, no need to sum.
        run_values.update(rank_values, warnings=warnings)
    else:
        run_values.update(_sums_over_ranks(connection, batch.run_id))
    co2e_g = _set_totals(connection, context, run_values)
    added = None if co2e_g is None else co2e_g - (previous_g or 0.0)
    return BatchResult(True, len(samples), energy_by_device, added)


def _sums_over_ranks(connection: Connection, run_id: str) -> dict[str, Any]:
    """The run's totals as the sums over its ranks."""
    sums = connection.execute(
        select(
            func.max(_RANK.c.duration_s),
            func.sum(_RANK.c.energy_gpu_j),
            func.sum(_RANK.c.energy_cpu_j),
            func.sum(_RANK.c.energy_ram_j),
            func.sum(_RANK.c.steps),
            func.sum(_RANK.c.samples),
            func.sum(_RANK.c.tokens),
            func.sum(_RANK.c.flops),
        ).where(_RANK.c.run_id == run_id)
    ).one()
    duration_s, gpu_j, cpu_j, ram_j, steps, samples, tokens, flops = sums
    warnings = [
        warning
        for (rank_warnings,) in connection.execute(
            select(_RANK.c.warnings).where(_RANK.c.run_id == run_id).order_by(_RANK.c.rank)
        )
        for warning in rank_warnings
    ]
    return {
        "duration_s": duration_s,
        "energy_gpu_j": gpu_j,
        "energy_cpu_j": cpu_j,
        "energy_ram_j": ram_j,
        "steps": int(steps or 0),
        "samples": None if samples is None else int(samples),
        "tokens": None if tokens is None else int(tokens),
        "flops": flops,
        "warnings": list(dict.fromkeys(warnings)),
    }


def _set_totals(
    connection: Connection, context: RunContext, values: dict[str, Any]
) -> float | None:
    """Write the run's totals, with its energy and CO2e derived from the components."""
    known = [
        float(values[key])
        for key in ("energy_gpu_j", "energy_cpu_j", "energy_ram_j")
        if values[key] is not None
    ]
    energy_j = math.fsum(known) if known else None
    figures = context.pricing.figures(connection, energy_j)
    connection.execute(
        update(_RUN).where(_RUN.c.id == context.run_id),
        {"energy_j": energy_j, **figures, **values},
    )
    co2e_g: float | None = figures.get("co2e_g")
    return co2e_g


def _insert_ignore(session: Session, table: type[Project] | type[Run]) -> Insert:
    """An INSERT that does nothing when the row exists (another rank made it)."""
    return _insert_ignore_core(session.connection(), cast(Table, table.__table__))


def _insert_ignore_core(connection: Connection, table: Table) -> Insert:
    """An INSERT of a Core table that does nothing when the row exists."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    return insert(table).prefix_with("IGNORE")
