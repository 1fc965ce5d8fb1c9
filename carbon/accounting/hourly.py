"""Hour-by-hour accounting: an hourly grid-intensity series, energy per UTC hour, and CO2e.

Grid intensity can swing several-fold within a day, so a yearly average misprices the hours
a run actually drew its energy in. This module reads an hourly intensity series from CSV,
splits measured energy into UTC hours, and multiplies the two hour by hour.

CSV headers understood (case, spacing and ``₂``/``2`` do not matter):

* time: ``datetime`` (needs a UTC offset: ``2024-01-01T00:00:00Z``) or ``Datetime (UTC)``
  (Electricity Maps exports; a time without offset is UTC);
* zone: ``zone`` or ``Zone Id``;
* gCO2e/kWh: ``carbon_intensity_g_per_kwh`` (factor type recorded as ``None``),
  ``Carbon Intensity gCO₂eq/kWh (LCA)`` or ``Carbon intensity gCO₂eq/kWh (Life cycle)``
  (recorded as ``"lifecycle"``), ``Carbon Intensity gCO₂eq/kWh (direct)`` (``"direct"``);
* ``Data Source``, quoted in each row's ``source``; and, read but unused so whole exports
  load, ``Country``, ``Zone Name``, ``Low Carbon Percentage``, ``Renewable Percentage``,
  ``Carbon-free energy percentage (CFE%)``, ``Renewable energy percentage (RE%)``,
  ``Data Estimated``, ``Data Estimation Method``.

Any other column is an error, so a misspelt header is never dropped unnoticed. Electricity
Maps datasets are ODbL: users import their own copy; carbon ships none.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Literal, TextIO

from carbon.accounting.co2e import co2e_g
from carbon.errors import ConfigError

__all__ = [
    "FactorType",
    "HourlyCo2e",
    "HourlyIntensity",
    "hourly_co2e_g",
    "parse_intensity_csv",
    "series_for_zone",
    "split_energy_by_hour",
]

FactorType = Literal["lifecycle", "direct"]
_HOUR = timedelta(hours=1)

# Normalised header -> (role, factor type); "datetime (utc)" alone allows naive times.
_HEADERS: dict[str, tuple[str, FactorType | None]] = {
    "datetime": ("time", None),
    "datetime (utc)": ("time", None),
    "zone": ("zone", None),
    "zone id": ("zone", None),
    "carbon_intensity_g_per_kwh": ("intensity", None),
    "carbon intensity gco2eq/kwh (direct)": ("direct", "direct"),
    "carbon intensity gco2eq/kwh (lca)": ("lifecycle", "lifecycle"),
    "carbon intensity gco2eq/kwh (life cycle)": ("lifecycle", "lifecycle"),
    "data source": ("data_source", None),
}
_IGNORED_HEADERS = frozenset(
    [
        "country",
        "zone name",
        "low carbon percentage",
        "renewable percentage",
        "data estimated",
        "data estimation method",
        "carbon-free energy percentage (cfe%)",
        "renewable energy percentage (re%)",
    ]
)


@dataclass(frozen=True, slots=True)
class HourlyIntensity:
    """The grid carbon intensity of one zone during one UTC hour.

    Attributes:
        zone: Grid zone as the file names it (``FR``, ``US-CAL-CISO``).
        hour_start: Start of the hour, timezone-aware UTC, on the hour.
        intensity_g_per_kwh: Average intensity over the hour, gCO2e per kWh.
        source: The file (and the data source the file names), for reports.
        factor_type: ``"lifecycle"`` or ``"direct"`` emission factors, or ``None`` where
            the file does not say.
    """

    zone: str
    hour_start: datetime
    intensity_g_per_kwh: float
    source: str
    factor_type: FactorType | None = None


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


def _normalise(header: str) -> str:
    return " ".join(header.replace("₂", "2").casefold().split())


@dataclass(frozen=True, slots=True)
class _Layout:
    time: int
    naive_is_utc: bool
    zone: int
    intensity: int
    factor_type: FactorType | None
    data_source: int | None
    kind: str


def _layout(header: list[str], factor_type: FactorType | None) -> _Layout:
    """Map the header row to column positions; raise ``ValueError`` naming the problem."""
    columns: dict[str, int] = {}
    for index, raw in enumerate(header):
        name = _normalise(raw)
        if name in _IGNORED_HEADERS:
            continue
        if name not in _HEADERS:
            raise ValueError(
                f"unknown column {raw!r}; understood: zone, datetime, "
                "carbon_intensity_g_per_kwh, or the Electricity Maps export headers"
            )
        role = _HEADERS[name][0]
        if role in columns:
            raise ValueError(f"column {raw!r} repeats column {header[columns[role]]!r}")
        columns[role] = index
    for role in ("time", "zone"):
        if role not in columns:
            raise ValueError(f"no {role} column; see carbon.accounting.hourly for the headers")
    typed = [role for role in ("lifecycle", "direct") if role in columns]
    if "intensity" in columns and typed:
        raise ValueError("both an untyped and a direct/life-cycle intensity column")
    chosen = factor_type or (typed[0] if typed else "intensity")
    if chosen not in columns:
        raise ValueError(f"no {'' if chosen == 'intensity' else chosen + ' '}intensity column")
    naive_is_utc = _normalise(header[columns["time"]]) == "datetime (utc)"
    return _Layout(
        time=columns["time"],
        naive_is_utc=naive_is_utc,
        zone=columns["zone"],
        intensity=columns[chosen],
        factor_type=_HEADERS[_normalise(header[columns[chosen]])][1],
        data_source=columns.get("data_source"),
        kind="Electricity Maps export" if naive_is_utc or typed else "CSV",
    )


def _parse_hour(text: str, naive_is_utc: bool) -> datetime:
    if not text:
        raise ValueError("missing hour (the time cell is empty)")
    try:
        value = datetime.fromisoformat(text) if len(text) > len("2024-01-01") else None
    except ValueError:
        value = None
    if value is None:  # a date alone has no hour either
        raise ValueError(f"unparseable time {text!r}; expected ISO 8601 like 2024-01-01T00:00Z")
    if value.tzinfo is None:
        if not naive_is_utc:
            raise ValueError(f"time {text!r} has no UTC offset; write e.g. {text}Z")
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    if value.minute or value.second or value.microsecond:
        raise ValueError(f"time {text!r} is not on the hour (UTC)")
    return value


def _parse_intensity(text: str) -> float:
    if not text:
        raise ValueError("missing carbon intensity (the cell is empty)")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"carbon intensity {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"carbon intensity {text!r} is not a finite number")
    if value < 0:
        raise ValueError(f"carbon intensity {text!r} g/kWh is negative")
    return value


def parse_intensity_csv(
    path: str | Path, *, factor_type: FactorType | None = None
) -> list[HourlyIntensity]:
    """Read an hourly carbon-intensity series from a CSV file, all rows or none.

    Args:
        path: The CSV file (UTF-8, optionally with a byte-order mark).
        factor_type: Which Electricity Maps column to read when an export has both:
            ``"lifecycle"`` or ``"direct"``. ``None`` reads life-cycle where present, as
            the Electricity Maps API does by default.

    Returns:
        The rows sorted by zone, then hour. Gaps between hours are allowed; they show up
        as ``missing_hours`` in :func:`hourly_co2e_g`.

    Raises:
        ConfigError: The file cannot be read, a header is unknown or missing, or a row has
            a missing, unparseable or off-the-hour time, a missing, non-finite or negative
            intensity, or repeats an hour already given for its zone. The message names
            the file and line.
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return _read_rows(path, handle, factor_type)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read intensity file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise ConfigError(f"{path}: malformed CSV: {exc}") from exc


def _read_rows(path: Path, handle: TextIO, factor_type: FactorType | None) -> list[HourlyIntensity]:
    reader = csv.reader(handle)
    line = 0
    layout: _Layout | None = None
    header: list[str] = []
    seen: dict[tuple[str, datetime], int] = {}
    rows: list[HourlyIntensity] = []
    for fields in reader:
        line = reader.line_num
        if not any(field.strip() for field in fields):
            continue
        try:
            if layout is None:
                header, layout = fields, _layout(fields, factor_type)
                continue
            if len(fields) != len(header):
                raise ValueError(f"{len(fields)} fields, but the header has {len(header)}")
            zone = fields[layout.zone].strip()
            if not zone:
                raise ValueError("missing zone (the zone cell is empty)")
            hour = _parse_hour(fields[layout.time].strip(), layout.naive_is_utc)
            intensity = _parse_intensity(fields[layout.intensity].strip())
            earlier = seen.setdefault((zone, hour), line)
            if earlier != line:
                raise ValueError(
                    f"hour {hour:%Y-%m-%dT%H:%MZ} for zone {zone} duplicates or overlaps "
                    f"the hour on line {earlier}"
                )
        except ValueError as exc:
            raise ConfigError(f"{path}: line {line}: {exc}") from None
        origin = fields[layout.data_source].strip() if layout.data_source is not None else ""
        source = f"{path.name} ({layout.kind}{', data source: ' if origin else ''}{origin})"
        rows.append(HourlyIntensity(zone, hour, intensity, source, layout.factor_type))
    if layout is None:
        raise ConfigError(f"{path}: line {line + 1}: empty file, no header row")
    rows.sort(key=lambda row: (row.zone, row.hour_start))
    return rows


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
