"""Totals over a period: what a team drew and emitted, and how much of it was measured.

Every figure is a sum of stored facts: runs' totals, devices' energy by provenance, and
energy per UTC hour (``run_energy_hour``) for the trend, so a day's bar holds the energy
drawn that day even for a run that spanned midnight. CO2e sums only the runs that have it,
and says how many runs that is, so a missing region never reads as zero emissions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from carbon.store.models import Device, Project, Run, RunEnergyHour
from carbon.store.queries import runs_query

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class Period:
    """Which runs a total covers: a team, optionally a project, and a window of start times.

    Attributes:
        team_id: The team (``None``: every team, for the local CLI).
        project: Only this project.
        since: Runs started at or after this time (energy from this time on, for trends).
        until: Runs started before this time.
        projects: Only these projects (with ``project``, runs must match both).
    """

    team_id: int | None = None
    project: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    projects: tuple[str, ...] = ()

    def run_conditions(self) -> list[ColumnElement[bool]]:
        """SQL conditions on ``run`` (a subquery on ``project`` when projects are asked)."""
        conditions: list[ColumnElement[bool]] = []
        if self.team_id is not None:
            conditions.append(Run.team_id == self.team_id)
        if self.project is not None:
            conditions.append(
                Run.project_id.in_(select(Project.id).where(Project.name == self.project))
            )
        if self.projects:
            conditions.append(
                Run.project_id.in_(select(Project.id).where(Project.name.in_(self.projects)))
            )
        if self.since is not None:
            conditions.append(Run.started_at >= self.since)
        if self.until is not None:
            conditions.append(Run.started_at < self.until)
        return conditions


@dataclass(frozen=True, slots=True)
class PeriodTotals:
    """What the runs of a period add up to.

    Attributes:
        runs: Number of runs.
        energy_j: Their energy (before PUE); ``None`` when no run has any.
        co2e_g: Location-based CO2e of the runs that have one.
        runs_with_co2e: How many runs ``co2e_g`` covers (runs without a region have none).
        co2e_market_g: Market-based CO2e of the runs that have a contractual factor.
        runs_with_market: How many runs ``co2e_market_g`` covers.
        gpu_hours: Sum over runs of duration x number of GPUs, hours.
        energy_by_provenance_j: Devices' energy by how it was obtained (``measured``,
            ``integrated``, ``estimated``).
    """

    runs: int
    energy_j: float | None
    co2e_g: float | None
    runs_with_co2e: int
    co2e_market_g: float | None
    runs_with_market: int
    gpu_hours: float
    energy_by_provenance_j: dict[str, float] = field(default_factory=dict)

    @property
    def measured_share(self) -> float | None:
        """Share of the energy read from hardware (counters or power readings)."""
        total = sum(self.energy_by_provenance_j.values())
        if total <= 0:
            return None
        measured = sum(
            energy_j
            for provenance, energy_j in self.energy_by_provenance_j.items()
            if provenance != "estimated"
        )
        return measured / total


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def period_totals(session: Session, period: Period) -> PeriodTotals:
    """The totals of the runs in ``period`` (three queries, none over samples)."""
    where = period.run_conditions()
    runs, energy_j, co2e_g, with_co2e, market_g, with_market = session.execute(
        select(
            func.count(Run.id),
            func.sum(Run.energy_j),
            func.sum(Run.co2e_g),
            func.count(Run.co2e_g),
            func.sum(Run.co2e_market_g),
            func.count(Run.co2e_market_g),
        ).where(*where)
    ).one()
    gpu_seconds = session.scalar(
        select(func.sum(Run.duration_s))
        .select_from(Device)
        .join(Run, Run.id == Device.run_id)
        .where(Device.component == "gpu", *where)
    )
    by_provenance = session.execute(
        select(Device.provenance, func.sum(Device.energy_j))
        .join(Run, Run.id == Device.run_id)
        .where(*where)
        .group_by(Device.provenance)
    )
    return PeriodTotals(
        runs=int(runs),
        energy_j=_float(energy_j),
        co2e_g=_float(co2e_g),
        runs_with_co2e=int(with_co2e),
        co2e_market_g=_float(market_g),
        runs_with_market=int(with_market),
        gpu_hours=float(gpu_seconds or 0.0) / SECONDS_PER_HOUR,
        energy_by_provenance_j={
            provenance: float(total) for provenance, total in by_provenance if total
        },
    )


def count_runs(session: Session, period: Period) -> int:
    """How many runs the period holds."""
    return int(session.scalar(select(func.count(Run.id)).where(*period.run_conditions())) or 0)


def runs_in(session: Session, period: Period, *, chunk: int = 500) -> Iterator[list[Run]]:
    """The period's runs, oldest first, with project and devices, ``chunk`` runs at a time.

    Chunks keep memory flat and let a caller report progress on thousands of runs; each
    chunk costs one query for the runs and one for their devices.
    """
    query = (
        runs_query(None)
        .where(*period.run_conditions())
        .order_by(Run.started_at, Run.id)
        .execution_options(yield_per=chunk)
    )
    for partition in session.scalars(query).partitions():
        yield list(partition)


def daily_energy(session: Session, period: Period) -> list[tuple[date, str, float]]:
    """Energy drawn per UTC day and project by the period's runs, oldest day first.

    Hours are summed in SQL and folded into days here, which reads the same on both
    backends; a period of a year is at most 8,760 hours per project.

    Returns:
        ``(day, project, energy_j)`` for each day a project drew energy.
    """
    rows = session.execute(
        select(Project.name, RunEnergyHour.hour_start, func.sum(RunEnergyHour.energy_j))
        .join(Run, Run.id == RunEnergyHour.run_id)
        .join(Project, Project.id == Run.project_id)
        .where(*period.run_conditions())
        .group_by(Project.name, RunEnergyHour.hour_start)
    )
    days: dict[tuple[date, str], float] = {}
    for project, hour_start, energy_j in rows:
        key = (hour_start.date(), project)
        days[key] = days.get(key, 0.0) + float(energy_j)
    return [(day, project, energy_j) for (day, project), energy_j in sorted(days.items())]


def project_totals_in(session: Session, period: Period) -> list[dict[str, Any]]:
    """Each project's runs, energy and CO2e within the period, most energy first.

    Returns:
        Dicts with ``name``, ``runs``, ``energy_j`` and ``co2e_g`` (``None`` when no run of
        the project has it).
    """
    energy_j = func.sum(Run.energy_j)
    rows = session.execute(
        select(Project.name, func.count(Run.id), energy_j, func.sum(Run.co2e_g))
        .join(Run, Run.project_id == Project.id)
        .where(*period.run_conditions())
        .group_by(Project.name)
        .order_by(energy_j.desc().nulls_last(), Project.name)
    )
    return [
        {"name": name, "runs": int(runs), "energy_j": _float(total), "co2e_g": _float(g)}
        for name, runs, total, g in rows
    ]
