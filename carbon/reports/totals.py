"""The report's summary and its scope and boundary: what the period adds up to, and how.

Totals are exact sums (:func:`math.fsum`) of the runs' stored figures, so they do not
depend on the order runs are read in and agree with the store's SQL sums to far below a
gram. A total that no run has is ``None``, and every total says how many runs it covers:
a run without a region has no CO2e, which must not read as zero emissions.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from carbon.reports.collect import ReportRun
from carbon.reports.request import ReportRequest
from carbon.store.overview import PeriodTotals
from carbon.units import J_PER_KWH

__all__ = ["boundary", "change", "estimated_share", "fsum_known", "summary"]

COMPONENTS = ("gpu", "cpu", "ram")

METHODS: dict[str, tuple[str, str]] = {
    "nvml_counter": (
        "per GPU board",
        "GPU board energy read from NVML's cumulative energy counter "
        "(nvmlDeviceGetTotalEnergyConsumption) at each interval",
    ),
    "nvml_power": (
        "per GPU board",
        "GPU board power read from NVML (nvmlDeviceGetPowerUsage) and integrated over time; "
        "used where the GPU has no energy counter",
    ),
    "rapl": (
        "per CPU package (and DRAM where exposed)",
        "CPU package energy from RAPL counters (powercap energy_uj); counts every process "
        "on the package, not only the run's",
    ),
    "tdp_estimate": (
        "the CPUs the process may run on",
        "a model, not a measurement: TDP x share of CPUs x (0.1 + 0.9 x load^3), "
        "codecarbon's CPU model, where RAPL cannot be read",
    ),
    "ram_estimate": (
        "the machine's installed memory",
        "a model, not a measurement: a fixed power per estimated DIMM (codecarbon's RAM "
        "model), charged whole to the run",
    ),
}
"""What each energy method measures or models, and the boundary it draws."""

INCLUDED = (
    "Energy drawn by the GPUs, CPUs and memory of each tracked run, from its start to its "
    "end, per component as the methods below say.",
    "Data-centre overhead (cooling, power distribution) through each run's PUE factor, in "
    "CO2e and facility energy only; IT energy is before PUE.",
)
EXCLUDED = (
    "Idle time of the hardware outside tracked runs, and work that was not tracked.",
    "Network equipment, storage systems, and the rest of the server (fans, disks, NICs, "
    "power-supply losses) beyond what PUE covers.",
    "Data transfer, data preparation and experiments run outside carbon.",
    "Embodied emissions of CPUs, memory, servers and buildings (only GPUs have a "
    "manufacturing factor; see Emissions).",
)


def fsum_known(values: Iterable[float | None]) -> tuple[float | None, int]:
    """The exact sum of the known values and how many there were; ``None`` when none."""
    known = [value for value in values if value is not None]
    return (math.fsum(known), len(known)) if known else (None, 0)


def _kwh(energy_j: float | None) -> float | None:
    return None if energy_j is None else energy_j / J_PER_KWH


def _ratio(now: float | None, before: float | None) -> float | None:
    """Relative change from ``before`` to ``now``; ``None`` when either is unknown or 0."""
    if now is None or before is None or before == 0:
        return None
    return now / before - 1.0


def change(now: dict[str, Any], before: PeriodTotals) -> dict[str, float | None]:
    """Relative change of each headline total against the previous period's SQL sums."""
    return {
        "runs": _ratio(float(now["runs"]), float(before.runs)),
        "energy_j": _ratio(now["energy_j"], before.energy_j),
        "co2e_g": _ratio(now["co2e_g"], before.co2e_g),
        "co2e_market_g": _ratio(now["co2e_market_g"], before.co2e_market_g),
        "gpu_hours": _ratio(now["gpu_hours"], before.gpu_hours),
    }


def estimated_share(runs: Sequence[ReportRun]) -> float | None:
    """Share of the devices' energy that comes from a model rather than hardware readings."""
    total = math.fsum(e for run in runs for e in run.energy_by_provenance_j.values())
    if total <= 0:
        return None
    estimated = math.fsum(run.energy_by_provenance_j.get("estimated", 0.0) for run in runs)
    return estimated / total


def summary(
    runs: Sequence[ReportRun],
    request: ReportRequest,
    previous: PeriodTotals | None,
) -> dict[str, Any]:
    """The headline totals, with the change against the previous period of the same length.

    Returns:
        ``runs``, ``energy_j``/``energy_kwh`` (IT energy), ``facility_energy_kwh`` (x PUE),
        location-based ``co2e_g``, ``co2e_market_g`` and ``embodied_g`` each with the number
        of runs it covers, ``gpu_hours``, ``estimated_share``, runs by status, simulated
        runs, and ``previous``/``change`` (``None`` for an open period).
    """
    summaries = [run.summary for run in runs]
    energy_j, energy_runs = fsum_known(s["energy_j"] for s in summaries)
    facility_j, _ = fsum_known(
        s["energy_j"] * s["pue"] for s in summaries if s["energy_j"] is not None
    )
    co2e_g, co2e_runs = fsum_known(s["co2e_g"] for s in summaries)
    market_g, market_runs = fsum_known(s["co2e_market_g"] for s in summaries)
    embodied_g, embodied_runs = fsum_known(s["embodied_g"] for s in summaries)
    gpu_runs = sum(1 for run in runs if run.gpu_count)
    gpu_hours, _ = fsum_known(run.gpu_hours for run in runs)
    result: dict[str, Any] = {
        "runs": len(runs),
        "runs_by_status": dict(sorted(Counter(s["status"] for s in summaries).items())),
        "simulated_runs": sum(1 for s in summaries if s["simulated"]),
        "energy_j": energy_j,
        "energy_kwh": _kwh(energy_j),
        "energy_runs": energy_runs,
        "facility_energy_kwh": _kwh(facility_j),
        "co2e_g": co2e_g,
        "co2e_runs": co2e_runs,
        "co2e_market_g": market_g,
        "market_runs": market_runs,
        "embodied_g": embodied_g,
        "embodied_runs": embodied_runs,
        "embodied_unknown_runs": gpu_runs - embodied_runs,
        "gpu_hours": gpu_hours,
        "estimated_share": estimated_share(runs),
        "previous": None,
        "change": None,
    }
    before = request.previous()
    if previous is not None and before is not None:
        result["previous"] = {
            "since": before.since.isoformat() if before.since else None,
            "until": before.until.isoformat() if before.until else None,
            "runs": previous.runs,
            "energy_j": previous.energy_j,
            "energy_kwh": _kwh(previous.energy_j),
            "co2e_g": previous.co2e_g,
            "co2e_market_g": previous.co2e_market_g,
            "gpu_hours": previous.gpu_hours,
        }
        result["change"] = change(result, previous)
    return result


def boundary(runs: Sequence[ReportRun]) -> dict[str, Any]:
    """What was measured, what was estimated and its share, and what is outside the report.

    Returns:
        ``components`` (energy and provenance per GPU/CPU/RAM), ``methods`` (each method
        with what it covers), ``measured_j``/``integrated_j``/``estimated_j`` and
        ``estimated_share``, runs measured only by models, simulated and unfinished runs,
        and the ``included``/``excluded`` statements.
    """
    by_method: dict[tuple[str, str, str], list[float]] = {}
    runs_by_method: Counter[tuple[str, str, str]] = Counter()
    for run in runs:
        for key, energy_j in run.energy_by_method_j.items():
            by_method.setdefault(key, []).append(energy_j)
            runs_by_method[key] += 1
    provenance_j = {
        name: math.fsum(run.energy_by_provenance_j.get(name, 0.0) for run in runs)
        for name in ("measured", "integrated", "estimated")
    }
    device_total_j = math.fsum(provenance_j.values())
    components = []
    for component in COMPONENTS:
        component_j, count = fsum_known(
            run.summary["energy_by_component_j"][component] for run in runs
        )
        provenances: dict[str, list[float]] = {}
        for (c, _, provenance), values in sorted(by_method.items()):
            if c == component:
                provenances.setdefault(provenance, []).extend(values)
        components.append(
            {
                "component": component,
                "runs": count,
                "energy_j": component_j,
                "share": (
                    component_j / device_total_j if component_j and device_total_j > 0 else None
                ),
                "energy_by_provenance_j": {p: math.fsum(v) for p, v in provenances.items()},
            }
        )
    methods = []
    for (component, method, provenance), values in sorted(by_method.items()):
        scope, description = METHODS.get(method, ("as recorded", f"method {method!r}"))
        methods.append(
            {
                "component": component,
                "method": method,
                "provenance": provenance,
                "boundary": scope,
                "description": description,
                "runs": runs_by_method[(component, method, provenance)],
                "energy_j": math.fsum(values),
            }
        )
    only_models = [
        run.id
        for run in runs
        if run.energy_by_provenance_j
        and all(p == "estimated" for p, e in run.energy_by_provenance_j.items() if e)
        and any(run.energy_by_provenance_j.values())
    ]
    return {
        "components": components,
        "methods": methods,
        "measured_j": provenance_j["measured"],
        "integrated_j": provenance_j["integrated"],
        "estimated_j": provenance_j["estimated"],
        "estimated_share": estimated_share(runs),
        "runs_estimated_only": only_models,
        "simulated_runs": [run.id for run in runs if run.summary["simulated"]],
        "unfinished_runs": [run.id for run in runs if run.summary["status"] == "running"],
        "included": list(INCLUDED),
        "excluded": list(EXCLUDED),
    }
