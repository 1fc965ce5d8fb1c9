"""Hardware.

Energy per FLOP, achieved FLOP/s and MFU by device model and precision across runs, each run
a point, with the catalog's peak for reference.
"""

from __future__ import annotations

from statistics import median
from typing import Any

import dash
from dash import Input, Output, callback, dcc, html

from carbon._format import format_flops_per_s, format_j_per_flop, format_share
from carbon.accounting.catalog import match_gpu, peak_flops
from carbon.store.browse import RunFilter, filter_choices, find_runs
from carbon.store.models import Run
from carbon.store.summary import run_summary
from dashboard.components import field, graph, notice, page
from dashboard.data import reading, theme
from dashboard.figures.fleet import hardware_figure
from dashboard.urls import query_string

dash.register_page(__name__, path="/hardware", name="Hardware", title="carbon: hardware", order=3)

MAX_RUNS = 5000
"""Most runs one view reads."""


def _point(run: Run) -> dict[str, Any] | None:
    """A run's efficiency figures with its hardware model; ``None`` without counted FLOPs."""
    if not run.flops:
        return None
    summary = run_summary(run)
    gpus = sorted({d.name for d in run.devices if d.component == "gpu"})
    if gpus:
        spec = match_gpu(gpus[0]) if len(gpus) == 1 else None
        hardware = spec.name if spec is not None else " + ".join(gpus)
    else:
        cpus = sorted({d.name for d in run.devices if d.component == "cpu"})
        hardware = "CPU " + (" + ".join(cpus) if cpus else "unknown")
    return {
        "hardware": hardware,
        "gpu_name": gpus[0] if len(gpus) == 1 else None,
        "precision": summary["precision"],
        "name": f"{run.name} ({run.id[:6]})",
        "j_per_flop": summary["j_per_flop"],
        "achieved_flops_per_s": summary["achieved_flops_per_s"],
        "mfu": summary["mfu"],
    }


def _peaks(points: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """The catalog's peak per ``(hardware, precision)`` shown, for GPUs it knows."""
    peaks: dict[tuple[str, str], float] = {}
    for p in points:
        if p["gpu_name"] is None or not p["precision"]:
            continue
        try:
            peak = peak_flops(match_gpu(p["gpu_name"]), p["precision"])
        except ValueError:
            continue
        if peak is not None:
            peaks[(p["hardware"], p["precision"])] = peak
    return peaks


def layout(project: str | None = None, kind: str | None = None, **_: Any) -> html.Div:
    """The efficiency of the runs of a project (or all), by hardware and precision."""
    current = theme()
    with reading() as (session, team_id):
        choices = filter_choices(session, team_id=team_id)
        runs = find_runs(
            session,
            RunFilter(project=project or None, kind=kind or None),
            team_id=team_id,
            limit=MAX_RUNS,
        )
        points = [p for p in (_point(run) for run in runs) if p is not None]
    controls = html.Div(
        [
            field(
                "Project",
                dcc.Dropdown(
                    id="hardware-project",
                    options=choices["project"],
                    value=project or None,
                    placeholder="all projects",
                ),
            ),
            field(
                "Kind",
                dcc.Dropdown(
                    id="hardware-kind",
                    options=choices["kind"],
                    value=kind or None,
                    placeholder="training and inference",
                ),
            ),
        ],
        className="filters",
    )
    children: list[Any] = [dcc.Location(id="hardware-url", refresh="callback-nav"), controls]
    if not points:
        children.append(
            notice(
                "No run with counted FLOPs yet: pass flops= to run.step(), or use "
                "run.count_flops() "
                "(`carbon demo` makes some).",
                notice_id="hardware-empty",
            )
        )
        return page("Hardware", *children, page_id="hardware-page")
    peaks = _peaks(points)
    children += [
        html.Div(
            [
                graph(
                    "hardware-jflop",
                    hardware_figure(points, "j_per_flop", current),
                    title="Energy per FLOP (lower is better)",
                ),
                graph(
                    "hardware-flops",
                    hardware_figure(points, "achieved_flops_per_s", current, peaks=peaks),
                    title="Achieved FLOP/s (bars: the catalog's peak)",
                ),
            ],
            className="grid-2",
        ),
        graph(
            "hardware-mfu", hardware_figure(points, "mfu", current), title="Model FLOPs utilization"
        ),
        html.Section(
            [html.H3("Medians by hardware and precision"), _medians_table(points, peaks)],
            className="card",
        ),
    ]
    return page("Hardware", *children, page_id="hardware-page")


def _medians_table(points: list[dict[str, Any]], peaks: dict[tuple[str, str], float]) -> html.Table:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for p in points:
        groups.setdefault((p["hardware"], p["precision"] or "?"), []).append(p)

    def med(rows: list[dict[str, Any]], key: str) -> float | None:
        values = [r[key] for r in rows if r[key] is not None]
        return median(values) if values else None

    header = html.Tr(
        [
            html.Th(h)
            for h in ("hardware", "precision", "runs", "J/FLOP", "FLOP/s", "MFU", "peak FLOP/s")
        ]
    )
    body = [
        html.Tr(
            [
                html.Td(hardware),
                html.Td(precision),
                html.Td(str(len(rows))),
                html.Td(format_j_per_flop(med(rows, "j_per_flop"))),
                html.Td(format_flops_per_s(med(rows, "achieved_flops_per_s"))),
                html.Td(format_share(med(rows, "mfu"))),
                html.Td(format_flops_per_s(peaks.get((hardware, precision)))),
            ]
        )
        for (hardware, precision), rows in sorted(groups.items())
    ]
    return html.Table([html.Thead(header), html.Tbody(body)], className="data", id="hardware-table")


@callback(
    Output("hardware-url", "search"),
    Input("hardware-project", "value"),
    Input("hardware-kind", "value"),
    prevent_initial_call=True,
)
def _filters_to_url(project: str | None, kind: str | None) -> str:
    """Keep the filters in the address, which redraws the page."""
    return query_string({"project": project, "kind": kind})
