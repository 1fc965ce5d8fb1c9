"""Regions.

What the selected runs would have emitted had they drawn the same energy elsewhere, hour by
hour where an intensity series is imported, else at the yearly factor.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html

from carbon._format import format_energy_wh, format_mass_g
from carbon.accounting.providers.static import StaticProvider
from carbon.accounting.resolve import resolve
from carbon.errors import ConfigError, RunNotFound
from carbon.store.browse import RunFilter, find_runs
from carbon.store.queries import runs_by_ids
from carbon.store.whatif import whatif
from dashboard.components import graph, notice, page
from dashboard.data import reading, theme
from dashboard.figures.fleet import whatif_figure
from dashboard.urls import join_ids, query_string, run_ids

dash.register_page(__name__, path="/regions", name="Regions", title="carbon: regions", order=5)

DEFAULT_REGIONS = ("SWE", "NOR", "FRA", "GBR", "DEU", "USA", "POL", "IND", "CHN", "AUS")
"""Regions compared when the address names none: low- to high-carbon grids."""

RECENT_RUNS = 10
"""Runs taken when the address names none: the most recent with energy."""

MAX_REGIONS = 30


@cache
def _region_options() -> list[dict[str, str]]:
    return [
        {"label": f"{region.code}: {region.name}", "value": region.code}
        for region, _ in StaticProvider().entries()
    ]


def layout(runs: str | None = None, regions: str | None = None, **_: Any) -> html.Div:
    """CO2e of the runs in ``runs`` (or the recent ones) in each region of ``regions``."""
    ids, problems = run_ids(runs)
    wanted = [r.strip() for r in (regions or "").split(",") if r.strip()][:MAX_REGIONS] or list(
        DEFAULT_REGIONS
    )
    messages = [notice(problem, kind="warning") for problem in problems]
    current = theme()
    with reading() as (session, team_id):
        try:
            chosen = (
                runs_by_ids(session, ids, team_id=team_id)
                if ids
                else [
                    r
                    for r in find_runs(session, RunFilter(), team_id=team_id, limit=200)
                    if r.energy_j
                ][:RECENT_RUNS]
            )
        except RunNotFound as exc:
            return page(
                "Regions",
                notice(str(exc), kind="error", notice_id="regions-missing"),
                page_id="regions-page",
            )
        valid = []
        for region in wanted:
            try:
                resolve(region)
            except ConfigError as exc:
                messages.append(notice(str(exc), kind="warning"))
            else:
                valid.append(region)
        per_run = (
            [whatif(session, run.id, valid, team_id=team_id) for run in chosen] if valid else []
        )
    totals: dict[str, dict[str, Any]] = {}
    for results in zip(*per_run, strict=True):
        first = results[0]
        totals[first.region] = {
            "region": first.region,
            "co2e_g": sum(r.co2e_g for r in results),
            "intensity": f"{first.intensity_g_per_kwh:.4g} g/kWh ({first.intensity_source})",
            "method": ", ".join(sorted({r.method for r in results})),
            "missing_hours": sum(r.missing_hours for r in results),
            "pue": ", ".join(sorted({f"{r.pue:g} ({r.pue_source})" for r in results})),
        }
    actual = [run.co2e_g for run in chosen]
    actual_total = (
        {"co2e_g": sum(a for a in actual if a is not None)}
        if actual and all(a is not None for a in actual)
        else {}
    )
    controls = html.Div(
        [
            html.Div(
                [
                    html.Label("Regions", htmlFor="regions-choice"),
                    dcc.Dropdown(
                        id="regions-choice",
                        options=_region_options(),
                        value=list(totals) or wanted,
                        multi=True,
                    ),
                ],
                style={"gridColumn": "span 3"},
            ),
            dcc.Store(id="regions-runs", data=join_ids(ids)),
        ],
        className="filters",
    )
    children: list[Any] = [
        dcc.Location(id="regions-url", refresh="callback-nav"),
        controls,
        *messages,
    ]
    if not chosen:
        children.append(
            notice(
                "No run with energy yet: run `carbon demo`, then come back.",
                notice_id="regions-empty",
            )
        )
        return page("Regions", *children, page_id="regions-page")
    energy_j = sum(run.energy_j or 0.0 for run in chosen)
    names = ", ".join(f"{run.name} ({run.id[:6]})" for run in chosen)
    scope = ("selected" if ids else "most recent") + (" runs" if len(chosen) > 1 else " run")
    children += [
        notice(
            f"{len(chosen)} {scope}, {format_energy_wh(energy_j)}: {names}",
            notice_id="regions-scope",
        ),
        graph(
            "regions-bars",
            whatif_figure(list(totals.values()), actual_total, current),
            title="CO2e had these runs drawn the same energy in each region",
            height=420,
        ),
        html.Section(
            [html.H3("Factors used"), _factors_table(list(totals.values()))], className="card"
        ),
    ]
    return page("Regions", *children, page_id="regions-page")


def _factors_table(rows: list[dict[str, Any]]) -> html.Table:
    header = html.Tr(
        [html.Th(h) for h in ("region", "CO2e", "intensity and source", "method", "PUE")]
    )
    body = [
        html.Tr(
            [
                html.Td(row["region"]),
                html.Td(format_mass_g(row["co2e_g"])),
                html.Td(row["intensity"]),
                html.Td(
                    row["method"]
                    + (
                        f" ({row['missing_hours']} hours at the yearly factor)"
                        if row["missing_hours"]
                        else ""
                    )
                ),
                html.Td(row["pue"]),
            ]
        )
        for row in sorted(rows, key=lambda r: r["co2e_g"])
    ]
    return html.Table([html.Thead(header), html.Tbody(body)], className="data", id="regions-table")


@callback(
    Output("regions-url", "search"),
    Input("regions-choice", "value"),
    State("regions-runs", "data"),
    prevent_initial_call=True,
)
def _regions_to_url(regions: list[str] | None, runs: str | None) -> str:
    """Keep the chosen regions in the address, which redraws the page."""
    return query_string({"runs": runs, "regions": ",".join(regions or [])})
