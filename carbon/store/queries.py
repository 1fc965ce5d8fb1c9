"""The one query layer: every read of the store by the CLI, the API, the dashboard and reports.

Functions take a session and keyword-only filters and return ORM rows or plain dicts; none
of the callers writes SQL of its own. :func:`run_summary` defines the JSON shape of a run
(``carbon runs show --json``, ``run.summary()``), whose field names are stable.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from carbon.errors import RunNotFound
from carbon.sources.base import methods_by_component
from carbon.store.models import Project, Run, Sample

MIN_ID_PREFIX = 6
"""Shortest run-id prefix accepted where a full id is expected."""


def list_runs(
    session: Session,
    *,
    project: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    limit: int | None = 100,
) -> list[Run]:
    """Runs, newest first, with their project and devices loaded.

    Args:
        session: An open session.
        project: Only runs of this project.
        kind: Only ``training`` or ``inference`` runs.
        status: Only runs in this status.
        since: Only runs started at or after this time.
        limit: At most this many runs; ``None`` for all.
    """
    query = (
        select(Run)
        .options(selectinload(Run.project), selectinload(Run.devices))
        .order_by(Run.started_at.desc(), Run.id)
    )
    if project is not None:
        query = query.join(Run.project).where(Project.name == project)
    if kind is not None:
        query = query.where(Run.kind == kind)
    if status is not None:
        query = query.where(Run.status == status)
    if since is not None:
        query = query.where(Run.started_at >= since)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def get_run(session: Session, run_id: str) -> Run:
    """The run with this id, or with this unique id prefix (at least 6 characters).

    Raises:
        RunNotFound: No run, or several runs, match.
    """
    needle = run_id.strip().lower()
    base = select(Run).options(selectinload(Run.project), selectinload(Run.devices))
    run = session.scalars(base.where(Run.id == needle)).first()
    if run is not None:
        return run
    if len(needle) >= MIN_ID_PREFIX and all(c in "0123456789abcdef" for c in needle):
        matches = list(session.scalars(base.where(Run.id.startswith(needle)).limit(2)))
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise RunNotFound(f"run id prefix {run_id!r} matches several runs; give more of it")
    raise RunNotFound(f"no run with id {run_id!r}")


def sample_energy_by_device(session: Session, run_id: str) -> dict[int, float]:
    """Sum of the stored samples' energy per device id of a run (for checks and reports)."""
    rows = session.execute(
        select(Sample.device_id, func.sum(Sample.energy_j))
        .where(Sample.run_id == run_id)
        .group_by(Sample.device_id)
    )
    return {device_id: float(total) for device_id, total in rows}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def run_summary(run: Run) -> dict[str, Any]:
    """The stable JSON shape of a run, as ``carbon runs show --json`` prints it.

    Unknown figures are ``None``: a run without FLOPs has no ``j_per_flop``; a run without a
    region has no intensity and no CO2e. ``energy_j`` is the total over all components
    before PUE; ``co2e_g`` is energy x PUE x intensity (location-based).
    """
    j_per_flop = (
        run.energy_j / run.flops
        if run.energy_j is not None and run.flops is not None and run.flops > 0
        else None
    )
    return {
        "id": run.id,
        "project": run.project.name,
        "name": run.name,
        "kind": run.kind,
        "status": run.status,
        "started_at": _iso(run.started_at),
        "ended_at": _iso(run.ended_at),
        "duration_s": run.duration_s,
        "energy_j": run.energy_j,
        "energy_by_component_j": {
            "gpu": run.energy_gpu_j,
            "cpu": run.energy_cpu_j,
            "ram": run.energy_ram_j,
        },
        "energy_method": methods_by_component(run.devices),
        "samples": run.samples,
        "tokens": run.tokens,
        "flops": run.flops,
        "flops_method": run.flops_method,
        "j_per_flop": j_per_flop,
        "mfu": None,
        "region": run.region,
        "intensity_g_per_kwh": run.intensity_g_per_kwh,
        "intensity_source": run.intensity_source,
        "pue": run.pue,
        "co2e_g": run.co2e_g,
        "hardware": run.hardware,
        "compression": run.compression,
        "metrics": run.metrics,
        "tags": run.tags,
        "steps": run.steps,
        "host": run.host,
        "simulated": run.simulated,
        "warnings": run.warnings,
        "error": run.error,
        "devices": [
            {
                "component": d.component,
                "name": d.name,
                "index": d.index,
                "uuid": d.uuid,
                "method": d.method,
                "provenance": d.provenance,
                "detail": d.detail,
                "energy_j": d.energy_j,
                "power_limit_w": d.power_limit_w,
                "error": d.error,
            }
            for d in run.devices
        ],
    }
