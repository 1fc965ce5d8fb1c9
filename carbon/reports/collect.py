"""Reading a report's runs from the store: run rows and their devices, never samples.

A report is built from what the store keeps per run (totals, devices, factors) and, for the
previous period's change figures, SQL sums of the same columns. Raw samples are never read,
so a yearly report over thousands of runs costs a few queries per thousand runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from carbon.accounting.compression import compression_label
from carbon.errors import ConfigError
from carbon.reports.request import ReportRequest
from carbon.store.browse import hardware_label
from carbon.store.models import Device, Project, Run, Team
from carbon.store.queries import runs_query
from carbon.store.summary import run_summary
from carbon.store.teams import get_team

__all__ = ["CHUNK_RUNS", "PeriodSums", "Progress", "ReportRun", "load_runs", "period_sums"]

CHUNK_RUNS = 500
"""Runs read per round trip; progress advances once per chunk."""

Progress = Callable[[str, int, int | None], None]
"""Called as ``progress(stage, done, total)`` while a report is built; total may be None."""

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class ReportRun:
    """One run as a report sees it: its summary and the facts the sections group by.

    Attributes:
        summary: The run's stable summary (:func:`carbon.store.summary.run_summary`).
        team: The team's name.
        hardware: Its hardware in a few words (``2 × NVIDIA H100 …``, else the CPU).
        compression: Its compression label (``fp32``, ``int8 dynamic`` …).
        gpu_count: Number of GPUs it ran on.
        gpu_hours: Duration x GPUs, hours; ``None`` while the duration is unknown.
        energy_by_provenance_j: Its devices' energy by how it was obtained.
        energy_by_method_j: Its devices' energy by ``(component, method, provenance)``.
    """

    summary: dict[str, Any]
    team: str
    hardware: str
    compression: str
    gpu_count: int
    gpu_hours: float | None
    energy_by_provenance_j: dict[str, float] = field(default_factory=dict)
    energy_by_method_j: dict[tuple[str, str, str], float] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The run's id."""
        return str(self.summary["id"])


def _resolve_team(session: Session, request: ReportRequest, team_id: int | None) -> int | None:
    """The team to read: the caller's, or the one the request names (local store only)."""
    if request.team is None:
        return team_id
    named = get_team(session, request.team)
    if team_id is not None and named.id != team_id:
        raise ConfigError(f"this key reads only its own team's runs, not team {request.team!r}")
    return named.id


def _conditions(
    session: Session, request: ReportRequest, team_id: int | None
) -> list[ColumnElement[bool]]:
    """SQL conditions on ``run`` for the request's period, projects and team."""
    conditions: list[ColumnElement[bool]] = []
    team = _resolve_team(session, request, team_id)
    if team is not None:
        conditions.append(Run.team_id == team)
    if request.projects:
        conditions.append(
            Run.project_id.in_(select(Project.id).where(Project.name.in_(request.projects)))
        )
    if request.start is not None:
        conditions.append(Run.started_at >= request.start)
    if request.end is not None:
        conditions.append(Run.started_at < request.end)
    return conditions


def _report_run(run: Run, team: str) -> ReportRun:
    summary = run_summary(run)
    gpu_count = sum(1 for device in run.devices if device.component == "gpu")
    by_provenance: dict[str, float] = {}
    by_method: dict[tuple[str, str, str], float] = {}
    for device in run.devices:
        by_provenance[device.provenance] = by_provenance.get(device.provenance, 0.0) + (
            device.energy_j or 0.0
        )
        key = (device.component, device.method, device.provenance)
        by_method[key] = by_method.get(key, 0.0) + (device.energy_j or 0.0)
    return ReportRun(
        summary=summary,
        team=team,
        hardware=hardware_label(run),
        compression=compression_label(run.compression),
        gpu_count=gpu_count,
        gpu_hours=(
            run.duration_s * gpu_count / SECONDS_PER_HOUR if run.duration_s is not None else None
        ),
        energy_by_provenance_j=by_provenance,
        energy_by_method_j=by_method,
    )


def load_runs(
    session: Session,
    request: ReportRequest,
    *,
    team_id: int | None = None,
    progress: Progress | None = None,
) -> list[ReportRun]:
    """The runs the request covers, oldest first, with their devices.

    Args:
        session: An open session.
        request: The period, projects and team.
        team_id: The caller's team (the server's key); ``None`` for every team (local CLI).
        progress: Told how many runs are read, chunk by chunk.

    Raises:
        ConfigError: The request names a team that does not exist or the caller cannot read.
    """
    conditions = _conditions(session, request, team_id)
    total = int(session.scalar(select(func.count(Run.id)).where(*conditions)) or 0)
    teams: dict[int, str] = {id_: name for id_, name in session.execute(select(Team.id, Team.name))}
    if progress is not None:
        progress("reading runs", 0, total)
    query = (
        runs_query(None)
        .where(*conditions)
        .order_by(Run.started_at, Run.id)
        .execution_options(yield_per=CHUNK_RUNS)
    )
    found: list[ReportRun] = []
    for partition in session.scalars(query).partitions():
        found.extend(
            _report_run(run, teams.get(run.team_id, str(run.team_id))) for run in partition
        )
        if progress is not None:
            progress("reading runs", len(found), total)
    return found


@dataclass(frozen=True, slots=True)
class PeriodSums:
    """SQL sums over a period's runs, for the change against the previous period.

    Attributes:
        runs: Number of runs.
        energy_j: Their energy (before PUE); ``None`` when no run has any.
        co2e_g: Location-based CO2e of the runs that have one.
        co2e_market_g: Market-based CO2e of the runs that have one.
        gpu_hours: Duration x GPUs, hours.
    """

    runs: int
    energy_j: float | None
    co2e_g: float | None
    co2e_market_g: float | None
    gpu_hours: float


def period_sums(
    session: Session, request: ReportRequest, *, team_id: int | None = None
) -> PeriodSums:
    """Totals of the request's runs in two aggregate queries (no run is loaded)."""
    conditions = _conditions(session, request, team_id)
    runs, energy_j, co2e_g, market_g = session.execute(
        select(
            func.count(Run.id),
            func.sum(Run.energy_j),
            func.sum(Run.co2e_g),
            func.sum(Run.co2e_market_g),
        ).where(*conditions)
    ).one()
    gpu_seconds = session.scalar(
        select(func.sum(Run.duration_s))
        .select_from(Device)
        .join(Run, Run.id == Device.run_id)
        .where(Device.component == "gpu", *conditions)
    )
    return PeriodSums(
        runs=int(runs),
        energy_j=None if energy_j is None else float(energy_j),
        co2e_g=None if co2e_g is None else float(co2e_g),
        co2e_market_g=None if market_g is None else float(market_g),
        gpu_hours=float(gpu_seconds or 0.0) / SECONDS_PER_HOUR,
    )
