"""Reports.

The sustainability report of a period, shown on the page and downloaded as HTML, PDF, CSV,
JSON or Markdown: the same document ``carbon report`` writes and ``/api/v1/reports`` serves.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html, no_update
from dash.dcc.express import send_bytes

from carbon.errors import ConfigError
from carbon.reports.build import build_report
from carbon.reports.render import FORMATS, render_report
from carbon.reports.request import DEFAULT_DAYS, GROUP_BY, ReportRequest
from carbon.store.browse import filter_choices
from dashboard.components import field, notice, page
from dashboard.data import reading
from dashboard.urls import parse_day

dash.register_page(__name__, path="/reports", name="Reports", title="carbon: reports", order=6)

FORMAT_LABELS = {"html": "HTML", "pdf": "PDF", "csv": "CSV", "json": "JSON", "md": "Markdown"}


def layout(**_: Any) -> html.Div:
    """The report form (period, projects, breakdown, format), a preview and a download."""
    today = datetime.now(UTC).date()
    with reading() as (session, team_id):
        projects = filter_choices(session, team_id=team_id)["project"]
    form = html.Div(
        [
            field(
                "From (UTC day)",
                dcc.DatePickerSingle(
                    id="reports-since",
                    date=(today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(),
                    display_format="YYYY-MM-DD",
                ),
            ),
            field(
                "Until (UTC day, included)",
                dcc.DatePickerSingle(
                    id="reports-until", date=today.isoformat(), display_format="YYYY-MM-DD"
                ),
            ),
            field(
                "Projects",
                dcc.Dropdown(
                    id="reports-project", options=projects, multi=True, placeholder="all projects"
                ),
            ),
            field(
                "Group by",
                dcc.RadioItems(id="reports-group-by", options=list(GROUP_BY), value="project"),
            ),
            field(
                "Format",
                dcc.RadioItems(
                    id="reports-format",
                    options=[{"label": FORMAT_LABELS[f], "value": f} for f in FORMATS],
                    value="html",
                ),
            ),
            html.Div(
                [
                    html.Button("Show report", id="reports-show-button"),
                    html.Button("Download", id="reports-download-button"),
                ],
                className="buttons",
            ),
        ],
        className="filters",
        id="reports-form",
    )
    return page(
        "Reports",
        html.P(
            "The sustainability report of the runs started in a period: totals with the change "
            "against the previous period, what was measured and what estimated, Scope 2 "
            "location- and market-based and Scope 3 embodied emissions with their sources, "
            "recommendations with their estimated savings, the method, and every run.",
            className="muted",
        ),
        form,
        html.Div(id="reports-status"),
        dcc.Loading(
            html.Iframe(id="reports-preview", className="report-preview", sandbox=""),
            type="dot",
        ),
        dcc.Download(id="reports-download"),
        page_id="reports-page",
    )


def _request(
    since_text: str | None, until_text: str | None, projects: list[str] | None, group_by: str
) -> tuple[ReportRequest | None, str | None]:
    """The request the form describes, or what is wrong with it."""
    since, problem_since = parse_day(since_text, "from")
    until, problem_until = parse_day(until_text, "until")
    problems = [p for p in (problem_since, problem_until) if p]
    if problems:
        return None, "; ".join(problems)
    try:
        request = ReportRequest(
            since=since,
            until=until,
            projects=tuple(projects or ()),
            group_by=group_by,  # type: ignore[arg-type]  # checked by ReportRequest
        )
    except ConfigError as exc:
        return None, str(exc)
    return request, None


def _report(request: ReportRequest) -> dict[str, Any]:
    with reading() as (session, team_id):
        return build_report(session, request, team_id=team_id, source="carbon dashboard")


def _status(report: dict[str, Any], what: str) -> html.Div:
    totals = report["summary"]
    if report["empty"]:
        return notice("No run started in this period; the report says so.", kind="warning")
    energy = totals["energy_kwh"]
    co2e = totals["co2e_g"]
    figures = [f"{totals['runs']} runs"]
    if energy is not None:
        figures.append(f"{energy:,.3f} kWh")
    if co2e is not None:
        figures.append(f"{co2e / 1000:,.3f} kgCO2e location-based")
    return notice(f"{what}: " + ", ".join(figures) + ".")


@callback(
    Output("reports-preview", "srcDoc"),
    Output("reports-status", "children", allow_duplicate=True),
    Input("reports-show-button", "n_clicks"),
    State("reports-since", "date"),
    State("reports-until", "date"),
    State("reports-project", "value"),
    State("reports-group-by", "value"),
    prevent_initial_call=True,
)
def _show(
    _: int,
    since_text: str | None,
    until_text: str | None,
    projects: list[str] | None,
    group_by: str,
) -> tuple[Any, Any]:
    """Build the report and show its HTML on the page."""
    request, problem = _request(since_text, until_text, projects, group_by)
    if request is None:
        return no_update, notice(problem or "invalid form", kind="error")
    report = _report(request)
    return render_report(report, "html").decode("utf-8"), _status(report, "Report")


@callback(
    Output("reports-download", "data"),
    Output("reports-status", "children"),
    Input("reports-download-button", "n_clicks"),
    State("reports-since", "date"),
    State("reports-until", "date"),
    State("reports-project", "value"),
    State("reports-group-by", "value"),
    State("reports-format", "value"),
    prevent_initial_call=True,
)
def _download(
    _: int,
    since_text: str | None,
    until_text: str | None,
    projects: list[str] | None,
    group_by: str,
    fmt: str,
) -> tuple[Any, Any]:
    """Build the report in the chosen format and hand it to the browser as a file."""
    request, problem = _request(since_text, until_text, projects, group_by)
    if request is None:
        return no_update, notice(problem or "invalid form", kind="error")
    if fmt not in FORMATS:
        return no_update, notice(f"unknown format {fmt!r}", kind="error")
    report = _report(request)
    content = render_report(report, fmt)
    name = f"carbon-report-{request.since or 'start'}-{request.until or 'now'}.{fmt}"
    return send_bytes(content, name), _status(report, f"{FORMAT_LABELS[fmt]} report")
