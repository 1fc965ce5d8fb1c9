"""The one query layer: every read of the store by the CLI, the API, the dashboard and reports.

Functions take a session and keyword-only filters and return ORM rows or plain dicts; none
of the callers writes SQL of its own. The JSON shape of a run is built from these rows by
:mod:`carbon.store.summary`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, func, select
from sqlalchemy.orm import Session, selectinload

from carbon.errors import RunNotFound
from carbon.store.models import Device, Project, Run, RunEnergyHour, SampleMinute

MIN_ID_PREFIX = 6
"""Shortest run-id prefix accepted where a full id is expected."""

RUN_ID_CHARS = 32
"""Length of a full run id (32 hex digits)."""


def runs_query(team_id: int | None) -> Select[Run]:
    """Runs with their project and devices loaded, of one team or of all."""
    query = select(Run).options(selectinload(Run.project), selectinload(Run.devices))
    return query if team_id is None else query.where(Run.team_id == team_id)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def list_runs(
    session: Session,
    *,
    project: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    limit: int | None = 100,
    team_id: int | None = None,
) -> list[Run]:
    """Runs, newest first, with their project and devices loaded.

    Args:
        session: An open session.
        project: Only runs of this project.
        kind: Only ``training`` or ``inference`` runs.
        status: Only runs in this status.
        since: Only runs started at or after this time.
        limit: At most this many runs; ``None`` for all.
        team_id: Only runs of this team; ``None`` for every team (the local CLI).
    """
    query = runs_query(team_id).order_by(Run.started_at.desc(), Run.id)
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


def get_run(session: Session, run_id: str, *, team_id: int | None = None) -> Run:
    """The run with this id, or with this unique id prefix (at least 6 characters).

    Args:
        session: An open session.
        run_id: A full run id or a unique prefix of one.
        team_id: Look only among this team's runs (another team's run is "not found");
            ``None`` looks at every team's.

    Raises:
        RunNotFound: No run, or several runs, match.
    """
    needle = run_id.strip().lower()
    base = runs_query(team_id)
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


def runs_by_ids(
    session: Session, run_ids: Sequence[str], *, team_id: int | None = None
) -> list[Run]:
    """Several runs, in the order asked, each named by its full id or a unique prefix.

    Full ids are read in one query; only prefixes are resolved one by one.

    Raises:
        RunNotFound: One of the ids matches no run (of the team), or several.
    """
    needles = [run_id.strip().lower() for run_id in run_ids]
    full = {needle for needle in needles if len(needle) == RUN_ID_CHARS}
    found = {run.id: run for run in session.scalars(runs_query(team_id).where(Run.id.in_(full)))}
    return [
        found[needle] if needle in found else get_run(session, needle, team_id=team_id)
        for needle in needles
    ]


def project_totals(session: Session, *, team_id: int | None = None) -> list[dict[str, Any]]:
    """Each project's number of runs, energy and CO2e (location-based), by project name.

    Returns:
        Dicts with ``name``, ``runs``, ``energy_j`` and ``co2e_g`` (``None`` when no run of
        the project has the figure).
    """
    query = (
        select(
            Project.name,
            func.count(Run.id),
            func.sum(Run.energy_j),
            func.sum(Run.co2e_g),
        )
        .outerjoin(Run, Run.project_id == Project.id)
        .group_by(Project.id, Project.name)
        .order_by(Project.name)
    )
    if team_id is not None:
        query = query.where(Project.team_id == team_id)
    return [
        {"name": name, "runs": int(runs), "energy_j": _float(energy_j), "co2e_g": _float(co2e_g)}
        for name, runs, energy_j, co2e_g in session.execute(query)
    ]


def hardware_totals(session: Session, *, team_id: int | None = None) -> list[dict[str, Any]]:
    """Device models seen in runs: how many runs used each and the energy they drew.

    Returns:
        Dicts with ``component`` (``gpu``, ``cpu``, ``ram``), ``name`` (the model as the
        device reported it), ``runs`` and ``energy_j``, by component then most energy.
    """
    energy_j = func.sum(Device.energy_j)
    query = (
        select(Device.component, Device.name, func.count(func.distinct(Device.run_id)), energy_j)
        .join(Run, Run.id == Device.run_id)
        .group_by(Device.component, Device.name)
        .order_by(Device.component, energy_j.desc(), Device.name)
    )
    if team_id is not None:
        query = query.where(Run.team_id == team_id)
    return [
        {"component": component, "name": name, "runs": int(runs), "energy_j": _float(total_j)}
        for component, name, runs, total_j in session.execute(query)
    ]


def region_totals(session: Session, *, team_id: int | None = None) -> list[dict[str, Any]]:
    """Regions runs ran in, with their number of runs, energy and CO2e (location-based).

    Returns:
        Dicts with ``region`` (``None`` for runs without one), ``runs``, ``energy_j`` and
        ``co2e_g``, most energy first.
    """
    energy_j = func.sum(Run.energy_j)
    query = (
        select(Run.region, func.count(Run.id), energy_j, func.sum(Run.co2e_g))
        .group_by(Run.region)
        .order_by(energy_j.desc(), Run.region)
    )
    if team_id is not None:
        query = query.where(Run.team_id == team_id)
    return [
        {"region": region, "runs": int(runs), "energy_j": _float(total_j), "co2e_g": _float(g)}
        for region, runs, total_j, g in session.execute(query)
    ]


def sample_energy_by_device(session: Session, run_id: str) -> dict[int, float]:
    """The stored per-second energy of a run, summed per device id (for checks and reports).

    Read from the devices' minutes, which every stored sample counts in, so samples removed
    by retention still count.
    """
    rows = session.execute(
        select(SampleMinute.device_id, func.sum(SampleMinute.energy_j))
        .where(SampleMinute.run_id == run_id)
        .group_by(SampleMinute.device_id)
    )
    return {device_id: float(energy_j) for device_id, energy_j in rows}


def energy_by_hour(db: Session | Connection, run_id: str) -> dict[datetime, float]:
    """The run's energy (all ranks) per UTC hour, joules."""
    rows = db.execute(
        select(RunEnergyHour.hour_start, func.sum(RunEnergyHour.energy_j))
        .where(RunEnergyHour.run_id == run_id)
        .group_by(RunEnergyHour.hour_start)
        .order_by(RunEnergyHour.hour_start)
    )
    return {hour: float(energy_j) for hour, energy_j in rows}


def energy_by_hour_of_runs(
    db: Session | Connection,
    run_ids: Sequence[str],
    *,
    team_id: int | None = None,
    chunk: int = 500,
) -> dict[str, dict[datetime, float]]:
    """Several runs' energy (all ranks) per UTC hour, joules, in one query per ``chunk`` runs.

    Raises:
        RunNotFound: One of the full ids is not a run (of the team, when one is given).
    """
    ids = list(dict.fromkeys(run_ids))
    found: dict[str, dict[datetime, float]] = {}
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        team = (Run.team_id == team_id,) if team_id is not None else ()
        known = set(db.scalars(select(Run.id).where(Run.id.in_(part), *team)))
        missing = [run_id for run_id in part if run_id not in known]
        if missing:
            raise RunNotFound(f"no run with id {missing[0]!r}")
        rows = db.execute(
            select(RunEnergyHour.run_id, RunEnergyHour.hour_start, func.sum(RunEnergyHour.energy_j))
            .where(RunEnergyHour.run_id.in_(part))
            .group_by(RunEnergyHour.run_id, RunEnergyHour.hour_start)
        )
        for run_id, hour, energy_j in rows:
            found.setdefault(run_id, {})[hour] = float(energy_j)
    return {run_id: found.get(run_id, {}) for run_id in ids}
