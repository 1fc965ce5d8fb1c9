"""What a period's runs could have done differently, each with an estimated saving.

``region`` (a cleaner region), ``hours`` (a whole-hour shift, where an hourly intensity
series was imported; :mod:`carbon.reports.hour_shift`), ``compression`` (a cheaper
inference setting within an accuracy loss) and ``mfu`` (training at a target utilisation).
Each is computed from the runs' stored figures (their summaries) and, for the hours, their
energy per hour: nothing is written and the raw samples are never read. Each saving states
its assumption, since these are estimates for a report, not accounting figures; CO2e is
location-based. :func:`recommend` runs them all and orders what they find.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session

from carbon._format import format_energy, format_energy_wh, format_mass_g, format_share
from carbon.accounting import compression as tradeoff
from carbon.accounting.regions import Region, cloud_regions, parse_region
from carbon.accounting.resolve import Pricing, resolve
from carbon.errors import ConfigError
from carbon.reports.advice import Kind, Recommendation, Summary, finite, runs_text
from carbon.reports.hour_shift import MAX_SHIFT_H, hour_shifts
from carbon.units import J_PER_KWH

__all__ = ["MAX_RUNS_PER_ZONE", "MAX_SHIFT_H", "Kind", "Recommendation", "recommend"]

MAX_RUNS_PER_ZONE = 2_000
"""At most this many runs per zone (those with the most energy) are shifted hour by hour."""

_NAMED_RUNS = 5
_ACCURACY_TOLERANCE = 1e-9  # 0.92 - 0.91 is 0.0100000000000000009 in floating point


def recommend(
    session: Session,
    summaries: Sequence[Summary],
    *,
    team_id: int | None,
    max_accuracy_loss: float = 0.01,
    mfu_threshold: float = 0.30,
) -> list[Recommendation]:
    """Recommendations for a period's runs, biggest CO2e saving first.

    Args:
        session: An open session; only read (hourly energy and intensity series).
        summaries: The period's runs as :func:`carbon.store.summary.run_summary` dicts.
        team_id: The team whose runs' hourly energy may be read; ``None`` for any team.
        max_accuracy_loss: Largest accuracy drop a compressed setting may have against
            its baseline, in the accuracy's own unit (0.01 is one point of a fraction).
        mfu_threshold: Training runs below this model FLOPs utilisation are listed, and
            their saving estimated at it.

    Returns:
        The recommendations by ``saving_g`` descending, those without one last.

    Raises:
        ValueError: ``max_accuracy_loss`` is negative or ``mfu_threshold`` not in (0, 1].
        RunNotFound: A run with an hourly series to shift is not one of the team's.
    """
    if not math.isfinite(max_accuracy_loss) or max_accuracy_loss < 0:
        raise ValueError(f"max_accuracy_loss must be finite and >= 0, got {max_accuracy_loss}")
    if not math.isfinite(mfu_threshold) or not 0 < mfu_threshold <= 1:
        raise ValueError(f"mfu_threshold must be in (0, 1], got {mfu_threshold}")
    found = [
        *_region(summaries),
        *hour_shifts(session, summaries, team_id, max_runs_per_zone=MAX_RUNS_PER_ZONE),
        *_compression(summaries, max_accuracy_loss),
        *_mfu(summaries, mfu_threshold),
    ]
    return sorted(found, key=lambda r: (r.saving_g is None, -(r.saving_g or 0.0), r.kind, r.title))


@functools.cache
def _parse(text: str) -> Region | None:
    """A region parsed once per text; None when it names no known region."""
    try:
        return parse_region(text)
    except ConfigError:
        return None


@functools.cache
def _price(code: str) -> Pricing | None:
    """A region's static pricing, resolved once; None when it has no figure."""
    try:
        return resolve(code, pue=None)
    except ConfigError:
        return None


def _region(summaries: Sequence[Summary]) -> list[Recommendation]:
    used: set[str] = set()
    groups: dict[Region, list[Summary]] = defaultdict(list)
    for s in summaries:
        region = _parse(s["region"]) if isinstance(s.get("region"), str) else None
        if region is None:
            continue
        used.add(region.code)
        if None not in (finite(s.get(k)) for k in ("energy_j", "co2e_g", "pue")):
            groups[region].append(s)
    found: list[Recommendation | None] = []
    for region in sorted(groups, key=lambda r: r.code):
        candidates = set(used)
        if region.kind == "cloud":
            candidates |= {
                f"{r.provider}:{r.region}" for r in cloud_regions() if r.provider == region.provider
            }
        candidates.discard(region.code)
        found.append(_region_move(region.code, groups[region], sorted(candidates)))
    return [recommendation for recommendation in found if recommendation is not None]


def _region_move(code: str, runs: list[Summary], candidates: list[str]) -> Recommendation | None:
    """The cleanest candidate for one source region's runs, if it saves."""
    energy_j = math.fsum(float(r["energy_j"]) for r in runs)
    facility_j = math.fsum(float(r["energy_j"]) * float(r["pue"]) for r in runs)
    current_g = math.fsum(float(r["co2e_g"]) for r in runs)
    best: tuple[float, Pricing, float | None] | None = None
    priced = 0
    for text in candidates:
        pricing = _price(text)
        if pricing is None:
            continue
        priced += 1
        # As whatif: a cloud region at its provider's PUE, any other at each run's own.
        cloud_pue = pricing.pue.pue if pricing.region.kind == "cloud" else None
        kwh = (energy_j * cloud_pue if cloud_pue is not None else facility_j) / J_PER_KWH
        other_g = kwh * pricing.intensity.intensity_g_per_kwh
        if best is None or other_g < best[0]:
            best = (other_g, pricing, cloud_pue)
    if best is None or current_g - best[0] <= 0:
        return None
    other_g, pricing, cloud_pue = best
    saving_g = current_g - other_g
    target, factor = pricing.region, pricing.intensity
    pue_text = f"PUE {cloud_pue:g} ({pricing.pue.source})" if cloud_pue else "each run's own PUE"
    return Recommendation(
        kind="region",
        title=(
            f"Moving the {runs_text(len(runs))} in {code} to {target.code} "
            f"would have cut their CO2e by {format_share(saving_g / current_g)}, "
            f"{format_mass_g(saving_g)}."
        ),
        detail=(
            f"The {runs_text(len(runs))} in {code} drew {format_energy_wh(energy_j)} and "
            f"emitted {format_mass_g(current_g)} CO2e. In {target.code} ({target.name}), "
            f"at {factor.intensity_g_per_kwh:.0f} g/kWh and {pue_text}, the same energy "
            f"would have emitted {format_mass_g(other_g)}; the cleanest of "
            f"{priced} candidate regions priced. Intensity: {factor.source}."
        ),
        saving_j=0.0,
        saving_g=saving_g,
        runs=tuple(sorted(str(r["id"]) for r in runs)),
        assumption=(
            "The same IT energy drawn in the other region, priced at its yearly static "
            "grid intensity; a cloud region at its provider's published PUE, any other "
            "region at each run's own PUE (so facility energy may differ). The current "
            "figure is the runs' stored CO2e. Candidates: the other regions used in the "
            "period and, from a cloud region, the same provider's regions in carbon's "
            "table; regions without a figure are skipped. Does not account for the other "
            "grid's hour-by-hour variation, data transfer, latency, data-residency rules, "
            "capacity or price."
        ),
    )


def _compression(summaries: Sequence[Summary], max_loss: float) -> list[Recommendation]:
    by_project: dict[tuple[str, str], list[tuple[str, Summary, float, float]]] = defaultdict(list)
    for s in summaries:
        metrics = s.get("metrics")
        accuracy = finite(metrics.get("accuracy")) if isinstance(metrics, Mapping) else None
        per_item_j = finite(s.get("j_per_inference")) or 0.0
        known = None not in (finite(s.get("energy_j")), finite(s.get("samples")))
        if s.get("kind") == "inference" and known and accuracy is not None and per_item_j > 0:
            label = tradeoff.compression_label(s.get("compression"))
            by_project[(str(s["project"]), _machine(s))].append((label, s, per_item_j, accuracy))
    found = []
    for (project, machine), runs in sorted(by_project.items()):
        points = [(tradeoff.TradeoffPoint(str(s["id"]), label, j, a), s) for label, s, j, a in runs]
        baseline = tradeoff.choose_baseline([(p, s.get("compression") or {}) for p, s in points])
        if baseline is None:
            continue
        settings: dict[str, list[Summary]] = defaultdict(list)
        for label, s, _, _ in runs:
            settings[label].append(s)
        pooled = {label: _pooled(label, members) for label, members in settings.items()}
        base, base_runs = pooled[baseline.label], settings[baseline.label]
        for saving in tradeoff.savings_vs_baseline([pooled[k] for k in sorted(pooled)], base):
            if saving.energy_saving is None or saving.energy_saving <= 0:
                continue  # the baseline itself, or a setting that costs more
            loss = -(saving.accuracy_delta or 0.0)
            if loss <= max_loss + _ACCURACY_TOLERANCE:
                where = f"{project} on {machine}"
                args = (where, base, base_runs, pooled[saving.label], settings[saving.label])
                found.append(_compress(*args, max_loss))
    return found


def _machine(summary: Summary) -> str:
    """The run's hardware: its GPU models, else its CPU models; runs compare only on one."""
    devices = summary.get("devices") or []
    for component in ("gpu", "cpu"):
        names = sorted({str(d["name"]) for d in devices if d.get("component") == component})
        if names:
            return ", ".join(names)
    return "unknown hardware"


def _pooled(label: str, members: list[Summary]) -> tradeoff.TradeoffPoint:
    """A setting's point: its runs' energy over their inferences, their mean accuracy."""
    energy_j = math.fsum(float(s["energy_j"]) for s in members)
    per_item_j = energy_j / math.fsum(float(s["samples"]) for s in members)
    accuracy = math.fsum(float(s["metrics"]["accuracy"]) for s in members) / len(members)
    return tradeoff.TradeoffPoint(min(str(s["id"]) for s in members), label, per_item_j, accuracy)


def _left_out(unpriced: int, priced: int) -> str:
    if not (priced and unpriced):
        return ""
    return f" {runs_text(unpriced)} without a CO2e figure are not in the CO2e saving."


def _compress(
    project: str,
    base: tradeoff.TradeoffPoint,
    base_runs: list[Summary],
    point: tradeoff.TradeoffPoint,
    members: list[Summary],
    max_loss: float,
) -> Recommendation:
    delta_j = base.energy_per_item_j - point.energy_per_item_j
    inferences = math.fsum(float(s["samples"]) for s in base_runs)
    priced = [s for s in base_runs if finite(s.get("co2e_g")) is not None and s["energy_j"] > 0]
    per_run_g = (float(s["samples"]) * delta_j * s["co2e_g"] / s["energy_j"] for s in priced)
    saving_g = math.fsum(per_run_g) if priced else None
    left_out = _left_out(len(base_runs) - len(priced), len(priced))
    return Recommendation(
        kind="compression",
        title=(
            f"Serving {project} with {point.label} instead of {base.label} would have used "
            f"{format_share(delta_j / base.energy_per_item_j)} less energy per inference, "
            f"{format_energy_wh(inferences * delta_j)} over the period."
        ),
        detail=(
            f"{base.label}: {format_energy(base.energy_per_item_j)} per inference, accuracy "
            f"{base.accuracy:.4g} ({runs_text(len(base_runs))}, {inferences:.0f} inferences). "
            f"{point.label}: {format_energy(point.energy_per_item_j)} per inference, accuracy "
            f"{point.accuracy:.4g} ({point.accuracy - base.accuracy:+.4g}; "
            f"{runs_text(len(members))})."
        ),
        saving_j=inferences * delta_j,
        saving_g=saving_g,
        runs=tuple(sorted(str(s["id"]) for s in base_runs))
        + tuple(sorted(str(s["id"]) for s in members)),
        assumption=(
            "The baseline setting's inferences in the period served at the other setting's "
            "energy per inference (each setting's runs pooled: their energy over their "
            "inferences; accuracy the mean of their logged accuracy, allowed to drop by "
            f"{max_loss:g} in its own unit). CO2e at each baseline run's own grams per joule."
            f"{left_out} Does not account for the cost of compressing the model, for "
            "differences in batch size or load between the runs, nor for quality "
            "measures other than the logged accuracy."
        ),
    )


def _mfu(summaries: Sequence[Summary], threshold: float) -> list[Recommendation]:
    low: list[tuple[Summary, float, float, float | None]] = []
    for summary in summaries:
        mfu, energy_j = finite(summary.get("mfu")), finite(summary.get("energy_j"))
        if summary.get("kind") != "training" or mfu is None or energy_j is None:
            continue
        if 0 <= mfu < threshold:
            share = 1 - mfu / threshold
            co2e = finite(summary.get("co2e_g"))
            low.append((summary, mfu, energy_j * share, None if co2e is None else co2e * share))
    if not low:
        return []
    low.sort(key=lambda item: (-item[2], str(item[0]["id"])))
    saving_j = math.fsum(item[2] for item in low)
    known_g = [item[3] for item in low if item[3] is not None]
    saving_g = math.fsum(known_g) if known_g else None
    named = "; ".join(
        f"{s.get('project')}/{s.get('name')} ({str(s['id'])[:8]}): MFU {format_share(mfu)}, "
        f"up to {format_energy_wh(j)}"
        for s, mfu, j, _ in low[:_NAMED_RUNS]
    )
    left_out = _left_out(len(low) - len(known_g), len(known_g))
    target = format_share(threshold)
    return [
        Recommendation(
            kind="mfu",
            title=(
                f"{runs_text(len(low))} trained below {target} MFU; at {target} the same work "
                f"would have used up to {format_energy_wh(saving_j)} less."
            ),
            detail=f"Largest savings first: {named}.",
            saving_j=saving_j,
            saving_g=saving_g,
            runs=tuple(str(item[0]["id"]) for item in low),
            assumption=(
                f"Each run's work done at {target} MFU instead of its own, at the same "
                "average power, so in proportionally less time: energy x (1 - MFU / "
                f"{threshold:g}); CO2e scaled the same way. Power usually rises with MFU, so "
                "this is an upper bound. MFU is achieved FLOP/s over the catalog peak of the "
                f"run's GPUs at its precision; runs with unknown MFU are left out.{left_out} "
                "Does not account for the work of raising MFU (batch size, kernels, input "
                "pipeline, parallelism)."
            ),
        )
    ]
