"""Yearly grid intensities from the data files that codecarbon ships, read without importing it.

One file per kind of zone, all under codecarbon's ``data/private_infra/``:

* ``global_energy_mix.json``: per country (ISO alpha-3), ``carbon_intensity`` in
  gCO2e/kWh and its ``year``, from Our World in Data's energy dataset, which takes it from
  Ember (CC BY 4.0). Ember's factors are lifecycle: they include fuel supply chains and
  plant construction.
* ``2023/usa_emissions.json``: per US state and DC, EPA eGRID2023's annual CO2-equivalent
  total output emission rate (field ``STC2ERTA``) in lb/MWh. eGRID counts emissions at the
  plant (direct). Converted with 1 lb = 453.59237 g (exact) and 1 MWh = 1000 kWh, so
  g/kWh = lb/MWh x 0.45359237. US federal data, public domain.
* ``2023/canada_energy_mix.json``: per province and territory, only the generation mix in
  percent (coal, naturalGas, petroleum, hydro, nuclear, wind, solar, biomass, tidal, other,
  total); codecarbon does not say where it comes from, and its folder gives the year. The
  intensity is computed as codecarbon computes it: share of coal, petroleum and natural gas
  (each divided by ``total``) times that fuel's factor in ``carbon_intensity_per_source.json``
  (995, 816 and 743 gCO2/kWh, combustion figures), other sources counted as zero. So it is
  a direct factor.
* ``nordic_emissions.json``: per bidding zone SE1-SE4 and NO1-NO5, ``emission_factor`` in
  gCO2e/kWh for 2025, built by codecarbon from ENTSO-E Transparency generation per
  production type weighted with ``carbon_intensity_per_source.json``, whose low-carbon
  factors (hydro, wind, nuclear, solar) are lifecycle figures; recorded as lifecycle. Its
  ``FI`` entry is not used: ``FI`` is Finland's ISO code and resolves to the country.

A cloud region gets the figure of the grid zone of its location, from carbon's own table.
A region without a figure is an error; nothing falls back to another zone or a world average.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from carbon._codecarbon_data import codecarbon_data_path, codecarbon_version
from carbon.accounting.providers.base import FactorType, IntensityFactor
from carbon.accounting.regions import (
    CLOUD_TABLE,
    Region,
    cloud_region,
    known_regions,
    parse_region,
)
from carbon.errors import ConfigError, SourceUnavailable

__all__ = [
    "CANADA_MIX_FILE",
    "ENERGY_MIX_FILE",
    "G_PER_KWH_PER_LB_PER_MWH",
    "NORDIC_FILE",
    "PER_SOURCE_FILE",
    "USA_FILE",
    "StaticProvider",
]

ENERGY_MIX_FILE = "private_infra/global_energy_mix.json"
USA_FILE = "private_infra/2023/usa_emissions.json"
CANADA_MIX_FILE = "private_infra/2023/canada_energy_mix.json"
CANADA_YEAR = 2023  # codecarbon keeps the file in a folder named for its year
NORDIC_FILE = "private_infra/nordic_emissions.json"
PER_SOURCE_FILE = "private_infra/carbon_intensity_per_source.json"
G_PER_KWH_PER_LB_PER_MWH = 453.59237 / 1000.0  # g per lb (exact) / kWh per MWh
# Fuel keys of the Canadian mix -> keys of codecarbon's per-source factor table.
_CANADA_FOSSIL_FUELS = {"coal": "coal", "petroleum": "petroleum", "naturalGas": "natural_gas"}


@dataclass(frozen=True, slots=True)
class _Zone:
    intensity_g_per_kwh: float
    year: int | None
    source: str
    factor_type: FactorType
    country_name: str | None


def _read(relative: str) -> Any:
    return json.loads(codecarbon_data_path(relative).read_text(encoding="utf-8"))


def _package() -> str:
    version = codecarbon_version()
    return f"codecarbon {version}" if version else "codecarbon"


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _year(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _figure(year: int | None) -> str:
    return f"{year} figure" if year is not None else "year not stated"


def _check_unit(found: object, expected: str, relative: str) -> None:
    if found != expected:
        raise SourceUnavailable(
            f"codecarbon's data/{relative} states its unit as {found!r}, not {expected!r}; "
            "carbon will not convert a unit it does not expect"
        )


@functools.cache
def _countries() -> dict[str, _Zone]:
    """Countries by ISO alpha-3, from the Our World in Data energy mix."""
    zones: dict[str, _Zone] = {}
    for code, entry in _read(ENERGY_MIX_FILE).items():
        intensity = _number(entry.get("carbon_intensity")) if isinstance(entry, dict) else None
        if intensity is None:
            continue
        year = _year(entry.get("year"))
        source = (
            f"{_package()}, data/{ENERGY_MIX_FILE} (Our World in Data energy dataset, "
            f"lifecycle intensity from Ember, CC BY 4.0; {_figure(year)})"
        )
        name = str(entry.get("country_name") or code)
        zones[code.upper()] = _Zone(intensity, year, source, "lifecycle", name)
    return zones


def _country_name(alpha3: str) -> str | None:
    zone = _countries().get(alpha3)
    return zone.country_name if zone is not None else None


@functools.cache
def _us_states() -> dict[str, _Zone]:
    """US states and DC by ISO 3166-2 code, from EPA eGRID, converted to g/kWh."""
    raw = _read(USA_FILE)
    _check_unit(raw.get("_unit", {}).get("emissions"), "lbs/MWh", USA_FILE)
    meta = raw.get("_source", {})
    year = _year(meta.get("year"))
    source = (
        f"{_package()}, data/{USA_FILE} ({meta.get('name', 'EPA eGRID')}, field "
        f"{meta.get('field', 'not stated')}, direct, public domain; converted from lb/MWh "
        f"x 0.45359237; {_figure(year)})"
    )
    zones: dict[str, _Zone] = {}
    for key, entry in raw.items():
        if key.startswith("_") or not isinstance(entry, dict):
            continue
        rate_lb_per_mwh = _number(entry.get("emissions"))
        state = str(entry.get("regionCode", ""))
        if rate_lb_per_mwh is None or len(state) != 2:
            continue  # the national "usa" row; the country figure comes from OWID
        intensity = rate_lb_per_mwh * G_PER_KWH_PER_LB_PER_MWH
        zones[f"US-{state}"] = _Zone(intensity, year, source, "direct", _country_name("USA"))
    return zones


@functools.cache
def _canada() -> dict[str, _Zone]:
    """Canadian provinces and territories by ISO 3166-2 code, from their generation mix."""
    factors = _read(PER_SOURCE_FILE)
    _check_unit(factors.get("unit"), "gCO2.eq/kWh", PER_SOURCE_FILE)
    fuel_g_per_kwh = {fuel: float(factors[key]) for fuel, key in _CANADA_FOSSIL_FUELS.items()}
    codes = {r.name.lower(): r.code for r in known_regions() if r.code.startswith("CA-")}
    source = (
        f"{_package()}, data/{CANADA_MIX_FILE} (provincial generation mix, origin not stated "
        f"by codecarbon; coal, petroleum and natural-gas shares x combustion factors from "
        f"data/{PER_SOURCE_FILE}, as codecarbon computes it; direct; "
        f"{_figure(CANADA_YEAR)} per codecarbon's folder)"
    )
    zones: dict[str, _Zone] = {}
    for name, mix in _read(CANADA_MIX_FILE).items():
        total = _number(mix.get("total")) if isinstance(mix, dict) else None
        code = codes.get(name.lower())
        if not total or code is None:
            continue
        shares = {fuel: _number(mix.get(fuel)) for fuel in fuel_g_per_kwh}
        if any(share is None for share in shares.values()):
            continue  # a fossil share not stated is unknown, not zero
        intensity = sum(
            (shares[fuel] or 0.0) / total * g_per_kwh for fuel, g_per_kwh in fuel_g_per_kwh.items()
        )
        zones[code] = _Zone(intensity, CANADA_YEAR, source, "direct", _country_name("CAN"))
    return zones


@functools.cache
def _nordic() -> dict[str, _Zone]:
    """Swedish and Norwegian bidding zones, from codecarbon's ENTSO-E derived factors."""
    zones: dict[str, _Zone] = {}
    for code, entry in _read(NORDIC_FILE).get("data", {}).items():
        if code == "FI" or not isinstance(entry, dict):
            continue  # FI is Finland's ISO code: the country figure applies
        _check_unit(entry.get("unit"), "gCO2eq/kWh", NORDIC_FILE)
        intensity = _number(entry.get("emission_factor"))
        if intensity is None:
            continue
        year = _year(entry.get("year"))
        source = (
            f"{_package()}, data/{NORDIC_FILE} (ENTSO-E Transparency generation per "
            f"production type x codecarbon's per-source factors, lifecycle for low-carbon "
            f"sources; coverage {entry.get('coverage', 'not stated')}; {_figure(year)})"
        )
        country = {"SE": "SWE", "NO": "NOR"}.get(code[:2])
        name = _country_name(country) if country else None
        zones[code.upper()] = _Zone(intensity, year, source, "lifecycle", name)
    return zones


class StaticProvider:
    """Yearly average intensities from codecarbon's bundled data; never a fallback.

    The figures are yearly averages, so ``at`` does not change them and every factor has
    ``hourly=False`` and ``fallback=False``.
    """

    def factor(self, region: Region, at: datetime | None = None) -> IntensityFactor:
        """Return the yearly grid intensity of ``region``.

        Args:
            region: A region from :func:`~carbon.accounting.regions.parse_region`.
            at: Ignored: a yearly average applies to every moment of its year and after.

        Raises:
            ConfigError: codecarbon's data has no figure for the region.
            SourceUnavailable: codecarbon or one of its data files is not installed.
        """
        if region.kind != "cloud":
            zone = self._zone(region)
            return _factor(region.code, zone, zone.source)
        row = cloud_region(region)
        grid = parse_region(row.grid_zone)
        zone = self._zone(grid)
        checked = f", checked {row.year}" if row.year is not None else ""
        source = (
            f"{region.code} is in {row.location} (grid zone {grid.code}; carbon "
            f"{CLOUD_TABLE}, location from {row.source}{checked}); zone figure: {zone.source}"
        )
        return _factor(grid.code, zone, source)

    def entries(self) -> list[tuple[Region, IntensityFactor]]:
        """Every region this provider has a figure for, with that figure, in listing order."""
        found = []
        for region in known_regions():
            try:
                found.append((region, self.factor(region)))
            except ConfigError:
                continue
        return found

    @staticmethod
    def _zone(region: Region) -> _Zone:
        if region.kind == "country":
            table, dataset = _countries(), "codecarbon's energy-mix data"
        elif region.code.startswith("US-"):
            table, dataset = _us_states(), "codecarbon's US state (eGRID) data"
        elif region.code.startswith("CA-"):
            table, dataset = _canada(), "codecarbon's Canadian provincial data"
        else:
            table, dataset = _nordic(), "codecarbon's Nordic bidding-zone data"
        zone = table.get(region.code)
        if zone is not None:
            return zone
        hint = ""
        if region.kind != "country" and region.country in _countries():
            hint = f"; the country figure is available as {region.country}"
        raise ConfigError(
            f"{dataset} has no carbon intensity for {region.code} ({region.name}){hint}"
        )


def _factor(zone_code: str, zone: _Zone, source: str) -> IntensityFactor:
    return IntensityFactor(
        zone=zone_code,
        intensity_g_per_kwh=zone.intensity_g_per_kwh,
        year=zone.year,
        source=source,
        country_name=zone.country_name,
        factor_type=zone.factor_type,
    )
