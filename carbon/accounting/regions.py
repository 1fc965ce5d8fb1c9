"""One parser for every way carbon names a place whose grid supplies the energy.

Accepted forms, in any case, surrounding spaces ignored:

* an ISO 3166 country, alpha-2 or alpha-3: ``FR``, ``fra``;
* a US state or the District of Columbia: ``US-CA``; a Canadian province or territory:
  ``CA-QC`` (ISO 3166-2 codes);
* a Nordic electricity bidding zone: ``SE1``..``SE4``, ``NO1``..``NO5``, ``DK1``, ``DK2``.
  Finland is a single bidding zone, ``FI``, which is also its ISO code, so ``FI`` parses
  as the country;
* a cloud region, ``provider:region``: ``gcp:europe-west1``, ``aws:us-east-1``,
  ``azure:westeurope``, from the table carbon ships in ``data/cloud_regions.csv``.

That table maps each cloud region to the grid zone of its physical location (a code of one
of the forms above), with the provider's public page that states the location and the year
the row was last checked against it. It holds no emission figures.

Anything else is a :class:`~carbon.errors.ConfigError` that names the input and lists up
to five close matches among every known code and name: there is never a default region. A
table row that breaks its rules is a ``ConfigError`` too, naming its line and column.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from carbon.accounting._tables import cell_error, table_rows
from carbon.errors import ConfigError

__all__ = [
    "CLOUD_PROVIDERS",
    "CloudRegion",
    "Region",
    "RegionKind",
    "cloud_region",
    "cloud_regions",
    "known_regions",
    "parse_cloud_table",
    "parse_region",
    "region_label",
    "suggest_regions",
]

RegionKind = Literal["country", "subregion", "cloud"]
CLOUD_PROVIDERS = ("aws", "azure", "gcp")
CLOUD_TABLE = "data/cloud_regions.csv"
_CLOUD_COLUMNS = ("provider", "region", "location", "grid_zone", "source", "year")
_SUBDIVISION_TYPES = {"US": {"State", "District"}, "CA": {"Province", "Territory"}}
_NORDIC_ZONES = {
    **{f"SE{n}": ("SWE", f"Sweden bidding zone {n}") for n in range(1, 5)},
    **{f"NO{n}": ("NOR", f"Norway bidding zone {n}") for n in range(1, 6)},
    **{f"DK{n}": ("DNK", f"Denmark bidding zone {n}") for n in range(1, 3)},
}
_SYNTAX = (
    "expected an ISO country code (FR, FRA), a sub-region (US-CA, CA-QC, SE3) "
    "or a cloud region (gcp:europe-west1, aws:us-east-1, azure:westeurope)"
)
_MAX_SUGGESTIONS = 5
_CODE_CUTOFF = 0.5  # difflib ratio; codes are 2-3 letters, one wrong letter scores 0.5-0.67
_NAME_CUTOFF = 0.6


@dataclass(frozen=True, slots=True)
class Region:
    """A parsed region.

    Attributes:
        kind: ``country``, ``subregion`` (US state, Canadian province, Nordic bidding
            zone) or ``cloud``.
        code: The normalised code: ``FRA``, ``US-CA``, ``SE3``, ``gcp:europe-west1``.
        name: A readable name: ``France``, ``California``, ``St. Ghislain, Belgium``.
        country: ISO 3166 alpha-3 code of the country the region lies in, where known.
        provider: The cloud provider (``aws``, ``azure``, ``gcp``); ``None`` otherwise.
        cloud_region: The provider's region name (``europe-west1``); ``None`` otherwise.
    """

    kind: RegionKind
    code: str
    name: str
    country: str | None
    provider: str | None = None
    cloud_region: str | None = None


@dataclass(frozen=True, slots=True)
class CloudRegion:
    """One row of carbon's cloud region table.

    Attributes:
        provider: ``aws``, ``azure`` or ``gcp``.
        region: The provider's region name (``us-east-1``).
        location: The physical location the provider documents for the region.
        grid_zone: The grid zone of that location, a code :func:`parse_region` accepts.
        source: The provider's public page that states the location.
        year: The year the row was last checked against that page.
    """

    provider: str
    region: str
    location: str
    grid_zone: str
    source: str
    year: int | None


@functools.cache
def cloud_regions() -> tuple[CloudRegion, ...]:
    """Return the rows of the cloud region table shipped in the package, read once."""
    text = resources.files("carbon.accounting").joinpath(CLOUD_TABLE).read_text("utf-8")
    return parse_cloud_table(text)


def parse_cloud_table(text: str, table: str = CLOUD_TABLE) -> tuple[CloudRegion, ...]:
    """The rows of a cloud region table, each checked.

    Args:
        text: The CSV text, with the columns of :data:`CLOUD_TABLE`.
        table: The table's name in messages.

    Raises:
        ConfigError: The text is not such a table, or a row has an unknown provider, an
            empty region, location, source or grid zone, a grid zone :func:`parse_region`
            does not know, a year that is not a whole number, or repeats a region. The
            message names the line and the column.
    """
    rows: list[CloudRegion] = []
    lines: dict[tuple[str, str], int] = {}
    for line, cells in table_rows(text, table, _CLOUD_COLUMNS):
        row = {name: cells[name].strip() for name in _CLOUD_COLUMNS}
        provider, region = row["provider"].lower(), row["region"].lower()
        if provider not in CLOUD_PROVIDERS:
            problem = f"{row['provider']!r} is not one of {', '.join(CLOUD_PROVIDERS)}"
            raise cell_error(table, line, "provider", problem)
        for name in ("region", "location", "grid_zone", "source"):
            if not row[name]:
                raise cell_error(table, line, name, "is empty")
        if (provider, region) in lines:
            problem = f"{provider}:{region} repeats line {lines[provider, region]}"
            raise cell_error(table, line, "region", problem)
        if _parse_grid_zone(row["grid_zone"]) is None:
            raise cell_error(table, line, "grid_zone", f"{row['grid_zone']!r} is no known zone")
        year = row["year"]
        if year and not (year.isascii() and year.isdigit()):
            raise cell_error(table, line, "year", f"{year!r} is not a year")
        lines[provider, region] = line
        rows.append(
            CloudRegion(
                provider=provider,
                region=region,
                location=row["location"],
                grid_zone=row["grid_zone"],
                source=row["source"],
                year=int(year) if year else None,
            )
        )
    return tuple(rows)


def cloud_region(region: Region) -> CloudRegion:
    """Return the table row behind a parsed cloud region.

    Raises:
        ConfigError: ``region`` is not a cloud region of the table.
    """
    for row in cloud_regions():
        if (row.provider, row.region) == (region.provider, region.cloud_region):
            return row
    raise ConfigError(f"{region.code} is not a cloud region in carbon's table ({CLOUD_TABLE})")


def _country_name(country: Any) -> str:
    """The short name pycountry gives (``Bolivia``), else its ISO name."""
    return str(getattr(country, "common_name", None) or country.name)


def _country(alpha: str) -> Region | None:
    import pycountry  # imported here: its database loads on first use

    if len(alpha) == 2:
        country = pycountry.countries.get(alpha_2=alpha)
    else:
        country = pycountry.countries.get(alpha_3=alpha)
    if country is None:
        return None
    return Region("country", str(country.alpha_3), _country_name(country), str(country.alpha_3))


@functools.cache
def _subdivisions() -> dict[str, tuple[str, Region]]:
    """Every ISO 3166-2 subdivision of the US and Canada: code -> (ISO type, region)."""
    import pycountry

    found: dict[str, tuple[str, Region]] = {}
    for subdivision in pycountry.subdivisions:
        parent = str(subdivision.country_code)
        if parent in _SUBDIVISION_TYPES:
            code, country = str(subdivision.code), _country(parent)
            region = Region("subregion", code, str(subdivision.name), _code(country))
            found[code] = (str(subdivision.type), region)
    return found


def _subdivision(code: str) -> Region | None:
    """A US state or DC, a Canadian province or territory; not US outlying areas."""
    kind, region = _subdivisions().get(code, ("", None))
    return region if kind in _SUBDIVISION_TYPES.get(code[:2], ()) else None


def _code(region: Region | None) -> str | None:
    return region.code if region is not None else None


def _nordic(code: str) -> Region | None:
    entry = _NORDIC_ZONES.get(code)
    if entry is None:
        return None
    return Region("subregion", code, entry[1], entry[0])


def _cloud(row: CloudRegion) -> Region:
    zone = _parse_grid_zone(row.grid_zone)
    return Region(
        "cloud",
        f"{row.provider}:{row.region}",
        row.location,
        zone.country if zone else None,
        provider=row.provider,
        cloud_region=row.region,
    )


def _parse_grid_zone(text: str) -> Region | None:
    code = text.strip().upper()
    if "-" in code:
        return _subdivision(code)
    if code.isalpha() and len(code) in (2, 3):
        return _country(code)
    return _nordic(code)


@functools.cache
def known_regions() -> tuple[Region, ...]:
    """Every region :func:`parse_region` accepts, in its normalised form, once each.

    Countries come first, then sub-regions, then cloud regions, each sorted by code.
    """
    import pycountry

    countries = [r for c in pycountry.countries if (r := _country(str(c.alpha_3)))]
    subregions = [r for code in _NORDIC_ZONES if (r := _nordic(code))]
    subregions += [r for code in _subdivisions() if (r := _subdivision(code))]
    clouds = [_cloud(row) for row in cloud_regions()]
    return tuple(
        region
        for group in (countries, subregions, clouds)
        for region in sorted(group, key=lambda r: r.code)
    )


def parse_region(text: str) -> Region:
    """Parse a country, sub-region or cloud region code into a :class:`Region`.

    Args:
        text: ``FR``, ``fra``, ``US-CA``, ``ca-qc``, ``SE3``, ``gcp:europe-west1`` ...

    Raises:
        ConfigError: ``text`` is empty or names no known region; the message quotes it and
            lists up to five close matches.
    """
    value = text.strip()
    if not value:
        raise ConfigError(f"region is empty; {_SYNTAX}")
    if ":" in value:
        provider, _, name = (part.strip().lower() for part in value.partition(":"))
        for row in cloud_regions():
            if (row.provider, row.region) == (provider, name):
                return _cloud(row)
        if provider not in CLOUD_PROVIDERS:
            reason = f"unknown cloud provider {provider!r} (known: {', '.join(CLOUD_PROVIDERS)})"
        else:
            reason = f"{provider} region {name!r} is not in carbon's cloud region table"
        raise ConfigError(_unknown(text, value, reason, cloud_only=True))
    found = _parse_grid_zone(value)
    if found is not None:
        return found
    code = value.upper()
    own = _country(code[3:]) if code in _subdivisions() else None  # US-PR, US-GU ...
    if own is not None:
        reason = f"{code} is a US outlying area with its own ISO country code, {code[3:]}"
        raise ConfigError(_unknown(text, value, reason, first=own))
    raise ConfigError(_unknown(text, value, f"not a known region code; {_SYNTAX}"))


def _unknown(
    text: str, value: str, reason: str, *, cloud_only: bool = False, first: Region | None = None
) -> str:
    close = suggest_regions(value, cloud_only=cloud_only)
    if first is not None:
        close = [region_label(first), *(c for c in close if c != region_label(first))][
            :_MAX_SUGGESTIONS
        ]
    hint = f"close matches: {', '.join(close)}" if close else "no close match"
    return f"unknown region {text!r}: {reason}; {hint}"


@functools.cache
def _labels() -> tuple[tuple[str, float, Region], ...]:
    """(text to compare, difflib cutoff, region) for every code and name carbon knows."""
    import pycountry

    labels: list[tuple[str, float, Region]] = []
    for region in known_regions():
        if region.kind == "cloud":
            labels.append((region.code, _NAME_CUTOFF, region))
            labels.append((region.cloud_region or "", _NAME_CUTOFF, region))
            continue
        labels.append((region.code, _CODE_CUTOFF, region))
        labels.append((region.name, _NAME_CUTOFF, region))
        if region.kind == "country":
            country = pycountry.countries.get(alpha_3=region.code)
            if country is not None:
                labels.append((str(country.alpha_2), _CODE_CUTOFF, region))
                labels.append((str(country.name), _NAME_CUTOFF, region))
    return tuple(labels)


def suggest_regions(value: str, *, cloud_only: bool = False) -> list[str]:
    """Up to five ``CODE (name)`` labels of the known regions closest to ``value``.

    Args:
        value: The text that did not parse.
        cloud_only: Compare with cloud regions only (``value`` had a ``provider:`` part).
    """
    wanted = value.strip().lower()
    best: dict[Region, float] = {}
    for label, cutoff, region in _labels():
        if cloud_only and region.kind != "cloud":
            continue
        score = difflib.SequenceMatcher(None, wanted, label.lower()).ratio()
        if score >= cutoff and score > best.get(region, 0.0):
            best[region] = score
    ranked = sorted(best, key=lambda region: (-best[region], region.code))
    return [region_label(region) for region in ranked[:_MAX_SUGGESTIONS]]


def region_label(region: Region) -> str:
    """``CODE (name)``, with no comma inside, so that labels can be listed with commas."""
    return f"{region.code} ({region.name.replace(', ', ' / ')})"
