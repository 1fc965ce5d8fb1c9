"""What both model-card exports state about their runs: checks, GPU figures, provenance.

The exports (:mod:`carbon.reports.modelcard`, :mod:`carbon.reports.modelcard_llama`) are
built from run summaries (:func:`carbon.store.summary.run_summary`, or the same shape from
the team server), so they state what ``carbon runs show`` states, with how each figure was
obtained. Several runs describe one model trained in several runs. A run without a
location-based CO2e (tracked without a region) is refused, never counted as 0; a figure
that is not known is ``None`` here, never 0. The versions named are those of carbon that
recorded each run (the summary's ``carbon_version``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from carbon.errors import ConfigError

__all__ = [
    "check_runs",
    "distinct",
    "energy_methods",
    "gpu_count",
    "gpu_hours",
    "gpu_power_w",
    "gpu_seconds",
    "intensity_text",
    "pue_text",
    "short_id",
    "simulated_note",
    "versions",
]

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


# --- figures of one run -----------------------------------------------------------------


def gpu_count(summary: Mapping[str, Any]) -> int:
    """Number of GPUs the run measured: its devices of component ``gpu``."""
    return sum(1 for device in summary["devices"] if device["component"] == "gpu")


def gpu_seconds(summary: Mapping[str, Any]) -> float | None:
    """GPU-seconds of the run: GPUs x duration; ``None`` while its duration is unknown."""
    duration_s = summary["duration_s"]
    return None if duration_s is None else gpu_count(summary) * float(duration_s)


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
    gpu_s = gpu_seconds(summary)
    if energy_j is None or not gpu_s:
        return None
    return float(energy_j / gpu_s)


def short_id(summary: Mapping[str, Any]) -> str:
    """The run's id cut to 8 characters, as the exports name runs."""
    return str(summary["id"])[:8]


def check_runs(summaries: Sequence[Mapping[str, Any]]) -> None:
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


def distinct(values: Iterable[str]) -> list[str]:
    """The values in first-seen order, each once."""
    return list(dict.fromkeys(values))


def energy_methods(summaries: Sequence[Mapping[str, Any]]) -> str:
    """``GPU energy from the NVML energy counter (measured); CPU energy from ...``."""
    parts = []
    for component in _COMPONENTS:
        ways = distinct(
            f"{_METHOD_WORDS.get(device['method'], device['method'])} ({device['provenance']})"
            for summary in summaries
            for device in summary["devices"]
            if device["component"] == component
        )
        if ways:
            parts.append(f"{component.upper()} energy from {' and '.join(ways)}")
    return "; ".join(parts) if parts else "no device energy recorded"


def intensity_text(summary: Mapping[str, Any]) -> str:
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


def pue_text(summary: Mapping[str, Any]) -> str:
    """``PUE 1.2 (given)``: the run's PUE and where it came from."""
    return f"PUE {float(summary['pue'])} ({summary['pue_source'] or 'given'})"


def simulated_note(summaries: Sequence[Mapping[str, Any]]) -> str | None:
    """Which runs' GPU figures come from a simulated GPU; ``None`` when none do."""
    simulated = [short_id(s) for s in summaries if s.get("simulated")]
    if not simulated:
        return None
    return f"GPU figures of run(s) {', '.join(simulated)} come from a simulated GPU, not hardware"


def versions(summaries: Sequence[Mapping[str, Any]]) -> str:
    """``carbon 0.4.0, 0.5.0``: the versions of carbon that recorded the runs."""
    names = distinct(str(s["carbon_version"]) for s in summaries if s.get("carbon_version"))
    return f"carbon {', '.join(names)}" if names else "carbon (recording version unknown)"
