"""The local sink: writes a run's records into a SQL store.

It is the SQL end of the data flow (:mod:`carbon.wire` records in, rows out). A run is
written by one process, or by every rank of a distributed job: each rank has its own
``run_rank`` row and its own devices, and after every batch the run's totals are set to the
sums over its ranks, so lists never scan samples and no device is counted twice. Each batch
is one transaction.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Connection, Insert, Table, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from carbon import wire
from carbon.sources.base import describe_hardware
from carbon.store import Store
from carbon.store.models import Device, Project, Run, RunRank, Sample, Window, Work
from carbon.store.pricing import Pricing, add_energy_hours, energy_hour_rows

FINAL_ORDER = ("failed", "interrupted", "completed")

_RUN = cast(Table, Run.__table__)
_DEVICE = cast(Table, Device.__table__)
_RANK = cast(Table, RunRank.__table__)
_INSERT_SAMPLE = insert(cast(Table, Sample.__table__))
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
)
_RANK_TOTALS = (
    update(_RANK)
    .where(_RANK.c.run_id == bindparam("b_run_id"), _RANK.c.rank == bindparam("b_rank"))
    .values({column: bindparam(f"b_{column}") for column in _RANK_COLUMNS})
)
"""Statements of the per-second write, built once: the sampler thread runs them each batch."""
"""How the ranks' endings combine: any failed rank fails the run, then interrupted."""


class LocalSink:
    """Writes runs to a :class:`~carbon.store.Store`.

    The sink remembers, per run it started, the start record and the database ids of the
    devices it inserted for its rank.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._runs: dict[str, _RunState] = {}

    def start_run(self, start: wire.RunStart) -> None:
        """Insert the run (unless another rank did), this rank, and this rank's devices."""
        intensity = start.intensity
        with self.store.session() as session:
            session.execute(
                self._insert_ignore(session, Project).values(
                    name=start.project, created_at=start.started_at
                )
            )
            project_id = session.scalar(select(Project.id).where(Project.name == start.project))
            session.execute(
                self._insert_ignore(session, Run).values(
                    id=start.id,
                    project_id=project_id,
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
                )
            )
            session.add(
                RunRank(
                    run_id=start.id,
                    rank=start.rank,
                    host=start.host,
                    status="running",
                    started_at=start.started_at,
                    steps=0,
                    warnings=list(start.warnings),
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
                update(Run)
                .where(Run.id == start.id)
                .values(hardware=describe_hardware(every_device))
            )
            device_ids = [device.id for device in devices]
            pricing = Pricing(session.connection(), start)
            if pricing.market is not None:
                session.execute(
                    update(Run)
                    .where(Run.id == start.id)
                    .values(market_source=pricing.market_source)
                )
        self._runs[start.id] = _RunState(start, device_ids, pricing)

    def write(self, batch: wire.Batch) -> None:
        """Store one batch and bring the rank's and the run's totals up to date."""
        state = self._runs[batch.run_id]
        started = state.start.started_at
        sample_rows = [
            {
                "run_id": batch.run_id,
                "device_id": state.device_ids[position],
                "t": started + timedelta(seconds=offset_s),
                "offset_s": offset_s,
                "interval_s": interval_s,
                "energy_j": energy_j,
                "power_w": energy_j / interval_s,
                "utilization": utilization,
            }
            for position, offset_s, interval_s, energy_j, utilization in zip(
                batch.sample_device,
                batch.sample_offset_s,
                batch.sample_interval_s,
                batch.sample_energy_j,
                batch.sample_utilization,
                strict=True,
            )
        ]
        work_rows = [
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
        ]
        totals = batch.totals
        by_component = state.by_component(totals.device_energy_j)
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
        warnings = list(dict.fromkeys([*state.start.warnings, *totals.warnings]))
        hour_rows = energy_hour_rows(batch.run_id, batch.rank, started, batch)
        with self.store.transaction() as connection:
            if sample_rows:
                connection.execute(_INSERT_SAMPLE, sample_rows)
            add_energy_hours(connection, hour_rows)
            if work_rows:
                connection.execute(_INSERT_WORK, work_rows)
            if batch.windows:
                connection.execute(
                    _INSERT_WINDOW,
                    [{"run_id": batch.run_id, **w.model_dump()} for w in batch.windows],
                )
            connection.execute(
                _DEVICE_ENERGY,
                [
                    {"b_id": device_id, "b_energy_j": energy_j}
                    for device_id, energy_j in zip(
                        state.device_ids, totals.device_energy_j, strict=True
                    )
                ],
            )
            for position, message in batch.failed_devices.items():
                connection.execute(
                    _DEVICE_FAILED,
                    {
                        "b_id": state.device_ids[position],
                        "b_error": message,
                        "b_failed_at_s": batch.failed_at_s.get(position),
                    },
                )
            connection.execute(
                _RANK_TOTALS,
                {"b_run_id": batch.run_id, "b_rank": batch.rank, "b_warnings": warnings}
                | {f"b_{key}": value for key, value in rank_values.items()},
            )
            run_values: dict[str, Any] = {}
            if batch.rank == 0 or state.start.world_size == 1:
                run_values.update(
                    metrics=dict(totals.metrics),
                    flops_method=totals.flops_method,
                    precision=totals.precision,
                )
            if state.start.world_size == 1:
                # One process: the run's totals are this rank's, no need to sum.
                run_values.update(rank_values, warnings=warnings)
                self._set_totals(connection, state, run_values)
            else:
                self._refresh_totals(connection, state, run_values)

    def finish_run(self, end: wire.RunEnd) -> None:
        """Record how this rank ended, and the run's status once every rank has ended."""
        self._runs.pop(end.run_id, None)
        with self.store.session() as session:
            session.execute(
                update(RunRank)
                .where(RunRank.run_id == end.run_id, RunRank.rank == end.rank)
                .values(status=end.status, ended_at=end.ended_at, error=end.error)
            )
            ranks = session.execute(
                select(RunRank.status, RunRank.ended_at, RunRank.error, RunRank.rank)
                .where(RunRank.run_id == end.run_id)
                .order_by(RunRank.rank)
            ).all()
            if any(status == "running" for status, *_ in ranks):
                return
            statuses = {status for status, *_ in ranks}
            status = next(s for s in FINAL_ORDER if s in statuses)
            errors = [
                error if len(ranks) == 1 else f"rank {rank}: {error}"
                for _, _, error, rank in ranks
                if error
            ]
            session.execute(
                update(Run)
                .where(Run.id == end.run_id)
                .values(
                    status=status,
                    ended_at=max(ended for _, ended, *_ in ranks if ended is not None),
                    error="; ".join(errors) or None,
                )
            )

    @staticmethod
    def _insert_ignore(session: Session, table: type[Project] | type[Run]) -> Insert:
        """An INSERT that does nothing when the row exists (another rank made it)."""
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()
        if dialect == "sqlite":
            return sqlite.insert(table).on_conflict_do_nothing()
        return insert(table).prefix_with("IGNORE")

    @staticmethod
    def _refresh_totals(session: Connection, state: _RunState, values: dict[str, Any]) -> None:
        """Set the run's totals to the sums over its ranks, and its CO2e from them."""
        run_id = state.start.id
        sums = session.execute(
            select(
                func.max(RunRank.duration_s),
                func.sum(RunRank.energy_gpu_j),
                func.sum(RunRank.energy_cpu_j),
                func.sum(RunRank.energy_ram_j),
                func.sum(RunRank.steps),
                func.sum(RunRank.samples),
                func.sum(RunRank.tokens),
                func.sum(RunRank.flops),
            ).where(RunRank.run_id == run_id)
        ).one()
        duration_s, gpu_j, cpu_j, ram_j, steps, samples, tokens, flops = sums
        warnings = [
            warning
            for (rank_warnings,) in session.execute(
                select(RunRank.warnings).where(RunRank.run_id == run_id).order_by(RunRank.rank)
            )
            for warning in rank_warnings
        ]
        values.update(
            duration_s=duration_s,
            energy_gpu_j=gpu_j,
            energy_cpu_j=cpu_j,
            energy_ram_j=ram_j,
            steps=int(steps or 0),
            samples=None if samples is None else int(samples),
            tokens=None if tokens is None else int(tokens),
            flops=flops,
            warnings=list(dict.fromkeys(warnings)),
        )
        LocalSink._set_totals(session, state, values)

    @staticmethod
    def _set_totals(session: Connection, state: _RunState, values: dict[str, Any]) -> None:
        """Write the run's totals, with its energy and CO2e derived from the components."""
        known = [
            float(values[key])
            for key in ("energy_gpu_j", "energy_cpu_j", "energy_ram_j")
            if values[key] is not None
        ]
        energy_j = math.fsum(known) if known else None
        session.execute(
            update(_RUN).where(_RUN.c.id == state.start.id),
            {"energy_j": energy_j, **state.pricing.figures(session, energy_j), **values},
        )


class _RunState:
    """What the sink keeps about the run (and rank) it is writing."""

    def __init__(self, start: wire.RunStart, device_ids: list[int], pricing: Pricing) -> None:
        self.start = start
        self.device_ids = device_ids
        self.pricing = pricing
        self.components = [spec.component for spec in start.devices]

    def by_component(self, device_energy_j: list[float]) -> dict[str, float | None]:
        """This rank's energy per component; ``None`` for a component it does not measure."""
        totals: dict[str, float | None] = {"gpu": None, "cpu": None, "ram": None}
        for component, energy_j in zip(self.components, device_energy_j, strict=True):
            totals[component] = (totals[component] or 0.0) + energy_j
        return totals
