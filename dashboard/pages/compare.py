"""Compare.

Two or more runs side by side, their figures in one table and their total power curves
aligned on time since each run's start.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dash
from dash import dcc, html

from carbon._format import (
    format_duration,
    format_energy,
    format_energy_wh,
    format_j_per_flop,
    format_mass_g,
    format_share,
)
from carbon.accounting.compression import compression_label
from carbon.errors import RunNotFound
from carbon.store.browse import hardware_label
from carbon.store.queries import runs_by_ids
from carbon.store.series import power_series, total_power
from carbon.store.summary import run_summary
from dashboard.components import graph, notice, page
from dashboard.data import reading, theme
from dashboard.figures.fleet import compare_bars_figure
from dashboard.figures.run import compare_power_figure
from dashboard.urls import run_ids

dash.register_page(__name__, path="/compare", name="Compare", title="carbon: compare", order=2)

MAX_POINTS = 1000
"""Buckets per run in the aligned power curves."""


def _accuracy(summary: dict[str, Any]) -> str:
    value = summary["metrics"].get("accuracy")
    return format_share(float(value)) if isinstance(value, int | float) else "—"


ROWS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("project", lambda s: s["project"]),
    ("kind", lambda s: s["kind"]),
    ("status", lambda s: s["status"]),
    ("hardware", lambda s: s["_hardware"]),
    ("compression", lambda s: compression_label(s["compression"])),
    ("region", lambda s: s["region"] or "—"),
    ("energy", lambda s: format_energy_wh(s["energy_j"])),
    ("CO2e (location)", lambda s: format_mass_g(s["co2e_g"])),
    ("CO2e (market)", lambda s: format_mass_g(s["co2e_market_g"])),
    ("duration", lambda s: format_duration(s["duration_s"])),
    ("J/FLOP", lambda s: format_j_per_flop(s["j_per_flop"])),
    ("MFU", lambda s: format_share(s["mfu"])),
    ("J per inference", lambda s: format_energy(s["j_per_inference"])),
    ("J per token", lambda s: format_energy(s["j_per_token"])),
    ("accuracy", _accuracy),
    ("energy method", lambda s: ", ".join(f"{k}: {v}" for k, v in s["energy_method"].items() if v)),
]
"""The rows of the comparison table: a label and how to show it from a run's summary."""


def layout(runs: str | None = None, **_: Any) -> html.Div:
    """The runs named in ``runs`` (comma-separated ids or unique prefixes)."""
    ids, problems = run_ids(runs)
    messages = [notice(problem, kind="warning") for problem in problems]
    if len(ids) < 2:
        return page(
            "Compare",
            *messages,
            notice(
                [
                    "Select two or more runs on the ",
                    dcc.Link("Runs", href="/runs"),
                    " page, then Compare selected.",
                ],
                notice_id="compare-empty",
            ),
            page_id="compare-page",
        )
    current = theme()
    with reading() as (session, team_id):
        try:
            found = runs_by_ids(session, ids, team_id=team_id)
        except RunNotFound as exc:
            return page(
                "Compare",
                *messages,
                notice(str(exc), kind="error", notice_id="compare-missing"),
                page_id="compare-page",
            )
        summaries = []
        curves = []
        for run in found:
            summary = run_summary(run)
            summary["_hardware"] = hardware_label(run)
            summaries.append(summary)
            starts, powers = total_power(
                power_series(session, run.id, max_points=MAX_POINTS, team_id=team_id)
            )
            curves.append((f"{run.name} ({run.id[:6]})", starts, powers))
    header = html.Tr(
        [html.Th("")]
        + [
            html.Th(dcc.Link(f"{s['name']} ({s['id'][:6]})", href=f"/run/{s['id']}"))
            for s in summaries
        ]
    )
    body = [
        html.Tr([html.Td(label)] + [html.Td(show(s)) for s in summaries]) for label, show in ROWS
    ]
    return page(
        "Compare",
        *messages,
        html.Section(
            html.Table(
                [html.Thead(header), html.Tbody(body)], className="data", id="compare-table"
            ),
            className="card",
        ),
        html.Div(
            [
                graph(
                    "compare-bars", compare_bars_figure(summaries, current), title="Energy and CO2e"
                ),
                graph(
                    "compare-power",
                    compare_power_figure(curves, current),
                    title="Total power, aligned on time since start",
                ),
            ],
            className="grid-2",
        ),
        dcc.Link(
            "CO2e of these runs in other regions",
            href=f"/regions?runs={','.join(s['id'] for s in summaries)}",
        ),
        page_id="compare-page",
    )
