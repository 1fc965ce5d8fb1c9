"""Country grid carbon intensity from the energy-mix data that codecarbon ships.

codecarbon bundles ``data/private_infra/global_energy_mix.json``: one entry per country,
keyed by ISO 3166 alpha-3 code, with the yearly average ``carbon_intensity`` of its
electricity in gCO2e/kWh, the ``year`` of the figure and the ``country_name``. The figures
come from Our World in Data's energy dataset (CC BY 4.0). carbon reads the file where the
installed package keeps it, without importing codecarbon.

An unknown or missing country is an error that names the value and the closest codes; there
is never a silent fallback to a world average or another country.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
from dataclasses import dataclass
from typing import Any

from carbon._codecarbon_data import codecarbon_data_path, codecarbon_version
from carbon.errors import ConfigError

__all__ = ["ENERGY_MIX_FILE", "IntensityFactor", "lookup_country_intensity"]

ENERGY_MIX_FILE = "private_infra/global_energy_mix.json"
_MAX_SUGGESTIONS = 5
_CODE_CUTOFF = 0.5  # difflib ratio; codes are 2-3 letters, one wrong letter scores 0.5-0.67
_NAME_CUTOFF = 0.6


@dataclass(frozen=True, slots=True)
class IntensityFactor:
    """A grid carbon intensity and where it comes from.

    Attributes:
        zone: ISO 3166 alpha-3 code of the country (``FRA``).
        intensity_g_per_kwh: Yearly average grid intensity, gCO2e per kWh.
        year: The year the figure describes, where the data says.
        source: The file and data origin, for reports.
        country_name: The country's name as the data writes it.
    """

    zone: str
    intensity_g_per_kwh: float
    year: int | None
    source: str
    country_name: str


@dataclass(frozen=True, slots=True)
class _Entry:
    intensity_g_per_kwh: float
    year: int | None
    country_name: str


@functools.cache
def _energy_mix() -> dict[str, _Entry]:
    """Load the usable entries of codecarbon's energy-mix file once per process."""
    path = codecarbon_data_path(ENERGY_MIX_FILE)
    raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    entries: dict[str, _Entry] = {}
    for code, entry in raw.items():
        if not isinstance(entry, dict):
            continue
        intensity = entry.get("carbon_intensity")
        if isinstance(intensity, bool) or not isinstance(intensity, int | float):
            continue
        if not math.isfinite(intensity) or intensity < 0:
            continue
        year = entry.get("year")
        entries[code.upper()] = _Entry(
            intensity_g_per_kwh=float(intensity),
            year=year if isinstance(year, int) and not isinstance(year, bool) else None,
            country_name=str(entry.get("country_name") or code),
        )
    return entries


def _source_text(year: int | None) -> str:
    version = codecarbon_version()
    package = f"codecarbon {version}" if version else "codecarbon"
    figure = f"{year} figure" if year is not None else "year not stated"
    return (
        f"{package}, data/{ENERGY_MIX_FILE} (Our World in Data energy dataset, CC BY 4.0; {figure})"
    )


def _alpha2_to_alpha3(code: str) -> tuple[str, str] | None:
    """Map an ISO alpha-2 code to (alpha-3, name) with pycountry, or ``None`` if unknown."""
    import pycountry  # imported here: only alpha-2 lookups need its database

    country = pycountry.countries.get(alpha_2=code)
    if country is None:
        return None
    return str(country.alpha_3), str(country.name)


def _suggestions(value: str, entries: dict[str, _Entry]) -> list[str]:
    """Up to five ``ALPHA3 (name)`` labels closest to ``value`` by code or by name."""
    import pycountry

    labels: list[tuple[str, str, float]] = [(code, code, _CODE_CUTOFF) for code in entries]
    for code, entry in entries.items():
        labels.append((entry.country_name, code, _NAME_CUTOFF))
        country = pycountry.countries.get(alpha_3=code)
        if country is not None:
            labels.append((str(country.alpha_2), code, _CODE_CUTOFF))
    best: dict[str, float] = {}
    wanted = value.lower()
    for label, code, cutoff in labels:
        score = difflib.SequenceMatcher(None, wanted, label.lower()).ratio()
        if score >= cutoff and score > best.get(code, 0.0):
            best[code] = score
    ranked = sorted(best, key=lambda code: (-best[code], code))[:_MAX_SUGGESTIONS]
    return [f"{code} ({entries[code].country_name})" for code in ranked]


def lookup_country_intensity(region: str) -> IntensityFactor:
    """Return the grid intensity of a country given as an ISO alpha-2 or alpha-3 code.

    Args:
        region: ``FR`` or ``FRA``, in any case; surrounding spaces are ignored.

    Raises:
        ConfigError: The code is not a country, or codecarbon's data has no figure for it;
            the message names the value and up to five close matches.
        SourceUnavailable: codecarbon's data file is not installed.
    """
    value = region.strip()
    if not value:
        raise ConfigError("region is empty; expected an ISO 3166 country code such as FR or FRA")
    entries = _energy_mix()
    code = value.upper()
    name: str | None = None
    if len(code) == 2 and code.isalpha():
        mapped = _alpha2_to_alpha3(code)
        if mapped is not None:
            code, name = mapped
    entry = entries.get(code)
    if entry is None:
        close = _suggestions(value, entries)
        hint = f"close matches: {', '.join(close)}" if close else "no close match"
        if name is not None or (len(code) == 3 and _is_known_alpha3(code)):
            what = f"{code} ({name})" if name else code
            reason = f"codecarbon's energy-mix data has no carbon intensity for {what}"
        else:
            reason = "not an ISO 3166 alpha-2 or alpha-3 country code"
        raise ConfigError(f"unknown region {region!r}: {reason}; {hint}")
    return IntensityFactor(
        zone=code,
        intensity_g_per_kwh=entry.intensity_g_per_kwh,
        year=entry.year,
        source=_source_text(entry.year),
        country_name=entry.country_name,
    )


def _is_known_alpha3(code: str) -> bool:
    import pycountry

    return pycountry.countries.get(alpha_3=code) is not None
