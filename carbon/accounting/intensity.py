"""Country grid carbon intensity, the lookup carbon's tracker uses for ``CARBON_REGION``.

This is the country-only entry point kept for callers that hold a country code:
:func:`lookup_country_intensity` parses it with
:func:`~carbon.accounting.regions.parse_region` and asks the
:class:`~carbon.accounting.providers.static.StaticProvider`, which reads codecarbon's
``data/private_infra/global_energy_mix.json`` (Our World in Data, CC BY 4.0). Sub-regions
and cloud regions go through ``parse_region`` and a provider directly.

An unknown or missing country is an error that names the value and the closest codes; there
is never a silent fallback to a world average or another country.
"""

from __future__ import annotations

from carbon.accounting.providers.base import IntensityFactor
from carbon.accounting.providers.static import ENERGY_MIX_FILE, StaticProvider
from carbon.accounting.regions import parse_region
from carbon.errors import ConfigError

__all__ = ["ENERGY_MIX_FILE", "IntensityFactor", "lookup_country_intensity"]

_KIND_WORDS = {"country": "country", "subregion": "sub-region", "cloud": "cloud region"}


def lookup_country_intensity(region: str) -> IntensityFactor:
    """Return the grid intensity of a country given as an ISO alpha-2 or alpha-3 code.

    Args:
        region: ``FR`` or ``FRA``, in any case; surrounding spaces are ignored.

    Returns:
        The factor, with ``zone`` the alpha-3 code and ``country_name`` as the data
        writes it.

    Raises:
        ConfigError: The code is not a country, or codecarbon's data has no figure for it;
            the message names the value and, for an unknown code, up to five close matches.
        SourceUnavailable: codecarbon's data file is not installed.
    """
    if not region.strip():
        raise ConfigError("region is empty; expected an ISO 3166 country code such as FR or FRA")
    parsed = parse_region(region)
    if parsed.kind != "country":
        raise ConfigError(
            f"unknown region {region!r}: {parsed.code} is a {_KIND_WORDS[parsed.kind]}, not an "
            "ISO 3166 alpha-2 or alpha-3 country code; use "
            "carbon.accounting.regions.parse_region with a provider for it"
        )
    try:
        return StaticProvider().factor(parsed)
    except ConfigError as exc:
        raise ConfigError(f"unknown region {region!r}: {exc}") from exc
