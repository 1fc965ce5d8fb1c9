"""Hourly grid-intensity series read from CSV, all rows or none.

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

Any other column is an error, so a misspelt header is never dropped unnoticed. A zone is
printable text of at most 64 characters (what the store keeps), an intensity at most
:data:`~carbon.wire.MAX_INTENSITY_G_PER_KWH`, and no cell holds NUL. Electricity Maps
datasets are ODbL: users import their own copy; carbon ships none.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TextIO

from carbon.errors import ConfigError
from carbon.wire import MAX_INTENSITY_G_PER_KWH

__all__ = ["MAX_ZONE_CHARS", "FactorType", "HourlyIntensity", "parse_intensity_csv"]

FactorType = Literal["lifecycle", "direct"]
MAX_ZONE_CHARS = 64
"""Longest zone name a series may use (the store's column)."""

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
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"time {text!r} lies outside years 1 to 9999 in UTC") from None
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
    if value > MAX_INTENSITY_G_PER_KWH:
        raise ValueError(
            f"carbon intensity {text!r} g/kWh is more than {MAX_INTENSITY_G_PER_KWH:g} "
            "(no grid comes near; is the unit right?)"
        )
    return value


def _parse_zone(text: str) -> str:
    if not text:
        raise ValueError("missing zone (the zone cell is empty)")
    if len(text) > MAX_ZONE_CHARS:
        raise ValueError(f"zone {text[:20]!r}... is longer than {MAX_ZONE_CHARS} characters")
    if not text.isprintable():
        raise ValueError(f"zone {text!r} holds a control character")
    return text


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
        ConfigError: The file cannot be read or is not UTF-8 CSV, a header is unknown or
            missing, or a row has a missing, unparseable or off-the-hour time (or one with
            no UTC equivalent), a missing, non-finite, negative or impossibly large
            intensity, a missing, overlong or unprintable zone, a NUL in any cell, or
            repeats an hour already given for its zone. The message names the file and line.
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return _read_rows(path, handle, factor_type)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read intensity file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})") from exc


def _read_rows(path: Path, handle: TextIO, factor_type: FactorType | None) -> list[HourlyIntensity]:
    reader = csv.reader(handle)
    line = 0
    layout: _Layout | None = None
    header: list[str] = []
    seen: dict[tuple[str, datetime], int] = {}
    rows: list[HourlyIntensity] = []
    while True:
        try:
            fields = next(reader, None)
        except csv.Error as exc:
            raise ConfigError(f"{path}: line {reader.line_num}: malformed CSV: {exc}") from None
        if fields is None:
            break
        line = reader.line_num
        if not any(field.strip() for field in fields):
            continue
        try:
            nul = next((i for i, field in enumerate(fields) if "\x00" in field), None)
            if nul is not None:
                raise ValueError(f"column {nul + 1} holds a NUL character")
            if layout is None:
                header, layout = fields, _layout(fields, factor_type)
                continue
            if len(fields) != len(header):
                raise ValueError(f"{len(fields)} fields, but the header has {len(header)}")
            zone = _parse_zone(fields[layout.zone].strip())
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
