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
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from carbon._format import format_mass_g, format_share
from carbon.accounting.hourly import hourly_co2e_g
from carbon.reports.advice import Recommendation, Summary, finite, runs_text
from carbon.store import factors
from carbon.store.queries import energy_by_hour, runs_by_ids

__all__ = ["MAX_SHIFT_H", "hour_shifts"]

MAX_SHIFT_H = 12
"""The hours recommendation tries every whole-hour shift from -12 h to +12 h."""

_SHIFTS_H = tuple(range(-MAX_SHIFT_H, MAX_SHIFT_H + 1))
_SERIES_CHUNK = 500  # hours per query for an intensity series
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


def _fetch(
    session: Session, zone: str, hours: Iterable[datetime], known: dict[datetime, float | None]
) -> None:
    """Read the zone's intensity for the hours not asked yet (None marks an hour without)."""
    new = sorted(set(hours) - known.keys())
    known.update(dict.fromkeys(new))
    for start in range(0, len(new), _SERIES_CHUNK):
        known.update(factors.series(session, zone, new[start : start + _SERIES_CHUNK]))


def _probe_hours(summary: Summary) -> Iterable[datetime]:
    """The hours a run's shifted energy could fall in, from its start and duration."""
    started = datetime.fromisoformat(str(summary["started_at"]))
    started = started.replace(tzinfo=UTC) if started.tzinfo is None else started.astimezone(UTC)
    first = started.replace(minute=0, second=0, microsecond=0)
    span_h = math.ceil((finite(summary.get("duration_s")) or 0.0) / _S_PER_H)
    return (first + timedelta(hours=h) for h in range(-MAX_SHIFT_H, span_h + MAX_SHIFT_H + 1))


def _zone_shift(
    session: Session, zone: str, runs: list[Summary], team_id: int | None, max_runs: int
) -> Recommendation | None:
    """The best whole-hour shift of one zone's runs, if the zone has a series and it saves."""
    ranked = sorted(runs, key=lambda s: (-float(s["energy_j"]), str(s["id"])))
    examined = ranked[:max_runs]
    known: dict[datetime, float | None] = {}
    _fetch(session, zone, (h for run in examined for h in _probe_hours(run)), known)
    if all(value is None for value in known.values()):
        return None  # no imported series for this zone around these runs
    runs_by_ids(session, [str(run["id"]) for run in examined], team_id=team_id)
    profiles = [(run, energy_by_hour(session, str(run["id"]))) for run in examined]
    profiles = [(run, hours) for run, hours in profiles if hours]
    moves = (h + timedelta(hours=k) for _, hours in profiles for h in hours for k in _SHIFTS_H)
    _fetch(session, zone, moves, known)
    totals_g = [0.0] * len(_SHIFTS_H)
    missing = [0] * len(_SHIFTS_H)
    for run, hours in profiles:
        pue, static = float(run["pue"]), float(run["intensity_g_per_kwh"])
        for index, shift_h in enumerate(_SHIFTS_H):
            moved = {hour + timedelta(hours=shift_h): e for hour, e in hours.items()}
            intensities = {h: v for h in moved if (v := known.get(h)) is not None}
            result = hourly_co2e_g(moved, intensities, pue=pue)
            totals_g[index] += result.total_with_fallback_g(static)
            missing[index] += len(result.missing_hours)
    now = _SHIFTS_H.index(0)
    best = min(range(len(_SHIFTS_H)), key=lambda i: (totals_g[i], abs(_SHIFTS_H[i]), i))
    now_g, best_g, shift_h = totals_g[now], totals_g[best], _SHIFTS_H[best]
    saving_g = now_g - best_g
    if shift_h == 0 or saving_g <= 1e-9 * now_g:
        return None
    run_ids = sorted(str(run["id"]) for run, _ in profiles)
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
