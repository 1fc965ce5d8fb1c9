"""The report's charts as SVG text, drawn with matplotlib's SVG backend.

Each chart is a pure function of one report section that returns an SVG document, or
``None`` when the section has nothing to plot (no empty charts). Figures are built with
matplotlib's object API and the SVG canvas, never pyplot, so no GUI backend is touched and
no figure is kept in a global registry. Text stays text (``svg.fonttype = none``) and ids
come from a fixed salt (``svg.hashsalt``) with no date, so the same report gives the same
bytes. Groups beyond the :data:`TOP_GROUPS` largest are summed into one "other" bar, which
keeps every chart small and fast whatever the number of runs.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from carbon.reports.content import Chart
from carbon.units import J_PER_KWH

__all__ = [
    "TOP_GROUPS",
    "components_chart",
    "compression_chart",
    "groups_chart",
    "hardware_chart",
    "report_charts",
]

TOP_GROUPS = 12
"""Bars a chart shows by name; the rest are summed into one "other" bar."""

LABEL_CHARS = 36
"""Longest label drawn; longer names are cut with an ellipsis."""


def _style() -> AbstractContextManager[None]:
    """The settings of the report's charts, in force for the ``with`` block only."""
    return matplotlib.rc_context(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": "carbon-report",
            "font.family": "DejaVu Sans",
            "font.size": 8.0,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titlesize": 9.0,
            "axes.titleweight": "bold",
            "axes.grid": True,
            "axes.grid.axis": "x",
            "axes.axisbelow": True,
            "grid.color": "#dddddd",
            "grid.linewidth": 0.6,
        }
    )


# Colour-blind safe colours (Okabe and Ito): measured, integrated, estimated, and CO2e.
_BLUE, _SKY, _ORANGE, _GREEN = "#0072B2", "#56B4E9", "#E69F00", "#009E73"
_PROVENANCE_COLOURS = (("measured", _BLUE), ("integrated", _SKY), ("estimated", _ORANGE))
_ENERGY_UNITS = (
    (J_PER_KWH * 1000, "MWh"),
    (J_PER_KWH, "kWh"),
    (J_PER_KWH / 1000, "Wh"),
    (1.0, "J"),
)
_MASS_UNITS = ((1e6, "t"), (1e3, "kg"), (1.0, "g"), (1e-3, "mg"))


def _scaled(
    values: Sequence[float | None], units: Sequence[tuple[float, str]]
) -> tuple[list[float | None], str]:
    """Values in the largest unit the biggest of them reaches, so ticks stay short."""
    largest = max((abs(v) for v in values if v is not None), default=0.0)
    factor, unit = next(((f, u) for f, u in units if largest >= f), units[-1])
    return [None if v is None else v / factor for v in values], unit


def _label(name: Any) -> str:
    """A name as a chart label: cut to :data:`LABEL_CHARS`, ``$`` kept literal (no math)."""
    text = str(name)
    if len(text) > LABEL_CHARS:
        text = text[: LABEL_CHARS - 1] + "…"
    return text.replace("$", r"\$")


def _figure(width_in: float, height_in: float, columns: int = 1) -> tuple[Figure, list[Axes]]:
    figure = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasSVG(figure)
    axes = figure.subplots(1, columns, squeeze=False, sharey=columns > 1)[0]
    return figure, list(axes)


def _svg(figure: Figure) -> str:
    """The figure as an SVG document: no date, so the output depends only on the data."""
    buffer = io.StringIO()
    with warnings.catch_warnings():
        # A name in a script DejaVu lacks is still written as text; the viewer's fonts draw it.
        warnings.filterwarnings(
            "ignore", message=r"Glyph \d+ .* missing from", category=UserWarning
        )
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return buffer.getvalue()


def _height(bars: int) -> float:
    return 1.0 + 0.28 * bars


def _top(
    rows: Sequence[Mapping[str, Any]], keys: Sequence[str], name: str = "name"
) -> list[tuple[str, list[float | None]]]:
    """The first :data:`TOP_GROUPS` rows (in the order given) and the rest summed as "other"."""
    picked = [(_label(row[name]), [row.get(key) for key in keys]) for row in rows[:TOP_GROUPS]]
    rest = rows[TOP_GROUPS:]
    if rest:
        sums: list[float | None] = []
        for key in keys:
            known = [float(row[key]) for row in rest if row.get(key) is not None]
            sums.append(math.fsum(known) if known else None)
        picked.append((f"other ({len(rest)})", sums))
    return picked


def _bars(axes: Axes, labels: Sequence[str], values: Sequence[float | None], colour: str) -> None:
    positions = range(len(labels))
    axes.barh(positions, [v if v is not None else 0.0 for v in values], color=colour)
    axes.set_yticks(list(positions), labels=list(labels))
    axes.invert_yaxis()
    axes.xaxis.set_major_locator(MaxNLocator(5))
    for position, value in zip(positions, values, strict=True):
        if value is None:
            axes.annotate(
                "no figure",
                (0, position),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
                color="#666666",
            )


def groups_chart(breakdown: Mapping[str, Any]) -> str | None:
    """Energy (kWh) and location-based CO2e (kg) per group of the breakdown, largest first."""
    groups = [g for g in breakdown.get("groups") or () if g.get("energy_j") is not None]
    if not groups:
        return None
    top = _top(groups, ("energy_j", "co2e_g"))
    labels = [name for name, _ in top]
    energy, energy_unit = _scaled([v[0] for _, v in top], _ENERGY_UNITS)
    co2e, co2e_unit = _scaled([v[1] for _, v in top], _MASS_UNITS)
    has_co2e = any(value is not None for value in co2e)
    with _style():
        figure, axes = _figure(7.0, _height(len(labels)), 2 if has_co2e else 1)
        _bars(axes[0], labels, energy, _BLUE)
        axes[0].set_title(f"Energy ({energy_unit}, IT)")
        if has_co2e:
            _bars(axes[1], labels, co2e, _GREEN)
            axes[1].set_title(f"Location-based CO2e ({co2e_unit})")
        return _svg(figure)


def components_chart(boundary: Mapping[str, Any]) -> str | None:
    """Energy per component (kWh), each bar split by how it was obtained."""
    rows = [
        (str(c.get("component", "")).upper(), c.get("energy_by_provenance_j") or {})
        for c in boundary.get("components") or ()
    ]
    rows = [(name, parts) for name, parts in rows if any(parts.values())]
    if not rows:
        return None
    with _style():
        figure, (axes,) = _figure(7.0, 0.9 + 0.3 * len(rows))
        totals = [math.fsum(float(v or 0.0) for v in parts.values()) for _, parts in rows]
        factor, unit = next(((f, u) for f, u in _ENERGY_UNITS if max(totals) >= f), (1.0, "J"))
        left = [0.0] * len(rows)
        for provenance, colour in _PROVENANCE_COLOURS:
            widths = [float(parts.get(provenance) or 0.0) / factor for _, parts in rows]
            if any(widths):
                axes.barh(range(len(rows)), widths, left=left, color=colour, label=provenance)
                left = [a + b for a, b in zip(left, widths, strict=True)]
        axes.set_yticks(range(len(rows)), labels=[name for name, _ in rows])
        axes.invert_yaxis()
        axes.set_title(f"Energy by component and provenance ({unit})")
        axes.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
        return _svg(figure)


def hardware_chart(efficiency: Mapping[str, Any]) -> str | None:
    """Energy per FLOP (pJ) of each hardware that counted FLOPs."""
    rows = [h for h in efficiency.get("by_hardware") or () if h.get("j_per_flop") is not None]
    if not rows:
        return None
    top = _top(sorted(rows, key=lambda h: -float(h["flops"] or 0.0)), ("j_per_flop",), "hardware")
    if len(rows) > TOP_GROUPS:
        top = top[:TOP_GROUPS]  # a sum of ratios means nothing: drop the "other" bar
    with _style():
        figure, (axes,) = _figure(7.0, _height(len(top)))
        _bars(axes, [n for n, _ in top], [float(v[0] or 0.0) * 1e12 for _, v in top], _BLUE)
        axes.set_title("Energy per FLOP (pJ), lower is better")
        return _svg(figure)


def compression_chart(efficiency: Mapping[str, Any]) -> str | None:
    """Energy per inference (J) against mean accuracy, one point per compression setting."""
    points = [
        c
        for c in efficiency.get("by_compression") or ()
        if c.get("j_per_inference") is not None and c.get("accuracy") is not None
    ][: TOP_GROUPS * 2]
    if not points:
        return None
    with _style():
        figure, (axes,) = _figure(7.0, 3.2)
        axes.grid(axis="y")
        x = [float(p["j_per_inference"]) for p in points]
        y = [float(p["accuracy"]) for p in points]
        axes.scatter(x, y, color=_BLUE, zorder=3)
        for point, px, py in zip(points, x, y, strict=True):
            name = _label(f"{point.get('project')}: {point.get('compression')}")
            axes.annotate(name, (px, py), xytext=(4, 3), textcoords="offset points", fontsize=7)
        axes.set_xlabel("Energy per inference (J)")
        axes.set_ylabel("Accuracy (mean of runs)")
        axes.set_title("Inference energy against accuracy, by compression setting")
        return _svg(figure)


def report_charts(report: Mapping[str, Any]) -> list[tuple[str, Chart]]:
    """Every chart the report has data for, with the id of the section it belongs to."""
    made = (
        (
            "breakdown",
            f"Energy and location-based CO2e by {report['breakdown'].get('group_by', 'group')}",
            groups_chart(report["breakdown"]),
        ),
        (
            "scope",
            "Energy by component, measured or estimated",
            components_chart(report["boundary"]),
        ),
        ("efficiency", "Energy per FLOP by hardware", hardware_chart(report["efficiency"])),
        (
            "efficiency",
            "Energy per inference against accuracy",
            compression_chart(report["efficiency"]),
        ),
    )
    return [(section, Chart(title, svg)) for section, title, svg in made if svg is not None]
