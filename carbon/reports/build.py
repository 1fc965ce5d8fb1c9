"""Building a report: the store's runs for a request, turned into one JSON-ready document.

The document is the report's content; HTML, Markdown, PDF and CSV are renderings of it
(:mod:`carbon.reports.render`), so every format states the same figures. Its shape is
versioned by :data:`REPORT_VERSION`: fields may be added within a version, never renamed
or removed.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from carbon._version import __version__
from carbon.reports.breakdown import breakdown, efficiency
from carbon.reports.collect import Progress, ReportRun, load_runs, previous_totals
from carbon.reports.emissions import emissions, methodology
from carbon.reports.equivalents import equivalents
from carbon.reports.recommendations import recommend
from carbon.reports.request import ReportRequest
from carbon.reports.totals import boundary, summary

__all__ = ["REPORT_VERSION", "build_report", "run_row"]

REPORT_VERSION = "1"
"""Version of the report document's shape."""


def run_row(run: ReportRun) -> dict[str, Any]:
    """A run as the appendix lists it: its full summary and the report's labels for it."""
    return {
        **run.summary,
        "team": run.team,
        "hardware_label": run.hardware,
        "compression_label": run.compression,
        "gpu_count": run.gpu_count,
        "gpu_hours": run.gpu_hours,
    }


def _scope(request: ReportRequest, source: str | None) -> dict[str, Any]:
    return {
        "since": request.since.isoformat() if request.since else None,
        "until": request.until.isoformat() if request.until else None,
        "days": request.days,
        "time_zone": "UTC",
        "run_rule": "runs that started in the period, each counted whole",
        "projects": list(request.projects),
        "team": request.team,
        "group_by": request.group_by,
        "max_accuracy_loss": request.max_accuracy_loss,
        "mfu_threshold": request.mfu_threshold,
        "store": source,
    }


def build_report(
    session: Session,
    request: ReportRequest,
    *,
    team_id: int | None = None,
    progress: Progress | None = None,
    source: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The report for ``request``: every section, computed from stored runs (no samples).

    Args:
        session: An open session on the store.
        request: The period, projects, team, breakdown and thresholds.
        team_id: The caller's team (the server's key); ``None`` for every team (local).
        progress: Told what is being done, with counts where known.
        source: Where the runs come from, as the report should name it (a masked URL).
        now: When the report is made (UTC); the current time by default.

    Returns:
        A JSON-ready dict: ``report_version``, ``generated_at``, ``generator``, ``scope``,
        ``empty``, ``summary``, ``boundary``, ``breakdown``, ``efficiency``, ``emissions``,
        ``equivalents``, ``recommendations``, ``methodology`` and ``runs`` (the appendix).

    Raises:
        ConfigError: The request names a team that does not exist or the caller cannot read.
    """
    generated = (now or datetime.now(UTC)).astimezone(UTC)
    runs = load_runs(session, request, team_id=team_id, progress=progress)
    previous = previous_totals(session, request, team_id=team_id)

    def stage(name: str) -> None:
        if progress is not None:
            progress(name, len(runs), len(runs))

    stage("adding up")
    totals = summary(runs, request, previous)
    stage("computing recommendations")
    advice = recommend(
        session,
        [run.summary for run in runs],
        team_id=team_id,
        max_accuracy_loss=request.max_accuracy_loss,
        mfu_threshold=request.mfu_threshold,
    )
    return {
        "report_version": REPORT_VERSION,
        "generated_at": generated.isoformat(),
        "generator": {"name": "carbon", "version": __version__},
        "scope": _scope(request, source),
        "empty": not runs,
        "summary": totals,
        "boundary": boundary(runs),
        "breakdown": breakdown(runs, request.group_by),
        "efficiency": efficiency(runs),
        "emissions": emissions(runs),
        "equivalents": [
            asdict(item) for item in equivalents(totals["co2e_g"], totals["facility_energy_kwh"])
        ],
        "recommendations": [asdict(item) for item in advice],
        "methodology": methodology(runs),
        "runs": [run_row(run) for run in runs],
    }
