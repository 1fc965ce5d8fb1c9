"""Compression.

Accuracy against energy per inference (or token) for each compression setting of a project,
with the Pareto front and the baseline, and what each setting saved against the baseline at
what accuracy cost.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, callback, dcc, html

from carbon._format import format_energy, format_share
from carbon.accounting.compression import (
    Saving,
    TradeoffPoint,
    choose_baseline,
    compression_label,
    pareto_front,
    savings_vs_baseline,
)
from carbon.store.browse import RunFilter, find_runs, hardware_label
from carbon.store.models import Run
from carbon.store.summary import run_summary
from dashboard.components import field, graph, notice, page
from dashboard.data import reading, theme
from dashboard.figures.fleet import tradeoff_figure
from dashboard.urls import query_string

dash.register_page(
    __name__, path="/compression", name="Compression", title="carbon: compression", order=4
)

PER = {"inference": "j_per_inference", "token": "j_per_token"}
"""Units of work, by URL value, and the summary field of energy per unit."""


def _candidates(runs: list[Run], per: str) -> list[tuple[TradeoffPoint, dict[str, Any]]]:
    """Inference runs with an energy per unit and a logged accuracy, with their settings."""
    found = []
    for run in runs:
        accuracy = run.metrics.get("accuracy")
        energy = run_summary(run)[PER[per]]
        if not isinstance(accuracy, int | float) or not energy:
            continue
        point = TradeoffPoint(
            run_id=run.id,
            label=compression_label(run.compression),
            energy_per_item_j=float(energy),
            accuracy=float(accuracy),
        )
        found.append((point, run.compression))
    return found


def layout(
    project: str | None = None,
    per: str | None = None,
    hardware: str | None = None,
    **_: Any,
) -> html.Div:
    """The compression trade-offs of one project's inference runs on one kind of hardware.

    Settings are compared on the same hardware only: a saving measured against a baseline
    that ran on another machine would be the machine's, not the compression's.
    """
    per = per if per in PER else "inference"
    current = theme()
    with reading() as (session, team_id):
        inference = find_runs(session, RunFilter(kind="inference"), team_id=team_id, limit=5000)
        counts: dict[str, int] = {}
        for run in inference:
            if isinstance(run.metrics.get("accuracy"), int | float):
                counts[run.project.name] = counts.get(run.project.name, 0) + 1
        if not project and counts:
            project = max(sorted(counts), key=lambda name: counts[name])
        runs = [run for run in inference if run.project.name == project]
        by_hardware: dict[str, list[Run]] = {}
        for run in runs:
            by_hardware.setdefault(hardware_label(run), []).append(run)
        if hardware not in by_hardware:
            hardware = max(sorted(by_hardware), key=lambda h: len(by_hardware[h]), default=None)
        candidates = _candidates(by_hardware.get(hardware or "", []), per)
    controls = html.Div(
        [
            field(
                "Project",
                dcc.Dropdown(
                    id="compression-project",
                    options=sorted(counts),
                    value=project,
                    clearable=False,
                    placeholder="a project",
                ),
            ),
            field(
                "Hardware",
                dcc.Dropdown(
                    id="compression-hardware",
                    options=sorted(by_hardware),
                    value=hardware,
                    clearable=False,
                    placeholder="the runs' hardware",
                ),
            ),
            field(
                "Energy per",
                dcc.Dropdown(
                    id="compression-per",
                    options=[{"label": p, "value": p} for p in PER],
                    value=per,
                    clearable=False,
                ),
            ),
        ],
        className="filters",
    )
    children: list[Any] = [dcc.Location(id="compression-url", refresh="callback-nav"), controls]
    if not candidates:
        children.append(
            notice(
                "No inference run with an accuracy and an energy per "
                f"{per} here: log run.log_metrics(accuracy=...) and count the "
                f"{'samples' if per == 'inference' else 'tokens'} with run.step(...); "
                "`carbon demo` makes such runs.",
                notice_id="compression-empty",
            )
        )
        return page("Compression", *children, page_id="compression-page")
    points = [point for point, _ in candidates]
    front = pareto_front(points)
    baseline = choose_baseline(candidates)
    if baseline is None:
        children.append(
            notice(
                "No uncompressed run to compare with: mark one with "
                "compression={'baseline': True}.",
                kind="warning",
            )
        )
    children += [
        graph(
            "compression-pareto",
            tradeoff_figure(points, front, baseline, current, per=per),
            title=f"Accuracy against energy per {per}",
            height=460,
        ),
        html.Section(
            [
                html.H3("Savings against the baseline"),
                _savings_table(savings_vs_baseline(points, baseline) if baseline else [], front),
            ],
            className="card",
        ),
    ]
    return page("Compression", *children, page_id="compression-page")


def _savings_table(savings: list[Saving], front: list[TradeoffPoint]) -> html.Table:
    on_front = {p.run_id for p in front}
    header = html.Tr(
        [
            html.Th(h)
            for h in (
                "setting",
                "energy per item",
                "energy saved",
                "accuracy",
                "accuracy change",
                "on the front",
            )
        ]
    )
    rows = [
        html.Tr(
            [
                html.Td(
                    dcc.Link(
                        f"{s.label} ({s.run_id[:6]})" + (", baseline" if s.is_baseline else ""),
                        href=f"/run/{s.run_id}",
                    )
                ),
                html.Td(format_energy(s.energy_per_item_j)),
                html.Td(format_share(s.energy_saving)),
                html.Td(format_share(s.accuracy)),
                html.Td(
                    "—" if s.accuracy_delta is None else f"{s.accuracy_delta * 100:+.2f} points"
                ),
                html.Td("yes" if s.run_id in on_front else "no"),
            ]
        )
        for s in sorted(savings, key=lambda s: s.energy_per_item_j)
    ]
    return html.Table(
        [html.Thead(header), html.Tbody(rows)], className="data", id="compression-table"
    )


@callback(
    Output("compression-url", "search"),
    Input("compression-project", "value"),
    Input("compression-hardware", "value"),
    Input("compression-per", "value"),
    prevent_initial_call=True,
)
def _filters_to_url(project: str | None, hardware: str | None, per: str | None) -> str:
    """Keep the project, hardware and unit in the address, which redraws the page."""
    return query_string({"project": project, "hardware": hardware, "per": per})
