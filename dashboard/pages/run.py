"""Run detail.

Power over time per device, cumulative energy, utilization, windows, the run's settings, and
how every figure was obtained (method, source, fallbacks). Series come downsampled from the
store (:mod:`carbon.store.series`): at most :data:`MAX_POINTS` buckets per device, whatever
the run's length. Zooming asks the store again for the visible span, at a finer bucket
width.
"""

from __future__ import annotations

import math
from typing import Any

import dash
from dash import Input, Output, State, callback, clientside_callback, dcc, html, no_update
from dash.exceptions import PreventUpdate

from carbon._format import (
    format_duration,
    format_energy_wh,
    format_j_per_flop,
    format_mass_g,
    format_share,
)
from carbon.accounting.compression import compression_label
from carbon.errors import RunNotFound
from carbon.store.queries import get_run
from carbon.store.series import MIN_WIDTH_S, ROLLUP_MIN_WIDTH_S, RunSeries, power_series
from carbon.store.summary import run_summary
from dashboard.components import graph, key_values, notice, page, stat, stats_row
from dashboard.data import reading, theme
from dashboard.figures.run import cumulative_energy_figure, power_figure, utilization_figure

dash.register_page(__name__, path_template="/run/<run_id>", name="Run", title="carbon: run")

MAX_POINTS = 2000
"""Most buckets per device sent to the browser for one figure."""


def layout(run_id: str | None = None, **_: Any) -> html.Div:
    """The detail of one run of the viewer's team."""
    current = theme()
    with reading() as (session, team_id):
        try:
            run = get_run(session, run_id or "", team_id=team_id)
        except RunNotFound as exc:
            return page(
                "Run",
                notice(
                    f"{exc}. Find runs on the Runs page.", kind="error", notice_id="run-missing"
                ),
                page_id="run-page",
            )
        summary = run_summary(run)
        series = power_series(session, run.id, max_points=MAX_POINTS, team_id=team_id)
        windows = [(w.name, w.start_s, w.duration_s) for w in run.windows]
        window_rows = [
            (
                w.name,
                f"{format_duration(w.duration_s)} from {w.start_s:.1f} s, "
                f"{format_energy_wh(w.energy_j)}",
            )
            for w in run.windows
        ]
    accuracy = run.metrics.get("accuracy")
    cards = stats_row(
        [
            stat("Energy", format_energy_wh(summary["energy_j"]), note="all devices, before PUE"),
            stat(
                "CO2e",
                format_mass_g(summary["co2e_g"]) if summary["co2e_g"] is not None else "unknown",
                note=_co2e_note(summary),
            ),
            stat("Duration", format_duration(summary["duration_s"])),
            stat(
                "J/FLOP",
                format_j_per_flop(summary["j_per_flop"]),
                note=summary["flops_method"] and f"FLOPs {summary['flops_method']}",
            ),
            stat("MFU", format_share(summary["mfu"]), note=_mfu_note(summary)),
            stat(
                "Accuracy",
                format_share(float(accuracy)) if isinstance(accuracy, int | float) else "—",
                note="as logged by the run",
            ),
        ],
        row_id="run-stats",
    )
    warnings = [notice(str(w), kind="warning") for w in summary["warnings"]]
    if summary["simulated"]:
        warnings.insert(
            0,
            notice(
                "Simulated GPU: this run's GPU figures come from a simulator, not hardware.",
                kind="warning",
            ),
        )
    if summary["error"]:
        warnings.append(notice(f"The run failed: {summary['error']}", kind="error"))
    methods = [
        (
            f"{d['component'].upper()} {d['name']}",
            f"{format_energy_wh(d['energy_j'])}: {d['provenance']} ({d['method']}). {d['detail']}"
            + (f" Failed: {d['error']}" if d["error"] else ""),
        )
        for d in summary["devices"]
    ]
    methods += [
        ("grid intensity", _intensity_text(summary)),
        ("PUE", f"{summary['pue']:g} ({summary['pue_source'] or 'default'})"),
        ("market-based CO2e", _market_text(summary)),
        (
            "embodied (GPUs)",
            format_mass_g(summary["embodied_g"])
            + (f" ({summary['embodied_source']})" if summary["embodied_source"] else ""),
        ),
    ]
    settings = [
        ("project", summary["project"]),
        ("kind", summary["kind"]),
        ("status", summary["status"]),
        ("started", summary["started_at"]),
        ("host", summary["host"]),
        ("region", summary["region"]),
        ("precision", summary["precision"]),
        ("compression", compression_label(run.compression)),
        *[(f"compression.{k}", v) for k, v in sorted(run.compression.items())],
        *[(f"tag {k}", v) for k, v in sorted(run.tags.items())],
        *[(f"metric {k}", v) for k, v in sorted(run.metrics.items())],
    ]
    return page(
        f"{summary['name']} ({summary['project']})",
        dcc.Store(id="run-id", data=run.id),
        dcc.Store(id="run-window"),
        *warnings,
        cards,
        graph(
            "run-power",
            power_figure(series, windows, current),
            title="Power per device (mean per bucket, band: min to max)",
            height=420,
        ),
        html.Div(
            [
                graph(
                    "run-energy",
                    cumulative_energy_figure(series, current),
                    title="Energy since start",
                ),
                graph("run-utilization", utilization_figure(series, current), title="Utilization"),
            ],
            className="grid-2",
        ),
        html.Div(
            _resolution(series),
            id="run-resolution",
            className="muted",
        ),
        html.Div(
            [
                html.Section(
                    [html.H3("How each figure was obtained"), key_values(methods, "run-methods")],
                    className="card",
                ),
                html.Section(
                    [
                        html.H3("Settings, tags and metrics"),
                        key_values(settings, "run-settings"),
                        html.H3("Windows", style={"marginTop": "12px"}),
                        key_values(window_rows, "run-windows"),
                    ],
                    className="card",
                ),
            ],
            className="grid-2",
        ),
        dcc.Link("CO2e of this run in other regions", href=f"/regions?runs={run.id}"),
        page_id="run-page",
    )


def _co2e_note(summary: dict[str, Any]) -> str:
    if summary["co2e_g"] is None:
        return "no region: set CARBON_REGION or --region"
    method = summary["co2e_method"] or "static"
    return f"location-based, {method} intensity of {summary['intensity_zone']}"


def _mfu_note(summary: dict[str, Any]) -> str:
    if summary["peak_flops_per_s"] is None:
        return "needs a GPU of the catalog and a precision"
    return f"against a peak of {summary['peak_flops_per_s']:.3g} FLOP/s ({summary['precision']})"


def _intensity_text(summary: dict[str, Any]) -> str:
    if summary["intensity_g_per_kwh"] is None:
        return "unknown: the run has no region"
    text = (
        f"{summary['intensity_g_per_kwh']:.4g} gCO2e/kWh for {summary['intensity_zone']} "
        f"({summary['intensity_factor_type'] or 'factor'}, "
        f"{summary['intensity_year'] or 'year unknown'}): "
        f"{summary['intensity_source']}"
    )
    if summary["intensity_fallback"]:
        text += f". Fallback: {summary['intensity_fallback_reason']}"
    return text


def _market_text(summary: dict[str, Any]) -> str:
    if summary["co2e_market_g"] is None:
        return "none: no contractual factor applies"
    return f"{format_mass_g(summary['co2e_market_g'])} ({summary['market_source']})"


# In the browser: only a change of the visible span reaches the server. Relayouts that
# carry none (the responsive graph's autosize, a resize) send no request, so they never
# supersede, and lose, the answer to a zoom still on its way.
clientside_callback(
    """
    function (relayout) {
        var none = window.dash_clientside.no_update;
        if (!relayout) { return none; }
        if (relayout["xaxis.autorange"]) { return {start: null, end: null}; }
        if ("xaxis.range[0]" in relayout) {
            return {start: relayout["xaxis.range[0]"], end: relayout["xaxis.range[1]"]};
        }
        if (relayout["xaxis.range"]) {
            return {start: relayout["xaxis.range"][0], end: relayout["xaxis.range"][1]};
        }
        return none;
    }
    """,
    Output("run-window", "data"),
    Input("run-power", "relayoutData"),
    prevent_initial_call=True,
)


@callback(
    Output("run-power", "figure"),
    Output("run-resolution", "children"),
    Input("run-window", "data"),
    State("run-id", "data"),
    prevent_initial_call=True,
)
def _zoom(window: dict[str, float | None] | None, run_id: str) -> tuple[Any, Any]:
    """Ask the store again for the visible span, so zooming shows finer buckets."""
    if not window:
        return no_update, no_update
    try:
        start_s = None if window.get("start") is None else max(0.0, float(window["start"] or 0.0))
        end_s = None if window.get("end") is None else float(window["end"] or 0.0)
    except (AttributeError, TypeError, ValueError):  # not a span Plotly sends: forged
        raise PreventUpdate from None
    if not all(math.isfinite(value) for value in (start_s, end_s) if value is not None):
        raise PreventUpdate
    with reading() as (session, team_id):
        try:
            run = get_run(session, str(run_id), team_id=team_id)
        except RunNotFound:  # not the viewer's team's run (a forged request): say nothing
            raise PreventUpdate from None
        windows = [(w.name, w.start_s, w.duration_s) for w in run.windows]
        if start_s is not None and end_s is not None and end_s <= start_s:
            return no_update, no_update
        series = power_series(
            session, run.id, start_s=start_s, end_s=end_s, max_points=MAX_POINTS, team_id=team_id
        )
    figure = power_figure(series, windows, theme())
    if start_s is not None and end_s is not None:
        figure.update_xaxes(range=[start_s, end_s])
    return figure, _resolution(series)


def _resolution(series: RunSeries) -> str:
    source = "minutes" if series.width_s >= ROLLUP_MIN_WIDTH_S else "samples"
    text = f"{series.source_rows:,} stored {source} in buckets of {series.width_s:g} s"
    return text + ("; zoom in for finer buckets." if series.width_s > MIN_WIDTH_S else ".")
