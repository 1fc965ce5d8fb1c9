"""Everyday equivalents of a period's totals, to give a sense of scale: illustrations only.

A report's own figures are energy in joules and location-based CO2e in grams. Readers
outside the team rarely have a feel for a kilowatt-hour or a kilogram of CO2e, so the
report adds a few comparisons: kilometres driven by an average passenger car, days of an
average household's electricity. Each comparison is a published national average with its
source and year, stated beside the figure, and each is marked as an illustration: it is not
part of the accounting and nothing is netted against it.

The published figures live in :data:`PUBLISHED`, the one place to update when a source
publishes a newer vintage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CAR_G_CO2_PER_MILE",
    "HOME_KWH_PER_YEAR",
    "KM_PER_MILE",
    "PUBLISHED",
    "Basis",
    "Equivalent",
    "PublishedFactor",
    "equivalents",
]

Basis = Literal["co2e", "energy"]

KM_PER_MILE = 1.609344
"""Kilometres in an international mile, exact by definition (1959 agreement)."""

CAR_G_CO2_PER_MILE = 400.0
"""Tailpipe CO2 of the average US passenger vehicle, grams per mile (US EPA, 2023)."""

HOME_KWH_PER_YEAR = 10_791.0
"""Electricity sold to the average US residential customer in 2022, kWh (US EIA)."""

_DAYS_IN_2022 = 365


@dataclass(frozen=True, slots=True)
class PublishedFactor:
    """A published average that a total is divided by to give an equivalent.

    Attributes:
        name: What the equivalent counts, as a phrase (``distance driven by ...``).
        unit: Unit of the equivalent (``km``, ``days``).
        basis: The total it is computed from: ``co2e`` (grams) or ``energy`` (kWh).
        factor: Amount of the basis per one unit of the equivalent.
        factor_unit: Unit of ``factor`` (``g CO2/km``, ``kWh/day``).
        source: Publisher, title, year and address of the figure.
        note: How the factor was derived from the published figure and what it leaves
            out, so a reader can judge the comparison.
    """

    name: str
    unit: str
    basis: Basis
    factor: float
    factor_unit: str
    source: str
    note: str


PUBLISHED: tuple[PublishedFactor, ...] = (
    PublishedFactor(
        name="distance driven by an average US passenger car",
        unit="km",
        basis="co2e",
        factor=CAR_G_CO2_PER_MILE / KM_PER_MILE,
        factor_unit="g CO2/km",
        source=(
            'US EPA, "Greenhouse Gas Emissions from a Typical Passenger Vehicle" '
            "(fact sheet EPA-420-F-23-014, June 2023), "
            "https://www.epa.gov/greenvehicles/greenhouse-gas-emissions-typical-passenger-vehicle"
        ),
        note=(
            "Illustration only. EPA: the average US passenger vehicle emits about 400 g of "
            "CO2 per mile (tailpipe CO2 only, no methane, nitrous oxide or refrigerant "
            "leaks, no fuel production); converted at 1 mile = 1.609344 km. The period's "
            "figure is CO2e, so the distance is a slight overstatement."
        ),
    ),
    PublishedFactor(
        name="days of electricity of an average US household",
        unit="days",
        basis="energy",
        factor=HOME_KWH_PER_YEAR / _DAYS_IN_2022,
        factor_unit="kWh/day",
        source=(
            'US EIA, FAQ "How much electricity does an American home use?" (2022 data), '
            "https://www.eia.gov/tools/faqs/faq.php?id=97&t=3"
        ),
        note=(
            "Illustration only. EIA: 10,791 kWh of electricity sold to the average US "
            "residential customer in 2022, spread over its 365 days. A US average: "
            "households elsewhere use different amounts."
        ),
    ),
)
"""Every published figure the equivalents use, with its source: the one place to update."""


@dataclass(frozen=True, slots=True)
class Equivalent:
    """A period's total expressed as an everyday quantity, for scale; not an accounting figure.

    Attributes:
        name: What the value counts (``distance driven by an average passenger car``).
        value: The equivalent amount, in ``unit``.
        unit: Unit of ``value`` (``km``, ``days``).
        basis: The total it comes from: ``co2e`` (location-based grams) or ``energy``
            (kWh).
        factor: The published average used: amount of the basis per unit of ``value``.
        factor_unit: Unit of ``factor``.
        source: Publisher, title, year and address of the published figure.
        note: How the factor was derived and what it leaves out; says it is an
            illustration.
    """

    name: str
    value: float
    unit: str
    basis: Basis
    factor: float
    factor_unit: str
    source: str
    note: str


def _checked(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0 or None, got {value!r}")
    return float(value)


def equivalents(co2e_g: float | None, energy_kwh: float | None) -> list[Equivalent]:
    """Express a period's totals as everyday equivalents, each with its published source.

    Args:
        co2e_g: The period's location-based CO2e, grams; ``None`` when unknown (no run
            had a region), which leaves out the CO2e-based equivalents rather than
            showing 0.
        energy_kwh: The period's energy, kWh; ``None`` when unknown. The caller says in
            its report whether this includes the facilities' PUE.

    Returns:
        One :class:`Equivalent` per published figure whose basis is known, in the order
        of :data:`PUBLISHED`; empty when both totals are unknown.

    Raises:
        ValueError: A total is negative, not finite, or not a number.
    """
    totals: dict[Basis, float | None] = {
        "co2e": _checked("co2e_g", co2e_g),
        "energy": _checked("energy_kwh", energy_kwh),
    }
    found = []
    for published in PUBLISHED:
        total = totals[published.basis]
        if total is None:
            continue
        found.append(
            Equivalent(
                name=published.name,
                value=total / published.factor,
                unit=published.unit,
                basis=published.basis,
                factor=published.factor,
                factor_unit=published.factor_unit,
                source=published.source,
                note=published.note,
            )
        )
    return found
