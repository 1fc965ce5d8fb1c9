"""What every grid carbon-intensity provider returns, and the one method it must have.

A provider turns a parsed :class:`~carbon.accounting.regions.Region` (and, for providers
with time series, a moment) into an :class:`IntensityFactor` that says where the figure
comes from: dataset, file, licence, year, and whether it counts lifecycle or direct
emissions. A provider that cannot answer raises :class:`~carbon.errors.ConfigError`; one
that answers with a substitute figure says so in ``fallback`` and ``fallback_reason``, so a
substitution is never silent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from carbon.accounting.regions import Region

__all__ = ["FACTOR_TYPES", "FactorType", "IntensityFactor", "IntensityProvider"]

FactorType = Literal["direct", "lifecycle"]
FACTOR_TYPES: tuple[FactorType, ...] = ("direct", "lifecycle")


@dataclass(frozen=True, slots=True)
class IntensityFactor:
    """A grid carbon intensity and where it comes from.

    Attributes:
        zone: Code of the grid zone the figure describes: ISO alpha-3 for a country
            (``FRA``), ``US-CA``, ``CA-QC``, ``SE3``. For a cloud region, its grid zone.
        intensity_g_per_kwh: Average grid intensity, gCO2e per kWh.
        year: The year the figure describes, where the data says.
        source: Dataset, file and licence, for reports.
        country_name: Name of the zone's country, as the data writes it where it does.
        factor_type: ``lifecycle`` (includes fuel supply chains and plant construction)
            or ``direct`` (combustion at the power plant only).
        fallback: ``True`` where the figure stands in for one the provider could not give.
        fallback_reason: Why it stands in; set exactly when ``fallback`` is.
        hourly: ``True`` for a figure of one hour, ``False`` for a yearly average.
    """

    zone: str
    intensity_g_per_kwh: float
    year: int | None
    source: str
    country_name: str | None
    factor_type: FactorType
    fallback: bool = False
    fallback_reason: str | None = None
    hourly: bool = False

    def __post_init__(self) -> None:
        value = self.intensity_g_per_kwh
        if isinstance(value, bool) or not math.isfinite(value) or value < 0:
            raise ValueError(f"intensity_g_per_kwh must be finite and >= 0, got {value!r}")
        if self.factor_type not in FACTOR_TYPES:
            raise ValueError(f"factor_type must be one of {FACTOR_TYPES}, got {self.factor_type!r}")
        if self.fallback != (self.fallback_reason is not None):
            raise ValueError("fallback_reason must be given exactly when fallback is True")


@runtime_checkable
class IntensityProvider(Protocol):
    """Anything that gives the grid intensity of a region."""

    def factor(self, region: Region, at: datetime | None = None) -> IntensityFactor:
        """Return the intensity of ``region``'s grid.

        Args:
            region: A region from :func:`~carbon.accounting.regions.parse_region`.
            at: The moment the energy was drawn, for providers with time series;
                ``None`` asks for the provider's yearly average.

        Raises:
            ConfigError: The provider has no figure for the region (or the moment).
        """
        ...
