"""The local sink: writes a run's records into a SQL store.

It is the SQL end of the data flow (:mod:`carbon.wire` records in, rows out). Each batch is
one transaction: its samples and work rows are inserted in bulk and the run's totals are set
from the batch's cumulative figures, so a list of runs never has to scan samples.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from carbon import wire
from carbon.accounting.co2e import co2e_g
from carbon.store import Store
from carbon.store.models import Device, Project, Run, Sample, Window, Work


class LocalSink:
    """Writes runs to a :class:`~carbon.store.Store`.

    The sink remembers, per run it started, the start time, the database ids of the devices
    and the figures needed to price the run's energy.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._runs: dict[str, _RunState] = {}

    def start_run(self, start: wire.RunStart) -> None:
        """Insert the run, its project (if new) and its devices."""
        with self.store.session() as session:
            project_id = _project_id(session, start.project, start.started_at)
            run = Run(
                id=start.id,
                project_id=project_id,
                name=start.name,
                kind=start.kind,
                status="running",
                started_at=start.started_at,
                host=start.host,
                region=start.region,
                hardware=start.hardware,
                compression=start.compression,
                tags=start.tags,
                metrics={},
                warnings=list(start.warnings),
                sample_hz=start.sample_hz,
                carbon_version=start.carbon_version,
                simulated=start.simulated,
                steps=0,
                pue=start.pue,
                intensity_g_per_kwh=start.intensity.intensity_g_per_kwh
                if start.intensity
                else None,
                intensity_source=start.intensity.source if start.intensity else None,
                intensity_zone=start.intensity.zone if start.intensity else None,
                intensity_year=start.intensity.year if start.intensity else None,
            )
            run.devices = [Device(**spec.model_dump(), energy_j=0.0) for spec in start.devices]
            session.add(run)
            session.flush()
            device_ids = [device.id for device in run.devices]
        self._runs[start.id] = _RunState(start, device_ids)

    def write(self, batch: wire.Batch) -> None:
        """Store one batch and bring the run's totals up to date, in one transaction."""
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
        with self.store.session() as session:
            if sample_rows:
                session.execute(insert(Sample), sample_rows)
            if work_rows:
                session.execute(insert(Work), work_rows)
            if batch.windows:
                session.execute(
                    insert(Window),
                    [{"run_id": batch.run_id, **w.model_dump()} for w in batch.windows],
                )
            self._update_devices(session, state, batch)
            session.execute(
                update(Run).where(Run.id == batch.run_id).values(**state.totals(batch.totals))
            )

    def finish_run(self, end: wire.RunEnd) -> None:
        """Record how the run ended."""
        with self.store.session() as session:
            session.execute(
                update(Run)
                .where(Run.id == end.run_id)
                .values(status=end.status, ended_at=end.ended_at, error=end.error)
            )
        self._runs.pop(end.run_id, None)

    @staticmethod
    def _update_devices(session: Session, state: _RunState, batch: wire.Batch) -> None:
        for position, energy_j in enumerate(batch.totals.device_energy_j):
            values: dict[str, Any] = {"energy_j": energy_j}
            if position in batch.failed_devices:
                values["error"] = batch.failed_devices[position]
                values["failed_at_s"] = batch.failed_at_s.get(position)
            session.execute(
                update(Device).where(Device.id == state.device_ids[position]).values(**values)
            )


class _RunState:
    """What the sink keeps about a run it is writing."""

    def __init__(self, start: wire.RunStart, device_ids: list[int]) -> None:
        self.start = start
        self.device_ids = device_ids
        self.components = [spec.component for spec in start.devices]

    def totals(self, totals: wire.Totals) -> dict[str, Any]:
        """Column values of the run row for the cumulative figures of a batch."""
        by_component: dict[str, float | None] = {"gpu": None, "cpu": None, "ram": None}
        for component, device_j in zip(self.components, totals.device_energy_j, strict=True):
            by_component[component] = (by_component[component] or 0.0) + device_j
        known = [value for value in by_component.values() if value is not None]
        energy_j = math.fsum(known) if known else None
        intensity = self.start.intensity
        return {
            "duration_s": totals.duration_s,
            "energy_j": energy_j,
            "energy_gpu_j": by_component["gpu"],
            "energy_cpu_j": by_component["cpu"],
            "energy_ram_j": by_component["ram"],
            "steps": totals.steps,
            "samples": totals.samples,
            "tokens": totals.tokens,
            "flops": totals.flops,
            "flops_method": totals.flops_method,
            "precision": totals.precision,
            "metrics": dict(totals.metrics),
            "warnings": list(self.start.warnings) + list(totals.warnings),
            "co2e_g": co2e_g(energy_j, intensity.intensity_g_per_kwh, self.start.pue)
            if energy_j is not None and intensity is not None
            else None,
        }


def _project_id(session: Session, name: str, now: datetime) -> int:
    project_id = session.execute(select(Project.id).where(Project.name == name)).scalar()
    if project_id is None:
        project = Project(name=name, created_at=now)
        session.add(project)
        session.flush()
        project_id = project.id
    return project_id
