"""The one query layer: every read of the store by the CLI, the API, the dashboard and reports.

Functions take a session and keyword-only filters and return ORM rows or plain dicts; none
of the callers writes SQL of its own. The JSON shape of a run is built from these rows by
:mod:`carbon.store.summary`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session, selectinload

from carbon.errors import RunNotFound
from carbon.store.models import Project, Run, RunEnergyHour, Sample, SampleMinute

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
    """Sum of the stored samples' energy per device id of a run (for checks and reports).

    Samples past retention count through their per-minute roll-ups.
    """
    totals: dict[int, float] = {}
    for table in (Sample, SampleMinute):
        rows = session.execute(
            select(table.device_id, func.sum(table.energy_j))
            .where(table.run_id == run_id)
            .group_by(table.device_id)
        )
        for device_id, energy_j in rows:
            totals[device_id] = totals.get(device_id, 0.0) + float(energy_j)
    return totals


def energy_by_hour(db: Session | Connection, run_id: str) -> dict[datetime, float]:
    """The run's energy (all ranks) per UTC hour, joules."""
    rows = db.execute(
        select(RunEnergyHour.hour_start, func.sum(RunEnergyHour.energy_j))
        .where(RunEnergyHour.run_id == run_id)
        .group_by(RunEnergyHour.hour_start)
        .order_by(RunEnergyHour.hour_start)
    )
    return {hour: float(energy_j) for hour, energy_j in rows}
