"""Figures across runs: the period's trend, projects, hardware, compression and regions.

Each function takes plain rows (dicts and tuples the pages build from the query layer)
and a theme, and returns a figure; none reads the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import plotly.colors
import plotly.graph_objects as go

from carbon.accounting.compression import TradeoffPoint
from dashboard.figures._common import (
    base_layout,
    empty_figure,
    energy_scale,
    joule_scale,
    mass_scale,
)

PROVENANCE_COLOURS = {"measured": "#2e7d32", "integrated": "#66bb6a", "estimated": "#f9a825"}
"""Measured shades of green, estimated in amber, on every page."""


def project_colours(names: Sequence[str]) -> dict[str, str]:
    """One colour per project, the same in every figure of a page (by sorted name)."""
    palette = plotly.colors.qualitative.Plotly
    return {name: palette[i % len(palette)] for i, name in enumerate(sorted(set(names)))}


def energy_trend_figure(
    daily: Sequence[tuple[date, str, float]],
    theme: str,
    *,
    colours: Mapping[str, str] | None = None,
) -> go.Figure:
    """Energy drawn per day, stacked by project."""
    if not daily:
        return empty_figure("no energy in this period: run `carbon demo`", theme)
    factor, unit = energy_scale(e for _, _, e in daily)
    figure = go.Figure()
    for project in sorted({project for _, project, _ in daily}):
        rows = [(day, e) for day, p, e in daily if p == project]
        figure.add_bar(
            x=[day.isoformat() for day, _ in rows],
            y=[e / factor for _, e in rows],
            name=project,
            marker_color=(colours or {}).get(project),
            hovertemplate=f"%{{y:.3g}} {unit} on %{{x}}<extra>{project}</extra>",
        )
    figure.update_layout(barmode="stack")
    figure.update_xaxes(title="day (UTC)", type="category")
    figure.update_yaxes(title=f"energy ({unit})")
    return base_layout(figure, theme)


def projects_figure(
    projects: Sequence[Mapping[str, Any]],
    theme: str,
    *,
    colours: Mapping[str, str] | None = None,
) -> go.Figure:
    """The projects that drew the most energy, largest on top."""
    shown = [p for p in projects if p["energy_j"]][:10]
    if not shown:
        return empty_figure("no project has energy in this period", theme)
    factor, unit = energy_scale(p["energy_j"] for p in shown)
    shown = shown[::-1]
    figure = go.Figure(
        go.Bar(
            x=[p["energy_j"] / factor for p in shown],
            y=[p["name"] for p in shown],
            orientation="h",
            marker_color=[(colours or {}).get(p["name"]) for p in shown],
            customdata=[p["runs"] for p in shown],
            hovertemplate=f"%{{x:.3g}} {unit}, %{{customdata}} runs<extra>%{{y}}</extra>",
        )
    )
    figure.update_xaxes(title=f"energy ({unit})")
    figure.update_yaxes(type="category")
    return base_layout(figure, theme)


def provenance_figure(energy_by_provenance_j: Mapping[str, float], theme: str) -> go.Figure:
    """How the period's energy was obtained: measured, integrated from power, estimated."""
    if not energy_by_provenance_j:
        return empty_figure("no device energy in this period", theme)
    names = [n for n in ("measured", "integrated", "estimated") if n in energy_by_provenance_j]
    names += sorted(set(energy_by_provenance_j) - set(names))
    figure = go.Figure(
        go.Pie(
            labels=names,
            values=[energy_by_provenance_j[n] for n in names],
            hole=0.5,
            sort=False,
            marker={"colors": [PROVENANCE_COLOURS.get(n, "#9e9e9e") for n in names]},
            texttemplate="%{label}<br>%{percent}",
        )
    )
    return base_layout(figure, theme)


def hardware_figure(
    points: Sequence[Mapping[str, Any]],
    metric: str,
    theme: str,
    *,
    peaks: Mapping[tuple[str, str], float] | None = None,
) -> go.Figure:
    """A box of ``metric`` per hardware model and precision, every run shown as a point.

    Args:
        points: Rows with ``hardware``, ``precision``, ``name`` and the metric's value.
        metric: ``j_per_flop``, ``achieved_flops_per_s`` or ``mfu``.
        theme: ``light`` or ``dark``.
        peaks: The catalog's peak FLOP/s per ``(hardware, precision)``, drawn as markers
            when the metric is ``achieved_flops_per_s``.
    """
    labels = {
        "j_per_flop": ("energy per FLOP (J/FLOP)", "log"),
        "achieved_flops_per_s": ("achieved FLOP/s", "log"),
        "mfu": ("model FLOPs utilization (%)", "linear"),
    }
    if metric not in labels:
        raise ValueError(f"unknown hardware metric {metric!r}; expected one of {sorted(labels)}")
    title, axis_type = labels[metric]
    rows = [p for p in points if p.get(metric) is not None]
    if not rows:
        return empty_figure(f"no run has {title} yet: it needs counted FLOPs", theme)
    scale = 100.0 if metric == "mfu" else 1.0
    figure = go.Figure()
    groups = sorted({(str(p["hardware"]), str(p["precision"] or "?")) for p in rows})
    for hardware, precision in groups:
        group = [
            p for p in rows if (p["hardware"], str(p["precision"] or "?")) == (hardware, precision)
        ]
        figure.add_box(
            x=[f"{hardware} · {precision}"] * len(group),
            y=[p[metric] * scale for p in group],
            name=f"{hardware} · {precision}",
            boxpoints="all",
            jitter=0.4,
            pointpos=0,
            text=[p["name"] for p in group],
            hovertemplate="%{text}: %{y:.3g}<extra></extra>",
        )
    if metric == "achieved_flops_per_s" and peaks:
        shown = [(h, p) for h, p in groups if (h, p) in peaks]
        if shown:
            figure.add_scatter(
                x=[f"{h} · {p}" for h, p in shown],
                y=[peaks[key] for key in shown],
                mode="markers",
                marker={"symbol": "line-ew-open", "size": 40, "line": {"width": 3}},
                name="catalog peak",
                hovertemplate="peak %{y:.3g} FLOP/s<extra></extra>",
            )
    figure.update_yaxes(title=title, type=axis_type)
    figure.update_xaxes(type="category")
    figure.update_layout(showlegend=False)
    return base_layout(figure, theme)


def tradeoff_figure(
    points: Sequence[TradeoffPoint],
    front: Sequence[TradeoffPoint],
    baseline: TradeoffPoint | None,
    theme: str,
    *,
    per: str = "inference",
) -> go.Figure:
    """Accuracy against energy per item for each setting, the Pareto front, the baseline."""
    if not points:
        return empty_figure(
            "no inference run with accuracy: log it with run.log_metrics(accuracy=...)", theme
        )
    factor, unit = joule_scale(p.energy_per_item_j for p in points)
    figure = go.Figure()
    figure.add_scatter(
        x=[p.energy_per_item_j / factor for p in points],
        y=[p.accuracy * 100 for p in points],
        mode="markers+text",
        text=[p.label for p in points],
        # Alternate above and below by energy, so neighbouring settings' labels part.
        textposition=_label_positions(points),
        cliponaxis=False,
        marker={"size": 11},
        name="runs",
        customdata=[p.run_id[:8] for p in points],
        hovertemplate=(
            f"%{{text}} (%{{customdata}}): %{{x:.3g}} {unit}/{per}, %{{y:.2f}} %<extra></extra>"
        ),
    )
    if len(front) > 1:
        figure.add_scatter(
            x=[p.energy_per_item_j / factor for p in front],
            y=[p.accuracy * 100 for p in front],
            mode="lines",
            line={"dash": "dash"},
            name="Pareto front",
            hoverinfo="skip",
        )
    if baseline is not None:
        figure.add_scatter(
            x=[baseline.energy_per_item_j / factor],
            y=[baseline.accuracy * 100],
            mode="markers",
            marker={"symbol": "star", "size": 18, "color": "#d62728"},
            name=f"baseline ({baseline.label})",
            hovertemplate="baseline<extra></extra>",
        )
    figure.update_xaxes(title=f"energy per {per} ({unit})")
    figure.update_yaxes(title="accuracy (%)")
    return base_layout(figure, theme)


def _label_positions(points: Sequence[TradeoffPoint]) -> list[str]:
    order = sorted(range(len(points)), key=lambda i: points[i].energy_per_item_j)
    positions = [""] * len(points)
    for rank, i in enumerate(order):
        positions[i] = "top center" if rank % 2 == 0 else "bottom center"
    return positions


def whatif_figure(
    rows: Sequence[Mapping[str, Any]], actual: Mapping[str, float], theme: str
) -> go.Figure:
    """CO2e of the selected runs in each region, with what they actually emitted marked.

    Args:
        rows: One per region: ``region`` and ``co2e_g`` (the selected runs' sum there).
        actual: ``co2e_g`` the runs emitted where they ran, when known, under ``co2e_g``.
        theme: ``light`` or ``dark``.
    """
    if not rows:
        return empty_figure("choose runs and regions to compare", theme)
    ordered = sorted(rows, key=lambda row: row["co2e_g"])
    factor, unit = mass_scale(row["co2e_g"] for row in ordered)
    figure = go.Figure(
        go.Bar(
            x=[row["region"] for row in ordered],
            y=[row["co2e_g"] / factor for row in ordered],
            hovertemplate=f"%{{y:.3g}} {unit} CO2e<extra>%{{x}}</extra>",
            name="if run there",
        )
    )
    if actual.get("co2e_g") is not None:
        figure.add_hline(
            y=actual["co2e_g"] / factor,
            line_dash="dash",
            annotation_text="where they ran",
            annotation_position="top left",
        )
    figure.update_xaxes(title="region", type="category")
    figure.update_yaxes(title=f"CO2e, location-based ({unit})")
    return base_layout(figure, theme)


def compare_bars_figure(summaries: Sequence[Mapping[str, Any]], theme: str) -> go.Figure:
    """Energy and CO2e of the compared runs side by side (CO2e only where known)."""
    if not summaries:
        return empty_figure("select two or more runs on the Runs page", theme)
    labels = [f"{s['name']} ({s['id'][:6]})" for s in summaries]
    e_factor, e_unit = energy_scale(s["energy_j"] for s in summaries)
    m_factor, m_unit = mass_scale(s["co2e_g"] for s in summaries)
    figure = go.Figure()
    figure.add_bar(
        x=labels,
        y=[None if s["energy_j"] is None else s["energy_j"] / e_factor for s in summaries],
        name=f"energy ({e_unit})",
        offsetgroup="energy",
        hovertemplate=f"%{{y:.3g}} {e_unit}<extra>%{{x}}</extra>",
    )
    figure.update_layout(barmode="group", yaxis={"title": f"energy ({e_unit})"})
    if any(s["co2e_g"] is not None for s in summaries):
        figure.add_bar(
            x=labels,
            y=[None if s["co2e_g"] is None else s["co2e_g"] / m_factor for s in summaries],
            name=f"CO2e ({m_unit})",
            yaxis="y2",
            offsetgroup="co2e",
            hovertemplate=f"%{{y:.3g}} {m_unit}<extra>%{{x}}</extra>",
        )
        figure.update_layout(
            yaxis2={"title": f"CO2e ({m_unit})", "overlaying": "y", "side": "right"}
        )
    figure.update_xaxes(type="category")
    return base_layout(figure, theme)
