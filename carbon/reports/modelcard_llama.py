"""A Markdown table of stored runs in the layout of Meta's Llama model cards, with notes.

:func:`llama_table` gives GPU hours, the average power per GPU computed from the GPUs'
energy (not their TDP), and the location-based and market-based emissions in tonnes, one
row per run of one model and a ``Total`` row, then notes on how each figure was obtained.
A run without a location-based CO2e is refused, never counted as 0; a figure that is not
known is shown as ``n/a``, never as 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from carbon.reports.modelcard_runs import (
    check_runs,
    energy_methods,
    gpu_count,
    gpu_hours,
    gpu_power_w,
    gpu_seconds,
    intensity_text,
    pue_text,
    short_id,
    simulated_note,
    versions,
)
from carbon.units import G_PER_KG

__all__ = ["G_PER_T", "LLAMA_COLUMNS", "NOT_AVAILABLE", "llama_table"]

G_PER_T = G_PER_KG * 1_000.0
"""Grams per metric tonne: the Llama table gives emissions in tonnes CO2eq."""

NOT_AVAILABLE = "n/a"
"""A table cell whose figure is not known or does not apply (never written as 0)."""

LLAMA_COLUMNS = (
    "Run",
    "Time (GPU hours)",
    "Power Consumption (W)",
    "Location-Based Greenhouse Gas Emissions (tons CO2eq)",
    "Market-Based Greenhouse Gas Emissions (tons CO2eq)",
)
"""Columns of :func:`llama_table`, as Meta's model cards name them."""

_MIN_T_DECIMALS = 6
"""Tonnes to the gram at least; more where a figure would otherwise show fewer than two digits."""
_MIN_HOUR_DECIMALS = 2


def _decimals(values: Iterable[float | None], minimum: int) -> int:
    """Decimals showing the smallest non-zero value with two significant digits at least."""
    smallest = min((abs(v) for v in values if v), default=None)
    if smallest is None:
        return minimum
    return max(minimum, 1 - math.floor(math.log10(smallest)))


def _cell(value: float | None, decimals: int) -> str:
    return NOT_AVAILABLE if value is None else f"{value:,.{decimals}f}"


def _markdown(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _sum_or_none(values: Sequence[float | None]) -> float | None:
    """The sum when every value is known, else ``None``."""
    known = [v for v in values if v is not None]
    return math.fsum(known) if len(known) == len(values) else None


def _total_power_w(summaries: Sequence[Mapping[str, Any]]) -> float | None:
    """GPU energy over GPU-seconds across the runs with GPUs; ``None`` if one lacks either."""
    with_gpus = [s for s in summaries if gpu_count(s)]
    energies = [s["energy_by_component_j"]["gpu"] for s in with_gpus]
    seconds = [gpu_seconds(s) for s in with_gpus]
    energy_j, gpu_s = _sum_or_none(energies), _sum_or_none(seconds)
    return energy_j / gpu_s if energy_j is not None and gpu_s else None


def llama_table(summaries: Sequence[Mapping[str, Any]]) -> str:
    """The runs as a Markdown table in the layout of Meta's Llama model cards, with notes.

    One row per run and a ``Total`` row summed from the unrounded figures. Emissions are in
    tonnes CO2eq, to the gram at least (more decimals where a run is so small that a figure
    would show fewer than two digits), the same for every cell. ``Power Consumption`` is the
    average power per GPU from the GPUs' recorded energy (GPU energy / GPU-seconds), not
    their TDP. Market-based cells are ``n/a`` for a run without a contractual instrument;
    the total is then ``n/a`` too, as a sum over some runs would read as the model's. The
    notes under the table give the energy methods, grid factors, PUE and contracts.

    Args:
        summaries: Run summaries of one model's training, in the order of the rows.

    Raises:
        ConfigError: No runs, a run given twice, or a run without CO2e.
    """
    check_runs(summaries)
    hours = [gpu_hours(s) for s in summaries]
    power = [gpu_power_w(s) for s in summaries]
    location_t = [float(s["co2e_g"]) / G_PER_T for s in summaries]
    market_t = [
        None if s["co2e_market_g"] is None else float(s["co2e_market_g"]) / G_PER_T
        for s in summaries
    ]
    totals = (
        _sum_or_none(hours),
        _total_power_w(summaries),
        math.fsum(location_t),
        _sum_or_none(market_t),
    )
    hour_decimals = _decimals([*hours, totals[0]], _MIN_HOUR_DECIMALS)
    t_decimals = _decimals([*location_t, *market_t, totals[2], totals[3]], _MIN_T_DECIMALS)

    def row(label: str, values: tuple[float | None, float | None, float, float | None]) -> str:
        cells = [
            _markdown(label),
            _cell(values[0], hour_decimals),
            _cell(values[1], 1),
            _cell(values[2], t_decimals),
            _cell(values[3], t_decimals),
        ]
        return "| " + " | ".join(cells) + " |"

    lines = [
        "| " + " | ".join(LLAMA_COLUMNS) + " |",
        "|---|---:|---:|---:|---:|",
        *(
            row(f"{short_id(s)} {s['project']}/{s['name']}", (h, p, loc, mkt))
            for s, h, p, loc, mkt in zip(summaries, hours, power, location_t, market_t, strict=True)
        ),
        row("Total", totals),
        "",
        *(f"- {note}" for note in _llama_notes(summaries, power)),
    ]
    return "\n".join(lines) + "\n"


def _llama_notes(
    summaries: Sequence[Mapping[str, Any]], power: Sequence[float | None]
) -> list[str]:
    """What each column is and how its figures were obtained."""
    gpu_provenance = {
        device["provenance"]
        for summary in summaries
        for device in summary["devices"]
        if device["component"] == "gpu"
    }
    measured = gpu_provenance <= {"measured", "integrated"}
    how = "measured" if measured and not any(s.get("simulated") for s in summaries) else "recorded"
    notes = [
        "Time is GPU hours: the run's GPUs x its duration.",
        f"Power Consumption is the {how} average power per GPU, GPU energy / GPU-seconds, "
        f"not the GPUs' TDP. Energy as recorded by {versions(summaries)}: "
        f"{energy_methods(summaries)}.",
    ]
    no_power = [short_id(s) for s, p in zip(summaries, power, strict=True) if p is None]
    if no_power:
        notes.append(
            f"Power is {NOT_AVAILABLE} for run(s) {', '.join(no_power)}: no GPU, "
            "or no GPU energy, was recorded."
        )
    simulated = simulated_note(summaries)
    if simulated:
        notes.append(f"{simulated}.")
    factors = "; ".join(
        f"{text} (run(s) {', '.join(ids)})"
        for text, ids in _grouped(summaries, lambda s: f"{intensity_text(s)}, {pue_text(s)}")
    )
    notes.append(f"Location-based: energy x PUE x grid intensity; {factors}.")
    with_market = [s for s in summaries if s["co2e_market_g"] is not None]
    if with_market:
        contracts = "; ".join(
            f"{text} (run(s) {', '.join(ids)})"
            for text, ids in _grouped(with_market, lambda s: str(s["market_source"]))
        )
        notes.append(f"Market-based: {contracts}.")
    without = [short_id(s) for s in summaries if s["co2e_market_g"] is None]
    if without:
        notes.append(
            f"Market-based is {NOT_AVAILABLE} for run(s) {', '.join(without)}: no contractual "
            "instrument (supplier factor, PPA or certificates) was recorded for them "
            "(`carbon market add`)"
            + (", so there is no market-based total." if len(without) < len(summaries) else ".")
        )
    notes.append(
        "Emissions are in tonnes CO2eq (1 t = 1,000,000 g); the Total row is summed from "
        "unrounded figures."
    )
    return notes


def _grouped(
    summaries: Sequence[Mapping[str, Any]], describe: Callable[[Mapping[str, Any]], str]
) -> list[tuple[str, list[str]]]:
    """Each distinct description with the short ids of the runs it describes."""
    groups: dict[str, list[str]] = {}
    for summary in summaries:
        groups.setdefault(describe(summary), []).append(short_id(summary))
    return list(groups.items())
