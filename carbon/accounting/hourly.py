"""Hour-by-hour accounting: an hourly grid-intensity series, energy per UTC hour, and CO2e.

Grid intensity can swing several-fold within a day, so a yearly average misprices the hours
a run actually drew its energy in. This module splits measured energy into UTC hours and
multiplies it hour by hour with an hourly intensity series; the series is read from CSV by
:mod:`carbon.accounting.hourly_csv`, whose names this module re-exports.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from carbon.accounting.co2e import co2e_g
from carbon.accounting.hourly_csv import FactorType, HourlyIntensity, parse_intensity_csv

__all__ = [
    "FactorType",
    "HourlyCo2e",
    "HourlyIntensity",
    "hourly_co2e_g",
    "parse_intensity_csv",
    "series_for_zone",
    "split_energy_by_hour",
]

_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class HourlyCo2e:
    """Emissions hour by hour, with the hours the intensity series did not cover.

    Attributes:
        co2e_g_by_hour: Grams of CO2e for each hour that has both energy and intensity.
        missing_hours: Hours with energy drawn but no intensity in the series, sorted.
        missing_energy_j: IT energy drawn in the missing hours, in joules.
        covered_co2e_g: Sum of ``co2e_g_by_hour``: the emissions of the covered hours only.
        pue: The power usage effectiveness the figures include.
    """

    co2e_g_by_hour: Mapping[datetime, float]
    missing_hours: tuple[datetime, ...]
    missing_energy_j: float
    covered_co2e_g: float
    pue: float

    @property
    def total_co2e_g(self) -> float | None:
        """Total grams of CO2e, or ``None`` when any hour lacks an intensity."""
        return None if self.missing_hours else self.covered_co2e_g

    def total_with_fallback_g(self, fallback_intensity_g_per_kwh: float) -> float:
        """Total grams, costing the missing hours at a factor the caller chose.

        Args:
            fallback_intensity_g_per_kwh: Intensity for the hours the series lacks, such as
                the zone's yearly average; the caller records that it was used.
        """
        missing_g = co2e_g(self.missing_energy_j, fallback_intensity_g_per_kwh, self.pue)
        return self.covered_co2e_g + missing_g


def series_for_zone(rows: Iterable[HourlyIntensity], zone: str) -> dict[datetime, float]:
    """Return one zone's intensities keyed by UTC hour start, for :func:`hourly_co2e_g`."""
    return {row.hour_start: row.intensity_g_per_kwh for row in rows if row.zone == zone}


def _utc(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _hour_of(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def split_energy_by_hour(
    intervals: Sequence[tuple[datetime, datetime, float]],
) -> dict[datetime, float]:
    """Spread energy over the UTC hours it was drawn in.

    An interval crossing an hour boundary is split in proportion to the time on each side,
    assuming constant power within the interval (true enough for per-second samples).

    Args:
        intervals: ``(start, end, energy_j)`` triples with timezone-aware times.

    Returns:
        Joules per UTC hour start, sorted by hour. Intervals with no energy add nothing; a
        zero-length interval with energy counts in the hour of its start.

    Raises:
        ValueError: A time is naive, an interval ends before it starts, or an energy is
            negative or not finite.
    """
    energy_by_hour_j: dict[datetime, float] = {}
    for index, (start, end, energy_j) in enumerate(intervals):
        start_utc = _utc(start, f"interval {index} start")
        end_utc = _utc(end, f"interval {index} end")
        if end_utc < start_utc:
            raise ValueError(f"interval {index} ends before it starts")
        if not math.isfinite(energy_j) or energy_j < 0:
            raise ValueError(f"interval {index} energy_j must be finite and >= 0: {energy_j}")
        if energy_j == 0:
            continue
        duration_s = (end_utc - start_utc).total_seconds()
        hour = _hour_of(start_utc)
        assigned_j = 0.0
        while duration_s > 0 and end_utc > hour + _HOUR:
            part_j = energy_j * (hour + _HOUR - max(hour, start_utc)).total_seconds() / duration_s
            energy_by_hour_j[hour] = energy_by_hour_j.get(hour, 0.0) + part_j
            assigned_j += part_j
            hour += _HOUR
        # The last hour takes the remainder, so the parts add up to energy_j exactly.
        energy_by_hour_j[hour] = energy_by_hour_j.get(hour, 0.0) + (energy_j - assigned_j)
    return dict(sorted(energy_by_hour_j.items()))


def hourly_co2e_g(
    energy_by_hour_j: Mapping[datetime, float],
    intensity_by_hour: Mapping[datetime, float],
    *,
    pue: float,
) -> HourlyCo2e:
    """Multiply energy by the grid intensity of the hour it was drawn in.

    Args:
        energy_by_hour_j: IT energy per UTC hour start (see :func:`split_energy_by_hour`).
        intensity_by_hour: gCO2e/kWh per UTC hour start (see :func:`series_for_zone`).
        pue: Power usage effectiveness of the facility (at least 1).

    Returns:
        The per-hour breakdown. An hour with energy but no intensity is listed in
        ``missing_hours`` and costed at nothing: ``total_co2e_g`` is then ``None`` and the
        caller chooses a fallback. An hour with zero energy costs zero grams whatever the
        grid, so it is never missing.

    Raises:
        ValueError: An hour key is naive or not on the hour, or a value is out of range.
    """
    intensities = {_on_the_hour(hour): value for hour, value in intensity_by_hour.items()}
    by_hour: dict[datetime, float] = {}
    missing: list[datetime] = []
    missing_energy_j = 0.0
    for hour, energy_j in sorted((_on_the_hour(h), e) for h, e in energy_by_hour_j.items()):
        if energy_j == 0:
            continue
        intensity_g_per_kwh = intensities.get(hour)
        if intensity_g_per_kwh is None:
            co2e_g(energy_j, 0.0, pue)  # validates the energy and the PUE
            missing.append(hour)
            missing_energy_j += energy_j
            continue
        by_hour[hour] = by_hour.get(hour, 0.0) + co2e_g(energy_j, intensity_g_per_kwh, pue)
    return HourlyCo2e(
        co2e_g_by_hour=MappingProxyType(by_hour),
        missing_hours=tuple(missing),
        missing_energy_j=missing_energy_j,
        covered_co2e_g=math.fsum(by_hour.values()),
        pue=pue,
    )


def _on_the_hour(hour: datetime) -> datetime:
    value = _utc(hour, "hour")
    if value != _hour_of(value):
        raise ValueError(f"hour key {hour.isoformat()} is not on the hour")
    return value
