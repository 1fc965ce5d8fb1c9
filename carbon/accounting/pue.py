"""Power usage effectiveness (PUE): the facility energy that each joule of IT energy brings.

A data centre draws more than its servers do: cooling, power conversion and lighting add
to it. PUE = facility energy / IT energy, at least 1.0. For a cloud region the provider's
own published fleet-wide figure is the best public estimate; elsewhere nothing is known,
so the default is 1.0 (IT energy only) and says so in its source.

Published figures, each with its year and page:

* Google Cloud: fleet-wide average annual PUE 1.09 in 2024 (1.10 in 2023), Google 2025
  Environmental Report and data centre efficiency page.
* AWS: global PUE 1.14 in 2025 (1.15 in 2023 and 2024), Amazon sustainability report pages.
* Microsoft Azure: worldwide operating PUE 1.18, first published April 2022; the design PUE
  of its newest datacentre generation is 1.12. The operating figure is used, as it
  describes the fleet that runs workloads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from carbon.accounting.regions import Region
from carbon.errors import ConfigError

__all__ = ["CLOUD_PUE", "DEFAULT_PUE", "PueFactor", "check_pue", "default_pue"]


def check_pue(value: float) -> float:
    """Return ``value`` as a float if it is a usable PUE.

    Raises:
        ConfigError: ``value`` is not a number, is NaN or infinite, or is below 1.0 (a
            facility cannot use less energy than its IT equipment).
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"PUE must be a number >= 1.0, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"PUE must be a finite number >= 1.0, got {value!r}")
    if value < 1.0:
        raise ConfigError(f"PUE must be >= 1.0 (facility energy / IT energy), got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class PueFactor:
    """A PUE and where it comes from.

    Attributes:
        pue: Facility energy / IT energy, at least 1.0.
        source: The publication, or why the default applies.
        year: The year the figure describes; ``None`` for the default.
    """

    pue: float
    source: str
    year: int | None = None

    def __post_init__(self) -> None:
        check_pue(self.pue)


CLOUD_PUE: dict[str, PueFactor] = {
    "gcp": PueFactor(
        1.09,
        "Google, fleet-wide average annual PUE for 2024, 2025 Environmental Report "
        "(https://sustainability.google/reports/google-2025-environmental-report/; "
        "https://www.google.com/about/datacenters/efficiency/)",
        2024,
    ),
    "aws": PueFactor(
        1.14,
        "Amazon, AWS global data centre PUE for 2025 "
        "(https://sustainability.aboutamazon.com/products-services/the-cloud)",
        2025,
    ),
    "azure": PueFactor(
        1.18,
        "Microsoft, worldwide operating datacentre PUE, published April 2022; design PUE of "
        "the newest generation is 1.12 (https://datacenters.microsoft.com/sustainability/"
        "efficiency/)",
        2022,
    ),
}

DEFAULT_PUE = PueFactor(
    1.0,
    "no published PUE for this region: 1.0, IT energy only; set the facility's PUE "
    "(pue= or CARBON_PUE) to include cooling and power losses",
)


def default_pue(region: Region) -> PueFactor:
    """Return the provider's published PUE for a cloud region, else 1.0 with that reason.

    Args:
        region: A region from :func:`~carbon.accounting.regions.parse_region`.
    """
    if region.kind == "cloud" and region.provider in CLOUD_PUE:
        return CLOUD_PUE[region.provider]
    return DEFAULT_PUE
