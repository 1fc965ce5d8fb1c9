"""Where the period's energy and emissions went, and how efficiently the work was done.

Groups are sums over runs, biggest energy first. Efficiency figures are ratios of sums over
the runs that have both terms (J/FLOP = energy / FLOPs of the runs that counted FLOPs), so a
group's figure is what its runs did together, not an average of ratios.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from statistics import fmean
from typing import Any

from carbon.reports.collect import ReportRun
from carbon.reports.request import GroupBy
from carbon.reports.totals import fsum_known

__all__ = ["TOP_RUNS", "breakdown", "efficiency", "group_key"]

TOP_RUNS = 10
"""How many runs the top list names."""

_KEYS: dict[str, Callable[[ReportRun], str]] = {
    "project": lambda run: str(run.summary["project"]),
    "team": lambda run: run.team,
    "hardware": lambda run: run.hardware,
    "region": lambda run: run.summary["region"] or "no region",
    "kind": lambda run: str(run.summary["kind"]),
}


def group_key(group_by: GroupBy) -> Callable[[ReportRun], str]:
    """The function that names a run's group for a dimension."""
    return _KEYS[group_by]


def _totals(name: str, runs: Sequence[ReportRun], energy_total_j: float | None) -> dict[str, Any]:
    summaries = [run.summary for run in runs]
    energy_j, _ = fsum_known(s["energy_j"] for s in summaries)
    co2e_g, co2e_runs = fsum_known(s["co2e_g"] for s in summaries)
    market_g, market_runs = fsum_known(s["co2e_market_g"] for s in summaries)
    embodied_g, _ = fsum_known(s["embodied_g"] for s in summaries)
    gpu_hours, _ = fsum_known(run.gpu_hours for run in runs)
    return {
        "name": name,
        "runs": len(runs),
        "energy_j": energy_j,
        "energy_share": (
            energy_j / energy_total_j if energy_j is not None and energy_total_j else None
        ),
        "co2e_g": co2e_g,
        "co2e_runs": co2e_runs,
        "co2e_market_g": market_g,
        "market_runs": market_runs,
        "embodied_g": embodied_g,
        "gpu_hours": gpu_hours,
    }


def _grouped(
    runs: Sequence[ReportRun], key: Callable[[ReportRun], str]
) -> dict[str, list[ReportRun]]:
    groups: dict[str, list[ReportRun]] = {}
    for run in runs:
        groups.setdefault(key(run), []).append(run)
    return groups


def _table(runs: Sequence[ReportRun], key: Callable[[ReportRun], str]) -> list[dict[str, Any]]:
    total_j, _ = fsum_known(run.summary["energy_j"] for run in runs)
    rows = [_totals(name, members, total_j) for name, members in _grouped(runs, key).items()]
    return sorted(rows, key=lambda row: (-(row["energy_j"] or 0.0), row["name"]))


def _top_row(run: ReportRun, co2e_total_g: float | None) -> dict[str, Any]:
    s = run.summary
    return {
        "id": s["id"],
        "project": s["project"],
        "name": s["name"],
        "kind": s["kind"],
        "started_at": s["started_at"],
        "hardware": run.hardware,
        "region": s["region"],
        "energy_j": s["energy_j"],
        "co2e_g": s["co2e_g"],
        "co2e_market_g": s["co2e_market_g"],
        "co2e_share": s["co2e_g"] / co2e_total_g if co2e_total_g else None,
    }


def breakdown(runs: Sequence[ReportRun], group_by: GroupBy) -> dict[str, Any]:
    """Totals per group of the chosen dimension and per phase, and the top runs by CO2e.

    Returns:
        ``group_by``, ``groups`` and ``phases`` (each row: runs, energy and its share,
        location- and market-based CO2e with the runs they cover, embodied, GPU-hours),
        and ``top_runs``: the :data:`TOP_RUNS` runs with the most location-based CO2e
        (runs without CO2e cannot rank; ``runs_without_co2e`` counts them).
    """
    co2e_total_g, _ = fsum_known(run.summary["co2e_g"] for run in runs)
    ranked = sorted(
        (run for run in runs if run.summary["co2e_g"] is not None),
        key=lambda run: (-run.summary["co2e_g"], run.id),
    )
    return {
        "group_by": group_by,
        "groups": _table(runs, group_key(group_by)),
        "phases": _table(runs, group_key("kind")),
        "top_runs": [_top_row(run, co2e_total_g) for run in ranked[:TOP_RUNS]],
        "runs_without_co2e": sum(1 for run in runs if run.summary["co2e_g"] is None),
    }


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _hardware_row(name: str, runs: Sequence[ReportRun]) -> dict[str, Any]:
    with_flops = [
        run.summary for run in runs if run.summary["flops"] and run.summary["energy_j"] is not None
    ]
    flops = math.fsum(s["flops"] for s in with_flops)
    energy_j = math.fsum(s["energy_j"] for s in with_flops)
    with_mfu = [s for s in with_flops if s["mfu"]]
    # MFU of the group: FLOPs done over FLOPs the GPUs could have done in the same time.
    possible = math.fsum(s["flops"] / s["mfu"] for s in with_mfu)
    mfus = [float(s["mfu"]) for s in with_mfu]
    return {
        "hardware": name,
        "runs": len(runs),
        "runs_with_flops": len(with_flops),
        "flops": flops if with_flops else None,
        "energy_j": energy_j if with_flops else None,
        "j_per_flop": _ratio(energy_j, flops) if with_flops else None,
        "runs_with_mfu": len(with_mfu),
        "mfu": _ratio(math.fsum(s["flops"] for s in with_mfu), possible) if with_mfu else None,
        "mfu_min": min(mfus, default=None),
        "mfu_max": max(mfus, default=None),
    }


def _accuracy(summary: dict[str, Any]) -> float | None:
    value = (summary["metrics"] or {}).get("accuracy")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _compression_row(
    project: str, hardware: str, label: str, runs: Sequence[ReportRun]
) -> dict[str, Any]:
    summaries = [run.summary for run in runs]
    served = [s for s in summaries if s["samples"] and s["energy_j"] is not None]
    tokened = [s for s in summaries if s["tokens"] and s["energy_j"] is not None]
    inferences = sum(int(s["samples"]) for s in served)
    tokens = sum(int(s["tokens"]) for s in tokened)
    accuracies = [a for a in (_accuracy(s) for s in summaries) if a is not None]
    energy_j, _ = fsum_known(s["energy_j"] for s in summaries)
    return {
        "project": project,
        "hardware": hardware,
        "compression": label,
        "runs": len(runs),
        "energy_j": energy_j,
        "inferences": inferences or None,
        "j_per_inference": (
            _ratio(math.fsum(s["energy_j"] for s in served), inferences) if served else None
        ),
        "tokens": tokens or None,
        "j_per_token": (
            _ratio(math.fsum(s["energy_j"] for s in tokened), tokens) if tokened else None
        ),
        "accuracy": fmean(accuracies) if accuracies else None,
        "accuracy_runs": len(accuracies),
    }


def efficiency(runs: Sequence[ReportRun]) -> dict[str, Any]:
    """J/FLOP and MFU by hardware; J per inference and per token by compression setting.

    Returns:
        ``by_hardware`` (runs that counted FLOPs: their J/FLOP, and the MFU of those with a
        known peak, with its range) and ``by_compression`` (inference runs per project and
        hardware and compression label, since a setting compares only on the same machine:
        J/inference, J/token, mean accuracy where logged).
    """
    hardware = _grouped(runs, group_key("hardware"))
    inference = [run for run in runs if run.summary["kind"] == "inference"]
    by_setting: dict[tuple[str, str, str], list[ReportRun]] = {}
    for run in inference:
        key = (str(run.summary["project"]), run.hardware, run.compression)
        by_setting.setdefault(key, []).append(run)
    return {
        "by_hardware": sorted(
            (_hardware_row(name, members) for name, members in hardware.items()),
            key=lambda row: row["hardware"],
        ),
        "by_compression": [
            _compression_row(project, hardware, label, members)
            for (project, hardware, label), members in sorted(by_setting.items())
        ],
    }
