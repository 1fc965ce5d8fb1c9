"""Model-card exports of stored runs: Hugging Face metadata and a Llama-style table.

Both are built from run summaries (:func:`carbon.store.summary.run_summary`, or the same
shape from the team server), so they state what ``carbon runs show`` states, with how each
figure was obtained:

- :func:`hf_model_card` gives the ``co2_eq_emissions`` block of a Hugging Face model card's
  front matter (``emissions`` in grams of CO2e, location-based, with its ``source``);
- :func:`llama_table` gives a Markdown table like the one in Meta's Llama model cards: GPU
  hours, the average power per GPU computed from the GPUs' energy (not their TDP), and the
  location-based and market-based emissions in tonnes, with a ``Total`` row and notes.

Several runs describe one model trained in several runs: emissions are summed. A run
without a location-based CO2e (tracked without a region) is refused, never counted as 0;
a figure that is not known is left out or shown as ``n/a``, never as 0. ``source`` names
the version of carbon that recorded each run (the summary's ``carbon_version``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from carbon.errors import ConfigError
from carbon.units import G_PER_KG

__all__ = [
    "G_PER_T",
    "LLAMA_COLUMNS",
    "NOT_AVAILABLE",
    "gpu_count",
    "gpu_hours",
    "gpu_power_w",
    "hf_co2_eq_emissions",
    "hf_model_card",
    "llama_table",
]

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

_S_PER_H = 3_600.0
_COMPONENTS = ("gpu", "cpu", "ram")
_METHOD_WORDS = {
    "nvml_counter": "the NVML energy counter",
    "nvml_power": "NVML power readings",
    "rapl": "RAPL energy counters",
    "tdp_estimate": "TDP x utilization",
    "ram_estimate": "a per-DIMM power model",
}
"""How each of carbon's energy methods reads in a sentence; others appear by their name."""

_MIN_T_DECIMALS = 6
"""Tonnes to the gram at least; more where a figure would otherwise show fewer than two digits."""
_MIN_HOUR_DECIMALS = 2


# --- figures of one run -----------------------------------------------------------------


def gpu_count(summary: Mapping[str, Any]) -> int:
    """Number of GPUs the run measured: its devices of component ``gpu``."""
    return sum(1 for device in summary["devices"] if device["component"] == "gpu")


def gpu_hours(summary: Mapping[str, Any]) -> float | None:
    """GPU-hours of the run: GPUs x duration; ``None`` while its duration is unknown."""
    duration_s = summary["duration_s"]
    if duration_s is None:
        return None
    return gpu_count(summary) * float(duration_s) / _S_PER_H


def gpu_power_w(summary: Mapping[str, Any]) -> float | None:
    """Average power per GPU over the run, watts: GPU energy / GPU-seconds.

    This is what the GPUs drew as recorded (not their TDP). ``None`` for a run without GPUs,
    without GPU energy or without a duration.
    """
    energy_j = summary["energy_by_component_j"]["gpu"]
    gpu_s = _gpu_seconds(summary)
    if energy_j is None or not gpu_s:
        return None
    return float(energy_j / gpu_s)


def _gpu_seconds(summary: Mapping[str, Any]) -> float | None:
    duration_s = summary["duration_s"]
    return None if duration_s is None else gpu_count(summary) * float(duration_s)


def _short(summary: Mapping[str, Any]) -> str:
    return str(summary["id"])[:8]


def _checked(summaries: Sequence[Mapping[str, Any]]) -> None:
    """Refuse no runs, a run given twice, and a run without location-based CO2e.

    Raises:
        ConfigError: The message names the run and how to give it a CO2e.
    """
    if not summaries:
        raise ConfigError("no run to export: give one or more run ids")
    seen: set[str] = set()
    for summary in summaries:
        if summary["id"] in seen:
            raise ConfigError(f"run {summary['id']} is given twice: its emissions count once")
        seen.add(summary["id"])
    for summary in summaries:
        if summary["co2e_g"] is None:
            raise ConfigError(_no_co2e(summary))


def _no_co2e(summary: Mapping[str, Any]) -> str:
    """Why a run has no CO2e, and what gives it one."""
    run = f"run {summary['id']} ({summary['project']}/{summary['name']})"
    whatif = f"`carbon whatif {summary['id']} --region R` gives this run's CO2e in a region"
    if summary["energy_j"] is None:
        return f"{run} has no CO2e: no energy was recorded for it"
    if summary["region"] is None:
        return (
            f"{run} has no CO2e: it was tracked without a region, so no grid intensity "
            f"applies. Set CARBON_REGION (or track(region=...)) for the runs to come; {whatif}"
        )
    return f"{run} has no CO2e: no grid intensity was recorded for {summary['region']}; {whatif}"


# --- how the figures were obtained ------------------------------------------------------


def _distinct(values: Iterable[str]) -> list[str]:
    """The values in first-seen order, each once."""
    return list(dict.fromkeys(values))


def _energy_methods(summaries: Sequence[Mapping[str, Any]]) -> str:
    """``GPU energy from the NVML energy counter (measured); CPU energy from ...``."""
    parts = []
    for component in _COMPONENTS:
        ways = _distinct(
            f"{_METHOD_WORDS.get(device['method'], device['method'])} ({device['provenance']})"
            for summary in summaries
            for device in summary["devices"]
            if device["component"] == component
        )
        if ways:
            parts.append(f"{component.upper()} energy from {' and '.join(ways)}")
    return "; ".join(parts) if parts else "no device energy recorded"


def _intensity_text(summary: Mapping[str, Any]) -> str:
    """The grid factor of a run: its zone, where the factor came from, any fallback."""
    zone = summary["intensity_zone"] or summary["region"]
    if summary["co2e_method"] == "hourly":
        text = (
            f"zone {zone}, hour by hour from an imported intensity series (hours it lacks at "
            f"{summary['intensity_source']})"
        )
    else:
        text = f"zone {zone}, {summary['intensity_source']}"
    if summary["intensity_fallback"]:
        text += f" (fallback: {summary['intensity_fallback_reason']})"
    return text


def _pue_text(summary: Mapping[str, Any]) -> str:
    return f"PUE {float(summary['pue'])} ({summary['pue_source'] or 'given'})"


def _grouped(
    summaries: Sequence[Mapping[str, Any]], describe: Callable[[Mapping[str, Any]], str]
) -> list[tuple[str, list[str]]]:
    """Each distinct description with the short ids of the runs it describes."""
    groups: dict[str, list[str]] = {}
    for summary in summaries:
        groups.setdefault(describe(summary), []).append(_short(summary))
    return list(groups.items())


def _simulated_note(summaries: Sequence[Mapping[str, Any]]) -> str | None:
    simulated = [_short(s) for s in summaries if s.get("simulated")]
    if not simulated:
        return None
    return f"GPU figures of run(s) {', '.join(simulated)} come from a simulated GPU, not hardware"


def _versions(summaries: Sequence[Mapping[str, Any]]) -> str:
    versions = _distinct(str(s["carbon_version"]) for s in summaries if s.get("carbon_version"))
    return f"carbon {', '.join(versions)}" if versions else "carbon (recording version unknown)"


def _hardware_label(summary: Mapping[str, Any]) -> str | None:
    """The run's GPUs (``8 x NVIDIA H100 80GB HBM3``), else its CPUs; ``None`` if neither."""
    gpus = [d["name"] for d in summary["devices"] if d["component"] == "gpu"]
    if gpus:
        return ", ".join(f"{gpus.count(name)} x {name}" for name in sorted(set(gpus)))
    cpus = sorted({d["name"] for d in summary["devices"] if d["component"] == "cpu"})
    return ", ".join(cpus) if cpus else None


def _location(summary: Mapping[str, Any]) -> str | None:
    """``FRA (grid zone FRA)``; ``None`` without a region."""
    region = summary["region"]
    if region is None:
        return None
    zone = summary["intensity_zone"]
    return f"{region} (grid zone {zone})" if zone else str(region)


# --- Hugging Face -----------------------------------------------------------------------


def hf_co2_eq_emissions(
    summaries: Sequence[Mapping[str, Any]], *, training_type: str | None = None
) -> dict[str, Any]:
    """The ``co2_eq_emissions`` mapping of a Hugging Face model card for these runs.

    Keys, in this order: ``emissions`` (grams CO2e, location-based, summed over the runs),
    ``source`` (carbon's version, the run ids, how energy, intensity and PUE were obtained),
    then ``training_type``, ``geographical_location`` and ``hardware_used`` where known;
    an unknown one is left out rather than guessed.

    Args:
        summaries: Run summaries of one model's training, in the order to list them.
        training_type: ``pre-training``, ``fine-tuning``, ...; ``None`` takes the runs'
            ``training_type`` tags.

    Raises:
        ConfigError: No runs, a run given twice, a run without CO2e, or an empty
            ``training_type``.
    """
    _checked(summaries)
    if training_type is not None and not training_type.strip():
        raise ConfigError("--training-type is empty: give pre-training, fine-tuning, ...")
    ids = ", ".join(str(s["id"]) for s in summaries)
    source = (
        f"{_versions(summaries)}, run(s) {ids}: {_energy_methods(summaries)}; location-based, "
        f"grid intensity {'; '.join(_distinct(_intensity_text(s) for s in summaries))}; "
        + "; ".join(_distinct(_pue_text(s) for s in summaries))
    )
    simulated = _simulated_note(summaries)
    if simulated:
        source += f"; SIMULATED: {simulated}"
    block: dict[str, Any] = {
        "emissions": math.fsum(float(s["co2e_g"]) for s in summaries),
        "source": source,
    }
    tagged = _distinct(
        tag.strip()
        for s in summaries
        if isinstance(tag := (s["tags"] or {}).get("training_type"), str) and tag.strip()
    )
    if training_type is not None:
        block["training_type"] = training_type.strip()
    elif tagged:
        block["training_type"] = ", ".join(tagged)
    locations = _distinct(loc for s in summaries if (loc := _location(s)) is not None)
    if locations:
        block["geographical_location"] = "; ".join(locations)
    hardware = _distinct(label for s in summaries if (label := _hardware_label(s)) is not None)
    if hardware:
        block["hardware_used"] = "; ".join(hardware)
    return block


def hf_model_card(
    summaries: Sequence[Mapping[str, Any]], *, training_type: str | None = None
) -> str:
    """The runs' ``co2_eq_emissions`` block as YAML, ready for a model card's front matter.

    The text is one top-level mapping (no ``---`` fences), so it can be pasted between the
    fences of an existing front matter. Strings are double-quoted and numbers written in
    full (never in exponent form, which YAML 1.1 readers take for a string).

    Args:
        summaries: Run summaries of one model's training.
        training_type: See :func:`hf_co2_eq_emissions`.

    Raises:
        ConfigError: See :func:`hf_co2_eq_emissions`.
    """
    block = hf_co2_eq_emissions(summaries, training_type=training_type)
    lines = ["co2_eq_emissions:"]
    for key, value in block.items():
        text = _yaml_number(value) if isinstance(value, float) else _yaml_string(str(value))
        lines.append(f"  {key}: {text}")
    return "\n".join(lines) + "\n"


def _yaml_number(value: float) -> str:
    """A float in positional notation with a decimal point (``0.00001``, ``7.0``)."""
    if not math.isfinite(value):
        raise ValueError(f"{value} cannot be a model card's emissions")
    text = format(Decimal(repr(value)), "f")
    return text if "." in text else f"{text}.0"


def _yaml_string(value: str) -> str:
    """A YAML double-quoted scalar: JSON's escapes, and any other unprintable character."""
    quoted = json.dumps(value, ensure_ascii=False)
    return "".join(char if char.isprintable() else _escape(char) for char in quoted)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


# --- Llama table ------------------------------------------------------------------------


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
    seconds = [_gpu_seconds(s) for s in with_gpus]
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
    _checked(summaries)
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
            row(f"{_short(s)} {s['project']}/{s['name']}", (h, p, loc, mkt))
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
        f"not the GPUs' TDP. Energy as recorded by {_versions(summaries)}: "
        f"{_energy_methods(summaries)}.",
    ]
    no_power = [_short(s) for s, p in zip(summaries, power, strict=True) if p is None]
    if no_power:
        notes.append(
            f"Power is {NOT_AVAILABLE} for run(s) {', '.join(no_power)}: no GPU, "
            "or no GPU energy, was recorded."
        )
    simulated = _simulated_note(summaries)
    if simulated:
        notes.append(f"{simulated}.")
    factors = "; ".join(
        f"{text} (run(s) {', '.join(ids)})"
        for text, ids in _grouped(summaries, lambda s: f"{_intensity_text(s)}, {_pue_text(s)}")
    )
    notes.append(f"Location-based: energy x PUE x grid intensity; {factors}.")
    with_market = [s for s in summaries if s["co2e_market_g"] is not None]
    if with_market:
        contracts = "; ".join(
            f"{text} (run(s) {', '.join(ids)})"
            for text, ids in _grouped(with_market, lambda s: str(s["market_source"]))
        )
        notes.append(f"Market-based: {contracts}.")
    without = [_short(s) for s in summaries if s["co2e_market_g"] is None]
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
