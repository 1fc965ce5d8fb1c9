"""A report's runs, read through the store's query layer: run rows and devices, never samples.

A report is built from what the store keeps per run (totals, devices, factors) and, for the
previous period's change figures, the store's SQL totals of the same columns
(:func:`carbon.store.overview.period_totals`). Raw samples are never read, so a yearly
report over thousands of runs costs two queries per 500 runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from carbon.accounting.compression import compression_label
from carbon.errors import ConfigError
from carbon.reports.request import ReportRequest
from carbon.store.browse import hardware_label
from carbon.store.models import Run
from carbon.store.overview import Period, PeriodTotals, count_runs, period_totals, runs_in
from carbon.store.summary import run_summary
from carbon.store.teams import get_team, list_teams

__all__ = ["CHUNK_RUNS", "Progress", "ReportRun", "load_runs", "period", "previous_totals"]

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


def period(session: Session, request: ReportRequest, team_id: int | None) -> Period:
    """The store's period for a request: its days, projects, and the team to read.

    Raises:
        ConfigError: The request names a team that does not exist, or one other than the
            caller's (a server's key reads only its own team).
    """
    team = team_id
    if request.team is not None:
        named = get_team(session, request.team)
        if team_id is not None and named.id != team_id:
            raise ConfigError(f"this key reads only its own team's runs, not team {request.team!r}")
        team = named.id
    return Period(team_id=team, since=request.start, until=request.end, projects=request.projects)


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
    where = period(session, request, team_id)
    total = count_runs(session, where)
    teams = {team.id: team.name for team in list_teams(session)}
    if progress is not None:
        progress("reading runs", 0, total)
    found: list[ReportRun] = []
    for chunk in runs_in(session, where, chunk=CHUNK_RUNS):
        found.extend(_report_run(run, teams.get(run.team_id, str(run.team_id))) for run in chunk)
        if progress is not None:
            progress("reading runs", len(found), total)
    return found


def previous_totals(
    session: Session, request: ReportRequest, *, team_id: int | None = None
) -> PeriodTotals | None:
    """SQL totals of the period of the same length before the request's, if it has one."""
    before = request.previous()
    if before is None:
        return None
    return period_totals(session, period(session, before, team_id))
