"""``carbon report``: the sustainability report of a period, as HTML, PDF, CSV, JSON or Markdown.

The report is built from the local store, or asked of the team server when the agent
reports to one (``CARBON_SERVER_URL``), so both give the same document. The file is written
whole or not at all: it appears under its name only once complete.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from carbon._format import format_energy_wh, format_mass_g
from carbon.cli._common import write_atomically
from carbon.errors import ConfigError
from carbon.reports.render import FORMATS, render_report
from carbon.reports.request import GROUP_BY, ReportRequest, default_period, parse_day
from carbon.settings import Settings, load_settings
from carbon.store import open_store

_SUFFIXES = {
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".csv": "csv",
    ".json": "json",
    ".md": "md",
}


def report_format(fmt: str | None, output: Path) -> str:
    """The format asked for, or the one the output's suffix names; HTML by default."""
    if fmt is None:
        return _SUFFIXES.get(output.suffix.lower(), "html")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return fmt


def report_request(
    since_text: str | None,
    until_text: str | None,
    projects: list[str] | None,
    team: str | None,
    group_by: str,
    max_accuracy_loss: float,
    mfu_threshold: float,
    *,
    today: datetime | None = None,
) -> ReportRequest:
    """The request the options describe; the last 90 days when no period is given.

    Raises:
        ConfigError: A day is not ``YYYY-MM-DD``, the period is reversed, or an option is
            out of range.
    """
    until = parse_day(until_text, "--to") if until_text else None
    since = parse_day(since_text, "--from") if since_text else None
    if since is None and until is None:
        since, until = default_period((today or datetime.now(UTC)).date())
    elif until is None:
        until = (today or datetime.now(UTC)).date()
    return ReportRequest(
        since=since,
        until=until,
        projects=tuple(projects or ()),
        team=team,
        group_by=group_by,  # type: ignore[arg-type]  # checked by ReportRequest
        max_accuracy_loss=max_accuracy_loss,
        mfu_threshold=mfu_threshold,
    )


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    """A progress bar on stderr, and the callback that moves it (``None`` when disabled)."""
    if not enabled:
        yield None
        return
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=None)

        def advance(stage: str, done: int, total: int | None) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        yield advance


def _local(
    settings: Settings, request: ReportRequest, fmt: str, progress: Any
) -> tuple[bytes, dict[str, Any] | None]:
    from carbon.reports.build import build_report  # pricing imports the live-data client

    store = open_store(settings.resolved_database_url)
    with store.session() as session:
        report = build_report(session, request, progress=progress, source=store.display_url)
    return render_report(report, fmt, progress=progress), report


def _remote(settings: Settings, request: ReportRequest, fmt: str, progress: Any) -> bytes:
    from carbon.remote.client import ServerClient

    if request.team is not None:
        raise ConfigError("--team reads the local store; a server reports its key's own team")
    if progress is not None:
        progress(f"waiting for {settings.server_url}", 0, None)
    client = ServerClient.from_settings(settings)
    try:
        return client.get_report(report_params(request, fmt))
    finally:
        client.close()


def report_params(request: ReportRequest, fmt: str) -> list[tuple[str, str]]:
    """The query parameters of ``/api/v1/reports`` for a request."""
    params = [
        ("format", fmt),
        ("group_by", request.group_by),
        ("max_accuracy_loss", repr(request.max_accuracy_loss)),
        ("mfu_threshold", repr(request.mfu_threshold)),
    ]
    if request.since is not None:
        params.append(("from", request.since.isoformat()))
    if request.until is not None:
        params.append(("to", request.until.isoformat()))
    params.extend(("project", project) for project in request.projects)
    return params


def report_command(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="File to write (its suffix names the format).")
    ],
    fmt: Annotated[
        str | None,
        typer.Option("--format", "-f", help=f"One of {', '.join(FORMATS)}; default from --output."),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--from", help="First UTC day, YYYY-MM-DD (90 days back).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--to", help="Last UTC day, included, YYYY-MM-DD (today).")
    ] = None,
    project: Annotated[
        list[str] | None, typer.Option("--project", "-p", help="Only this project (repeat).")
    ] = None,
    team: Annotated[
        str | None, typer.Option(help="Only this team's runs (local store; every team by default).")
    ] = None,
    group_by: Annotated[
        str, typer.Option("--group-by", help=f"Breakdown by {', '.join(GROUP_BY)}.")
    ] = "project",
    max_accuracy_loss: Annotated[
        float,
        typer.Option(
            help="Largest accuracy drop a recommended compression may cost (0.01 = 1 pt)."
        ),
    ] = 0.01,
    mfu_threshold: Annotated[
        float, typer.Option(help="Name training runs below this MFU (a fraction).")
    ] = 0.30,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Write the sustainability report of a period: totals, scopes, method and every run."""
    chosen = report_format(fmt, output)
    request = report_request(
        since, until, project, team, group_by, max_accuracy_loss, mfu_threshold
    )
    settings = load_settings()
    with _progress(not quiet) as progress:
        if settings.remote:
            content, report = _remote(settings, request, chosen, progress), None
        else:
            content, report = _local(settings, request, chosen, progress)
        write_atomically(output, content)
    period = f"{request.since} to {request.until}"
    if report is None:
        typer.echo(f"report for {period} from {settings.server_url}: {output} ({chosen})")
        return
    totals = report["summary"]
    figures = [f"{totals['runs']} runs"]
    if totals["energy_j"] is not None:
        figures.append(format_energy_wh(totals["energy_j"]))
    if totals["co2e_g"] is not None:
        figures.append(f"{format_mass_g(totals['co2e_g'])} CO2e location-based")
    typer.echo(f"report for {period}: {', '.join(figures)}; {output} ({chosen})")
