"""Emissions by GHG Protocol scope, and the method and provenance behind every figure.

Scope 2 is reported twice, never netted: location-based (grid-average factors, each with
its dataset, zone and year) and market-based (contractual instruments the team recorded).
Embodied hardware emissions are Scope 3 and stand on their own line. The methodology lists
what an auditor needs to reproduce the figures: versions, sampling, methods, data sources
with their licences, PUE, and every fallback with the runs it touched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from carbon._format import format_mass_g
from carbon._version import __version__
from carbon.reports.collect import ReportRun
from carbon.reports.totals import fsum_known
from carbon.units import J_PER_KWH

__all__ = ["LISTED_RUNS", "emissions", "methodology"]

LISTED_RUNS = 20
"""Most run ids a fallback or warning lists by name; the rest are counted."""

UNCERTAINTIES = (
    "GPU energy from NVML's energy counter is the board's own accounting; power read from "
    "NVML and integrated over time samples a short averaging window and can be off for short "
    "or bursty work (Yang et al., SC'24). Each run's methods are in the appendix.",
    "CPU and memory figures labelled 'estimated' come from models (TDP x load, power per "
    "DIMM), not meters; they can be off by tens of percent on a given machine.",
    "Yearly average grid factors describe a zone's average hour, not the hours a run drew "
    "energy; runs priced with an hourly series say so (method 'hourly').",
    "PUE is the figure the run was configured with or its cloud provider publishes; it is "
    "not measured by carbon.",
    "Embodied factors are published estimates for one GPU model, amortised over an assumed "
    "lifetime and use rate; other hardware has none and is not counted.",
    "FLOPs are as the run reported them (counted by torch, or from a formula); MFU uses the "
    "catalog's dense peak for the run's precision.",
)


def _rows(
    runs: Sequence[ReportRun], key: Callable[[dict[str, Any]], tuple[Any, ...] | None]
) -> list[tuple[tuple[Any, ...], list[dict[str, Any]]]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for run in runs:
        k = key(run.summary)
        if k is not None:
            groups.setdefault(k, []).append(run.summary)
    return sorted(groups.items(), key=lambda item: tuple(str(v) for v in item[0]))


def _ids(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    ids = [str(s["id"]) for s in summaries]
    return {"runs": len(ids), "run_ids": ids[:LISTED_RUNS]}


def _coverage(
    runs: Sequence[ReportRun], field: str
) -> tuple[float | None, int, list[dict[str, Any]], float | None]:
    """The total of a CO2e field, the runs it covers, and the runs and energy it leaves out."""
    total_g, count = fsum_known(run.summary[field] for run in runs)
    left_out = [run.summary for run in runs if run.summary[field] is None]
    left_out_j, _ = fsum_known(s["energy_j"] for s in left_out)
    return total_g, count, left_out, left_out_j


def _location(runs: Sequence[ReportRun]) -> dict[str, Any]:
    factors = []
    for (zone, source, year, factor_type, fallback), members in _rows(
        runs,
        lambda s: (
            (
                s["intensity_zone"],
                s["intensity_source"],
                s["intensity_year"],
                s["intensity_factor_type"],
                bool(s["intensity_fallback"]),
            )
            if s["co2e_g"] is not None
            else None
        ),
    ):
        energy_j, _ = fsum_known(s["energy_j"] for s in members)
        facility_j, _ = fsum_known(
            s["energy_j"] * s["pue"] for s in members if s["energy_j"] is not None
        )
        co2e_g, _ = fsum_known(s["co2e_g"] for s in members)
        intensities = [s["intensity_g_per_kwh"] for s in members if s["intensity_g_per_kwh"]]
        factors.append(
            {
                "zone": zone,
                "source": source,
                "year": year,
                "factor_type": factor_type,
                "fallback": fallback,
                "intensity_g_per_kwh": min(intensities) if intensities else None,
                "intensity_max_g_per_kwh": max(intensities) if intensities else None,
                "methods": dict(Counter(str(s["co2e_method"]) for s in members)),
                "energy_j": energy_j,
                "co2e_g": co2e_g,
                "effective_g_per_kwh": (
                    co2e_g / (facility_j / J_PER_KWH) if co2e_g is not None and facility_j else None
                ),
                "runs": len(members),
            }
        )
    co2e_g, count, missing, missing_j = _coverage(runs, "co2e_g")
    return {
        "co2e_g": co2e_g,
        "runs": count,
        "factors": factors,
        "runs_without_factor": _ids(missing),
        "energy_without_factor_j": missing_j,
    }


def _market(runs: Sequence[ReportRun]) -> dict[str, Any]:
    instruments = []
    for (source,), members in _rows(
        runs, lambda s: (s["market_source"],) if s["co2e_market_g"] is not None else None
    ):
        energy_j, _ = fsum_known(s["energy_j"] for s in members)
        co2e_g, _ = fsum_known(s["co2e_market_g"] for s in members)
        instruments.append(
            {"source": source, "runs": len(members), "energy_j": energy_j, "co2e_g": co2e_g}
        )
    co2e_g, count, uncovered, uncovered_j = _coverage(runs, "co2e_market_g")
    return {
        "co2e_g": co2e_g,
        "runs": count,
        "instruments": instruments,
        "runs_without_instrument": _ids(uncovered),
        "energy_without_instrument_j": uncovered_j,
    }


def _embodied(runs: Sequence[ReportRun]) -> dict[str, Any]:
    sources = []
    for (source,), members in _rows(
        runs, lambda s: (s["embodied_source"],) if s["embodied_g"] is not None else None
    ):
        co2e_g, _ = fsum_known(s["embodied_g"] for s in members)
        sources.append({"source": source, "runs": len(members), "co2e_g": co2e_g})
    unknown = [run.summary for run in runs if run.gpu_count and run.summary["embodied_g"] is None]
    co2e_g, count = fsum_known(run.summary["embodied_g"] for run in runs)
    return {
        "co2e_g": co2e_g,
        "runs": count,
        "sources": sources,
        "runs_without_factor": _ids(unknown),
        "reasons": sorted({str(s["embodied_source"]) for s in unknown if s["embodied_source"]}),
    }


def _statement(location: dict[str, Any], market: dict[str, Any], embodied: dict[str, Any]) -> str:
    """The dual-reporting statement, in words, from the figures above it."""
    parts = [
        f"Scope 2, location-based: {format_mass_g(location['co2e_g'])} CO2e for the "
        f"{location['runs']} runs priced with a grid factor"
        + (
            f"; {location['runs_without_factor']['runs']} runs have no region and no figure."
            if location["runs_without_factor"]["runs"]
            else "."
        ),
    ]
    if market["runs"]:
        parts.append(
            f"Scope 2, market-based: {format_mass_g(market['co2e_g'])} CO2e for the "
            f"{market['runs']} runs covered by the contractual instruments listed; "
            f"{market['runs_without_instrument']['runs']} runs have no instrument recorded "
            "and are not in the market-based figure, which therefore covers less than the "
            "location-based one."
        )
    else:
        parts.append(
            "Scope 2, market-based: not reported; no contractual instrument (energy attribute "
            "certificate, supplier-specific factor) was recorded for any run in the period."
        )
    parts.append(
        "The two Scope 2 figures are reported side by side and neither is netted into the "
        "other; no offsets are subtracted."
    )
    if embodied["runs"]:
        parts.append(
            f"Scope 3, embodied hardware: {format_mass_g(embodied['co2e_g'])} CO2e, reported "
            "apart and included in neither Scope 2 figure."
        )
    return " ".join(parts)


def emissions(runs: Sequence[ReportRun]) -> dict[str, Any]:
    """Scope 2 location- and market-based with their factors and instruments, and Scope 3.

    Returns:
        ``location`` (total, covered runs, one row per factor: zone, source, year, type,
        fallback, energy and CO2e), ``market`` (total, one row per instrument, runs not
        covered), ``embodied`` (total, sources, GPUs without a factor) and ``statement``.
    """
    location = _location(runs)
    market = _market(runs)
    embodied = _embodied(runs)
    return {
        "location": location,
        "market": market,
        "embodied": embodied,
        "statement": _statement(location, market, embodied),
    }


def _counts(values: Sequence[Any]) -> list[dict[str, Any]]:
    return [{"value": value, "runs": n} for value, n in sorted(Counter(values).items(), key=str)]


def _fallbacks(runs: Sequence[ReportRun]) -> list[dict[str, Any]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        s = run.summary
        if s["intensity_fallback"]:
            reason = s["intensity_fallback_reason"] or "a substitute factor"
            found.setdefault(f"grid intensity: {reason}", []).append(s)
        for device in s["devices"]:
            if device["method"] == "nvml_power":
                found.setdefault(
                    "GPU energy integrated from power readings: no energy counter", []
                ).append(s)
            if device["error"]:
                found.setdefault(
                    f"{device['component']} {device['name']} failed: {device['error']}", []
                ).append(s)
        if s["pue_source"] and "default" in str(s["pue_source"]).lower():
            found.setdefault(f"PUE: {s['pue_source']}", []).append(s)
    rows = []
    for what, members in sorted(found.items()):
        unique = list({str(s["id"]): s for s in members}.values())
        rows.append({"what": what, **_ids(unique)})
    return rows


def methodology(runs: Sequence[ReportRun], *, generated_with: str = __version__) -> dict[str, Any]:
    """How the figures were obtained: enough for a reviewer to check or reproduce them.

    Returns:
        ``carbon_version`` (of the report) and ``run_versions``, ``sample_hz``, FLOP
        methods, ``intensity_sources`` (dataset, file and licence as recorded per run),
        ``pue`` (values and sources), ``fallbacks`` (each with the runs it touched),
        ``warnings`` (the runs' own), and ``uncertainties``.
    """
    summaries = [run.summary for run in runs]
    warnings: dict[str, list[dict[str, Any]]] = {}
    for s in summaries:
        for warning in s["warnings"] or []:
            warnings.setdefault(str(warning), []).append(s)
    return {
        "carbon_version": generated_with,
        "run_versions": _counts([s["carbon_version"] for s in summaries]),
        "sample_hz": _counts([s["sample_hz"] for s in summaries]),
        "flops_methods": _counts([s["flops_method"] or "not reported" for s in summaries]),
        "intensity_sources": _counts(
            [s["intensity_source"] for s in summaries if s["intensity_source"]]
        ),
        "co2e_methods": _counts([s["co2e_method"] for s in summaries if s["co2e_method"]]),
        "pue": [
            {"pue": pue, "source": source, "runs": n}
            for (pue, source), n in sorted(
                Counter((s["pue"], s["pue_source"]) for s in summaries).items(), key=str
            )
        ],
        "fallbacks": _fallbacks(runs),
        "warnings": [{"warning": w, **_ids(members)} for w, members in sorted(warnings.items())],
        "uncertainties": list(UNCERTAINTIES),
    }
