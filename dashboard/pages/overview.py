"""Overview.

The period's energy, CO2e, runs and GPU-hours, its trend, top projects, and how much of the
energy was measured rather than estimated.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import dash
from dash import Input, Output, callback, dcc, html

from carbon._format import format_energy_wh, format_mass_g, format_share
from carbon.store.browse import filter_choices
from carbon.store.overview import Period, daily_energy, period_totals, project_totals_in
from dashboard.components import field, graph, notice, page, stat, stats_row
from dashboard.data import reading, theme
from dashboard.figures.fleet import (
    energy_trend_figure,
    project_colours,
    projects_figure,
    provenance_figure,
)
from dashboard.urls import query_string

dash.register_page(__name__, path="/", name="Overview", title="carbon: overview", order=0)

PERIODS = {
    "7": "last 7 days",
    "30": "last 30 days",
    "90": "last 90 days",
    "365": "last year",
    "all": "all time",
}
"""Periods offered, by their URL value (days)."""

DEFAULT_PERIOD = "30"


def layout(project: str | None = None, days: str | None = None, **_: Any) -> html.Div:
    """The overview of a period (``days``) and optionally one project."""
    days = days if days in PERIODS else DEFAULT_PERIOD
    since = None if days == "all" else datetime.now(UTC) - timedelta(days=int(days))
    current = theme()
    with reading() as (session, team_id):
        choices = filter_choices(session, team_id=team_id)
        period = Period(team_id=team_id, project=project or None, since=since)
        totals = period_totals(session, period)
        daily = daily_energy(session, period)
        projects = project_totals_in(session, period)
    controls = html.Div(
        [
            field(
                "Project",
                dcc.Dropdown(
                    id="overview-project",
                    options=choices["project"],
                    value=project or None,
                    placeholder="all projects",
                ),
            ),
            field(
                "Period",
                dcc.Dropdown(
                    id="overview-days",
                    options=[{"label": label, "value": value} for value, label in PERIODS.items()],
                    value=days,
                    clearable=False,
                ),
            ),
        ],
        className="filters",
    )
    if totals.runs == 0:
        hint = (
            "No runs yet: run `carbon demo`, or wrap your training loop with `carbon.track()`."
            if not choices["project"]
            else f"No runs in the {PERIODS[days]}{' for ' + project if project else ''}: "
            "choose a longer period."
        )
        return page(
            "Overview",
            dcc.Location(id="overview-url", refresh="callback-nav"),
            controls,
            notice(hint, notice_id="overview-empty"),
            page_id="overview-page",
        )
    colours = project_colours([p["name"] for p in projects])
    co2e_note = (
        f"location-based, {totals.runs_with_co2e} of {totals.runs} runs"
        if totals.runs_with_co2e
        else "no run has a region: set CARBON_REGION"
    )
    market_note = (
        f"{totals.runs_with_market} of {totals.runs} runs have a contractual factor"
        if totals.runs_with_market
        else "no contractual factor: `carbon market add`"
    )
    cards = stats_row(
        [
            stat("Energy", format_energy_wh(totals.energy_j), note="all devices, before PUE"),
            stat(
                "CO2e",
                format_mass_g(totals.co2e_g) if totals.runs_with_co2e else "unknown",
                note=co2e_note,
            ),
            stat(
                "CO2e market-based",
                format_mass_g(totals.co2e_market_g) if totals.runs_with_market else "unknown",
                note=market_note,
            ),
            stat("Runs", f"{totals.runs:,}"),
            stat("GPU-hours", f"{totals.gpu_hours:,.2f}", note="duration x GPUs"),
            stat(
                "Measured",
                format_share(totals.measured_share),
                note="share of energy read from hardware; the rest is estimated",
            ),
        ],
        row_id="overview-totals",
    )
    return page(
        "Overview",
        dcc.Location(id="overview-url", refresh="callback-nav"),
        controls,
        cards,
        graph(
            "overview-trend",
            energy_trend_figure(daily, current, colours=colours),
            title="Energy per day",
        ),
        html.Div(
            [
                graph(
                    "overview-projects",
                    projects_figure(projects, current, colours=colours),
                    title="Top projects",
                ),
                graph(
                    "overview-provenance",
                    provenance_figure(totals.energy_by_provenance_j, current),
                    title="How the energy was obtained",
                ),
            ],
            className="grid-2",
        ),
        page_id="overview-page",
    )


@callback(
    Output("overview-url", "search"),
    Input("overview-project", "value"),
    Input("overview-days", "value"),
    prevent_initial_call=True,
)
def _filters_to_url(project: str | None, days: str | None) -> str:
    """Keep the chosen project and period in the address, which redraws the page."""
    return query_string({"project": project, "days": days})
