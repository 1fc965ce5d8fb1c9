"""What every figure shares: the theme, unit scales for axes, and the empty figure.

Axes carry a unit chosen from the largest value shown (``mWh``, ``Wh``, ``kWh``; ``mg``,
``g``, ``kg``, ``t``), so a tick never reads ``0.000012`` and the reader sees the unit.
"""

from __future__ import annotations

from collections.abc import Iterable

import plotly.graph_objects as go

from carbon.units import J_PER_WH

TEMPLATES = {"light": "plotly_white", "dark": "plotly_dark"}
"""Plotly's own templates for each theme (bundled with plotly, nothing to download)."""

COMPONENT_COLOURS = {"gpu": "#2f7ed8", "cpu": "#e4572e", "ram": "#4caf50"}
"""One colour per component, the same on every page."""

_ENERGY_UNITS = ((1e6, "MWh"), (1e3, "kWh"), (1.0, "Wh"), (1e-3, "mWh"))
_MASS_UNITS = ((1e6, "t"), (1e3, "kg"), (1.0, "g"), (1e-3, "mg"))
_POWER_UNITS = ((1e6, "MW"), (1e3, "kW"), (1.0, "W"), (1e-3, "mW"))
_JOULE_UNITS = ((1e6, "MJ"), (1e3, "kJ"), (1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ"), (1e-9, "nJ"))

FEW_POINTS = 60
"""Series with at most this many points are drawn with markers, so one bucket still shows."""


def _scale(largest: float, units: tuple[tuple[float, str], ...]) -> tuple[float, str]:
    for factor, unit in units:
        if abs(largest) >= factor:
            return factor, unit
    return units[-1]


def energy_scale(values_j: Iterable[float | None]) -> tuple[float, str]:
    """Divisor (joules per unit) and unit for energies shown in watt-hours."""
    largest = max((abs(v) for v in values_j if v is not None), default=0.0)
    factor, unit = _scale(largest / J_PER_WH, _ENERGY_UNITS)
    return factor * J_PER_WH, unit


def mass_scale(values_g: Iterable[float | None]) -> tuple[float, str]:
    """Divisor (grams per unit) and unit for CO2e masses."""
    largest = max((abs(v) for v in values_g if v is not None), default=0.0)
    return _scale(largest, _MASS_UNITS)


def joule_scale(values_j: Iterable[float | None]) -> tuple[float, str]:
    """Divisor and unit for small energies (per inference, per token) shown in joules."""
    largest = max((abs(v) for v in values_j if v is not None), default=0.0)
    return _scale(largest, _JOULE_UNITS)


def line_mode(points: int) -> str:
    """``lines``, or ``lines+markers`` for a series too short to show as a line."""
    return "lines+markers" if points <= FEW_POINTS else "lines"


def power_scale(values_w: Iterable[float | None]) -> tuple[float, str]:
    """Divisor (watts per unit) and unit for powers."""
    largest = max((abs(v) for v in values_w if v is not None), default=0.0)
    return _scale(largest, _POWER_UNITS)


def base_layout(figure: go.Figure, theme: str, *, title: str | None = None) -> go.Figure:
    """Apply the theme and the margins every figure uses; returns the same figure."""
    figure.update_layout(
        template=TEMPLATES.get(theme, TEMPLATES["light"]),
        title=title,
        margin={"l": 60, "r": 20, "t": 50 if title else 20, "b": 50},
        legend={"orientation": "h", "y": -0.2},
        hovermode="closest",
    )
    return figure


def empty_figure(message: str, theme: str) -> go.Figure:
    """A figure with no axes that says why there is nothing to draw."""
    figure = go.Figure()
    figure.add_annotation(text=message, showarrow=False, font={"size": 14})
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return base_layout(figure, theme)
