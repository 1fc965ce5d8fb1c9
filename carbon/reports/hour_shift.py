"""The ``hours`` recommendation: the whole-hour shift that would have emitted least.

Only for zones with an imported hourly intensity series around the runs. Each run's stored
energy per hour is moved by every whole-hour shift from -:data:`MAX_SHIFT_H` h to
+:data:`MAX_SHIFT_H` h and priced hour by hour, hours the series lacks at the run's static
factor (as ``carbon whatif`` does); one shift for all of a zone's runs. Nothing is written
and the raw samples are never read.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from carbon._format import format_mass_g, format_share
from carbon.reports.advice import Recommendation, Summary, finite, runs_text
from carbon.store import factors
from carbon.store.queries import energy_by_hour_of_runs
from carbon.units import J_PER_KWH

__all__ = ["MAX_SHIFT_H", "hour_shifts"]

MAX_SHIFT_H = 12
"""The hours recommendation tries every whole-hour shift from -12 h to +12 h."""

_SHIFTS_H = tuple(range(-MAX_SHIFT_H, MAX_SHIFT_H + 1))
_S_PER_H = 3600


def hour_shifts(
    session: Session,
    summaries: Sequence[Summary],
    team_id: int | None,
    *,
    max_runs_per_zone: int,
) -> list[Recommendation]:
    """The best whole-hour shift of each zone's runs, where one saves, by zone.

    Args:
        session: An open session; only read (hourly energy and intensity series).
        summaries: The period's runs as :func:`carbon.store.summary.run_summary` dicts.
        team_id: The team whose runs' hourly energy may be read; ``None`` for any team.
        max_runs_per_zone: At most this many runs per zone, those with the most energy, are
            shifted.

    Returns:
        At most one ``hours`` recommendation per zone, zones in order.

    Raises:
        RunNotFound: A run with an hourly series to shift is not one of the team's.
    """
    by_zone: dict[str, list[Summary]] = defaultdict(list)
    for s in summaries:
        zone = s.get("intensity_zone")
        figures = [finite(s.get(k)) for k in ("energy_j", "pue", "intensity_g_per_kwh")]
        if isinstance(zone, str) and None not in figures and s.get("started_at"):
            by_zone[zone].append(s)
    found = [
        _zone_shift(session, zone, by_zone[zone], team_id, max_runs_per_zone)
        for zone in sorted(by_zone)
    ]
    return [recommendation for recommendation in found if recommendation is not None]


def _window(runs: Sequence[Summary]) -> tuple[datetime, datetime]:
    """The hours the runs' energy could fall in once shifted: first start to last end, ± 12 h."""
    starts, ends = [], []
    for run in runs:
        started = datetime.fromisoformat(str(run["started_at"]))
        started = started.replace(tzinfo=UTC) if started.tzinfo is None else started
        first = started.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        span_h = math.ceil((finite(run.get("duration_s")) or 0.0) / _S_PER_H)
        starts.append(first)
        ends.append(first + timedelta(hours=span_h + 1))
    margin = timedelta(hours=MAX_SHIFT_H)
    return min(starts) - margin, max(ends) + margin


def _zone_shift(
    session: Session, zone: str, runs: list[Summary], team_id: int | None, max_runs: int
) -> Recommendation | None:
    """The best whole-hour shift of one zone's runs, if the zone has a series and it saves.

    CO2e is linear in energy, so the runs' hours are summed first: per hour, the energy x
    PUE (priced with the series where it has the shifted hour) and the energy x PUE x static
    factor (used where it has not). Each shift then costs one pass over the zone's hours.
    """
    ranked = sorted(runs, key=lambda s: (-float(s["energy_j"]), str(s["id"])))
    examined = ranked[:max_runs]
    start, end = _window(examined)
    series = factors.series_between(session, zone, start, end)
    if not series:
        return None  # no imported series for this zone around these runs
    by_run = energy_by_hour_of_runs(session, [str(run["id"]) for run in examined], team_id=team_id)
    facility_j: dict[datetime, float] = defaultdict(float)
    static_j_g_per_kwh: dict[datetime, float] = defaultdict(float)
    run_hours: dict[datetime, int] = defaultdict(int)
    profiled = []
    for run in examined:
        hours = by_run[str(run["id"])]
        if not hours:
            continue
        profiled.append(str(run["id"]))
        pue, static = float(run["pue"]), float(run["intensity_g_per_kwh"])
        for hour, energy_j in hours.items():
            facility_j[hour] += energy_j * pue
            static_j_g_per_kwh[hour] += energy_j * pue * static
            run_hours[hour] += 1
    totals_g = [0.0] * len(_SHIFTS_H)
    missing = [0] * len(_SHIFTS_H)
    for index, shift_h in enumerate(_SHIFTS_H):
        moved = timedelta(hours=shift_h)
        terms = []
        for hour, energy_j in facility_j.items():
            intensity = series.get(hour + moved)
            if intensity is None:
                terms.append(static_j_g_per_kwh[hour])
                missing[index] += run_hours[hour]
            else:
                terms.append(energy_j * intensity)
        totals_g[index] = math.fsum(terms) / J_PER_KWH
    now = _SHIFTS_H.index(0)
    best = min(range(len(_SHIFTS_H)), key=lambda i: (totals_g[i], abs(_SHIFTS_H[i]), i))
    now_g, best_g, shift_h = totals_g[now], totals_g[best], _SHIFTS_H[best]
    saving_g = now_g - best_g
    if shift_h == 0 or saving_g <= 1e-9 * now_g:
        return None
    run_ids = sorted(profiled)
    capped = (
        f" Only the {runs_text(len(examined))} with the most energy of the {len(ranked)} "
        "in the zone were examined."
        if len(ranked) > len(examined)
        else ""
    )
    return Recommendation(
        kind="hours",
        title=(
            f"Starting the {runs_text(len(run_ids))} in zone {zone} {abs(shift_h)} h "
            f"{'later' if shift_h > 0 else 'earlier'} would have cut their CO2e by "
            f"{format_share(saving_g / now_g)}, {format_mass_g(saving_g)}."
        ),
        detail=(
            f"Hour by hour with the imported {zone} intensity series these runs emitted "
            f"{format_mass_g(now_g)}; moved {shift_h:+d} h, the best whole-hour shift from "
            f"-{MAX_SHIFT_H} h to +{MAX_SHIFT_H} h, they would have emitted "
            f"{format_mass_g(best_g)}. {missing[best]} run-hour(s) at that shift fall outside "
            "the series and are priced at the run's static factor."
        ),
        saving_j=0.0,
        saving_g=saving_g,
        runs=tuple(run_ids),
        assumption=(
            "Each run's stored energy per hour moved by the same whole number of hours, "
            "unchanged; each hour priced with the zone's imported series at the run's own "
            "PUE, hours the series lacks at the run's static factor (as whatif does). One "
            "shift for all the zone's runs. Does not account for deadlines, dependencies "
            "between runs, queueing or capacity at the other hours, nor for the grid's "
            f"response to the moved load.{capped}"
        ),
    )
