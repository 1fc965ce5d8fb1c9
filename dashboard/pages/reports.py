"""Reports.

Download the runs of a period, with how each figure was obtained, as CSV or JSON.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html, no_update
from dash.dcc.express import send_string

from carbon.reports.export import runs_csv, runs_json
from carbon.store.browse import RunFilter, filter_choices, find_runs
from carbon.store.summary import run_summary
from dashboard.components import field, notice, page
from dashboard.data import reading
from dashboard.urls import day_start, parse_day

dash.register_page(__name__, path="/reports", name="Reports", title="carbon: reports", order=6)

MAX_RUNS = 100_000
"""Most runs one export holds."""


def layout(**_: Any) -> html.Div:
    """The export form: a period (days, inclusive), a project, a format."""
    today = datetime.now(UTC).date()
    with reading() as (session, team_id):
        projects = filter_choices(session, team_id=team_id)["project"]
    form = html.Div(
        [
            field(
                "From (UTC day)",
                dcc.DatePickerSingle(
                    id="reports-since",
                    date=(today - timedelta(days=90)).isoformat(),
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
                "Project",
                dcc.Dropdown(id="reports-project", options=projects, placeholder="all projects"),
            ),
            field(
                "Format",
                dcc.Dropdown(
                    id="reports-format", options=["csv", "json"], value="csv", clearable=False
                ),
            ),
            html.Div(html.Button("Download", id="reports-download-button")),
        ],
        className="filters",
        id="reports-form",
    )
    return page(
        "Reports",
        html.P(
            "Every run started in the period, one row each: energy per component and how it was "
            "measured or estimated, location- and market-based CO2e with the intensity, PUE and "
            "their sources, J/FLOP, MFU and the settings. Unknown figures are empty, never 0.",
            className="muted",
        ),
        form,
        html.Div(id="reports-status"),
        dcc.Download(id="reports-download"),
        page_id="reports-page",
    )


@callback(
    Output("reports-download", "data"),
    Output("reports-status", "children"),
    Input("reports-download-button", "n_clicks"),
    State("reports-since", "date"),
    State("reports-until", "date"),
    State("reports-project", "value"),
    State("reports-format", "value"),
    prevent_initial_call=True,
)
def _download(
    _: int, since_text: str | None, until_text: str | None, project: str | None, fmt: str
) -> tuple[Any, Any]:
    """Build the export and hand it to the browser as a file."""
    since, problem_since = parse_day(since_text, "from")
    until, problem_until = parse_day(until_text, "until")
    problems = [p for p in (problem_since, problem_until) if p]
    if since is not None and until is not None and since > until:
        problems.append(f"from {since} is after until {until}")
    if problems:
        return no_update, notice("; ".join(problems), kind="error")
    end = day_start(until + timedelta(days=1)) if until else None
    with reading() as (session, team_id):
        runs = find_runs(
            session,
            RunFilter(project=project or None, since=day_start(since), until=end),
            team_id=team_id,
            limit=MAX_RUNS,
        )
        summaries = [run_summary(run) for run in runs]
    if not summaries:
        return no_update, notice("No run started in this period; choose another.", kind="warning")
    stem = f"carbon-runs-{_day(since)}-{_day(until)}"
    if fmt == "json":
        scope = {
            "since": _day(since),
            "until": _day(until),
            "project": project,
            "runs": len(summaries),
        }
        content = runs_json(summaries, scope=scope)
        return send_string(content, f"{stem}.json"), notice(f"{len(summaries)} runs exported.")
    return send_string(runs_csv(summaries), f"{stem}.csv"), notice(
        f"{len(summaries)} runs exported."
    )


def _day(day: date | None) -> str:
    return day.isoformat() if day else "all"
