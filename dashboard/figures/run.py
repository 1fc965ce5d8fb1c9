"""Figures of one run over time: power per device, cumulative energy, utilization.

They draw a :class:`~carbon.store.series.RunSeries`: time buckets already aggregated by
the store, each with its energy, so the mean-power line's area is the energy drawn and the
shaded band spans the lowest and highest one-second power inside each bucket.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from carbon.store.series import DeviceSeries, RunSeries
from dashboard.figures._common import (
    COMPONENT_COLOURS,
    base_layout,
    empty_figure,
    energy_scale,
    line_mode,
    power_scale,
)

WindowSpan = tuple[str, float, float]
"""A ``run.measure`` window: name, start and duration, seconds from the run's start."""


def device_label(device: DeviceSeries) -> str:
    """``GPU 0 (NVIDIA H100 …)``; the rank is named when the run has several."""
    rank = f"rank {device.rank} " if device.rank else ""
    return f"{rank}{device.component.upper()} {device.position}: {device.name}"


def _array(values: Sequence[float | None]) -> np.ndarray:
    """Values as a float array, unknown as NaN (a gap in the line).

    Plotly checks a list value by value and takes an array whole: on a run's three figures
    of 2,000 buckets per device that is about half of the page's time.
    """
    return np.array(values, dtype=np.float64)


def _midpoints(device: DeviceSeries) -> np.ndarray:
    return _array(device.start_s) + device.width_s / 2


def _colour(device: DeviceSeries) -> str:
    return COMPONENT_COLOURS.get(device.component, "#888888")


def power_figure(series: RunSeries, windows: Sequence[WindowSpan], theme: str) -> go.Figure:
    """Mean power per device per bucket, with its min-max band and the windows shaded."""
    if not any(device.start_s for device in series.devices):
        return empty_figure("no samples stored for this run", theme)
    factor, unit = power_scale(
        p for device in series.devices for p in (*device.power_w, *device.power_max_w)
    )
    figure = go.Figure()
    for device in series.devices:
        x = _midpoints(device)
        label = device_label(device)
        colour = _colour(device)
        mean = _array(device.power_w)
        if any(v is not None for v in device.power_max_w):
            lows = np.where(np.isnan(low := _array(device.power_min_w)), mean, low) / factor
            highs = np.where(np.isnan(high := _array(device.power_max_w)), mean, high) / factor
            figure.add_scatter(
                x=np.concatenate([x, x[::-1]]),
                y=np.concatenate([highs, lows[::-1]]),
                fill="toself",
                line={"width": 0},
                fillcolor=colour,
                opacity=0.2,
                hoverinfo="skip",
                showlegend=False,
                name=f"{label} range",
            )
        figure.add_scatter(
            x=x,
            y=mean / factor,
            mode=line_mode(len(x)),
            name=label,
            line={"color": colour},
            hovertemplate=f"%{{y:.3g}} {unit} at %{{x:.0f}} s<extra>{label}</extra>",
        )
    for name, start_s, duration_s in windows:
        figure.add_vrect(
            x0=start_s,
            x1=start_s + duration_s,
            opacity=0.12,
            line_width=0,
            fillcolor="#999999",
            annotation_text=name,
            annotation_position="top left",
        )
    figure.update_xaxes(title="time since start (s)")
    figure.update_yaxes(title=f"power ({unit})", rangemode="tozero")
    figure.update_layout(uirevision=series.run_id)
    return base_layout(figure, theme)


def cumulative_energy_figure(series: RunSeries, theme: str) -> go.Figure:
    """Energy drawn since the start, per device, exact at every bucket's end."""
    if not any(device.start_s for device in series.devices):
        return empty_figure("no samples stored for this run", theme)
    totals = [sum(device.energy_j) for device in series.devices]
    factor, unit = energy_scale(totals)
    figure = go.Figure()
    for device in series.devices:
        label = device_label(device)
        figure.add_scatter(
            x=_array(device.start_s) + device.width_s,
            y=np.cumsum(_array(device.energy_j)) / factor,
            mode=line_mode(len(device.energy_j)),
            name=label,
            stackgroup="energy",
            line={"color": _colour(device)},
            hovertemplate=f"%{{y:.3g}} {unit} by %{{x:.0f}} s<extra>{label}</extra>",
        )
    figure.update_xaxes(title="time since start (s)")
    figure.update_yaxes(title=f"energy ({unit}, stacked)", rangemode="tozero")
    return base_layout(figure, theme)


def utilization_figure(series: RunSeries, theme: str) -> go.Figure:
    """Mean utilization per device and bucket, for the devices that report it."""
    reporting = [d for d in series.devices if any(u is not None for u in d.utilization)]
    if not reporting:
        return empty_figure("no device of this run reports utilization", theme)
    figure = go.Figure()
    for device in reporting:
        label = device_label(device)
        figure.add_scatter(
            x=_midpoints(device),
            y=_array(device.utilization) * 100,
            mode=line_mode(len(device.utilization)),
            name=label,
            line={"color": _colour(device)},
            hovertemplate=f"%{{y:.0f}} %% at %{{x:.0f}} s<extra>{label}</extra>",
        )
    figure.update_xaxes(title="time since start (s)")
    figure.update_yaxes(title="utilization (%)", range=[0, 105])
    return base_layout(figure, theme)


def compare_power_figure(
    curves: Sequence[tuple[str, Sequence[float], Sequence[float]]], theme: str
) -> go.Figure:
    """Total power of several runs, aligned on time since each run's start.

    Args:
        curves: ``(label, bucket midpoints in s, total power in W)`` per run.
        theme: ``light`` or ``dark``.
    """
    if not any(len(x) for _, x, _ in curves):
        return empty_figure("none of these runs has stored samples", theme)
    factor, unit = power_scale(p for _, _, powers in curves for p in powers)
    figure = go.Figure()
    for label, x, powers in curves:
        figure.add_scatter(
            x=_array(x),
            y=_array(powers) / factor,
            mode=line_mode(len(powers)),
            name=label,
            hovertemplate=f"%{{y:.3g}} {unit} at %{{x:.0f}} s<extra>{label}</extra>",
        )
    figure.update_xaxes(title="time since the run's start (s)")
    figure.update_yaxes(title=f"total power ({unit})", rangemode="tozero")
    return base_layout(figure, theme)
