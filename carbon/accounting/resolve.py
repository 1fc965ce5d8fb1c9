"""Which grid intensity and PUE a run is priced with, and why.

The static provider (CodeCarbon's bundled yearly data) is the default. When an Electricity
Maps token is configured, the live figure for the run's zone at its start is used instead,
and if that call fails the static factor stands in, with the reason recorded on the run. A
region Electricity Maps has no zone id for (a US state: its zones are balancing
authorities) keeps the static factor, also with the reason.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from carbon.accounting.providers.base import IntensityFactor
from carbon.accounting.providers.electricitymaps import ElectricityMapsProvider
from carbon.accounting.providers.static import StaticProvider
from carbon.accounting.pue import PueFactor, check_pue, default_pue
from carbon.accounting.regions import Region, cloud_region, parse_region
from carbon.errors import SourceError


@dataclass(frozen=True, slots=True)
class Pricing:
    """The factors a run's CO2e is computed with.

    Attributes:
        region: The parsed region.
        intensity: Grid intensity and its provenance.
        pue: Power usage effectiveness and its source.
    """

    region: Region
    intensity: IntensityFactor
    pue: PueFactor


def electricitymaps_zone(region: Region) -> str | None:
    """The Electricity Maps zone id of a region, where there is a clear one.

    Countries use their alpha-2 code (``FR``), Nordic bidding zones ``SE-SE3``-style ids, a
    cloud region the zone of its location; US states and Canadian provinces have none (the
    API's US zones are balancing authorities, not states).
    """
    import pycountry

    if region.kind == "cloud":
        return electricitymaps_zone(parse_region(cloud_region(region).grid_zone))
    if region.kind == "country":
        country = pycountry.countries.get(alpha_3=region.code)
        return None if country is None else str(country.alpha_2)
    if region.code[:2] in ("SE", "NO", "DK") and region.code[2:].isdigit():
        return f"{region.code[:2]}-{region.code}"
    return None


def resolve(
    region_text: str,
    *,
    pue: float | None = None,
    live: ElectricityMapsProvider | None = None,
) -> Pricing:
    """Parse a region and find its intensity and PUE.

    Args:
        region_text: A region in any syntax :func:`~carbon.accounting.regions.parse_region`
            accepts.
        pue: The PUE given by the user, if any; else the cloud provider's published figure,
            else 1.0 (IT energy only).
        live: An Electricity Maps client, when a token is configured.

    Raises:
        ConfigError: The region is unknown (with close matches) or the PUE is invalid.
    """
    region = parse_region(region_text)
    static = StaticProvider().factor(region)
    intensity = static
    if live is not None:
        zone = electricitymaps_zone(region)
        if zone is None:
            intensity = dataclasses.replace(
                static,
                fallback=True,
                fallback_reason=f"Electricity Maps has no zone for {region.code}: static factor",
            )
        else:
            try:
                figure = live.latest(zone)
            except SourceError as exc:
                intensity = dataclasses.replace(
                    static,
                    fallback=True,
                    fallback_reason=f"live intensity unavailable ({exc}): static factor used",
                )
            else:
                intensity = dataclasses.replace(
                    static,
                    intensity_g_per_kwh=figure.intensity_g_per_kwh,
                    year=figure.datetime_utc.year,
                    source=f"{figure.source}, at {figure.datetime_utc.isoformat()}",
                    factor_type="direct" if figure.factor_type == "direct" else "lifecycle",
                )
    pue_factor = (
        PueFactor(pue=check_pue(pue), source="given", year=None)
        if pue is not None
        else default_pue(region)
    )
    return Pricing(region=region, intensity=intensity, pue=pue_factor)
