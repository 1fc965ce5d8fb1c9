"""Everyday equivalents of a period's totals: published figures, sources, unknowns left out."""

from __future__ import annotations

import dataclasses
import math

import pytest

from carbon.reports.equivalents import PUBLISHED, Equivalent, equivalents

# The published figures, written out here from the sources themselves.
EPA_G_CO2_PER_MILE = 400.0  # US EPA, EPA-420-F-23-014 (June 2023)
EIA_KWH_PER_HOME_2022 = 10_791.0  # US EIA FAQ id=97, 2022 data
M_PER_MILE = 1_609.344


def _by_unit(found: list[Equivalent]) -> dict[str, Equivalent]:
    return {equivalent.unit: equivalent for equivalent in found}


def test_car_km_and_household_days_from_the_published_figures() -> None:
    found = _by_unit(equivalents(co2e_g=10_000.0, energy_kwh=50.0))
    assert set(found) == {"km", "days"}

    car = found["km"]
    # 10 kg of CO2 at 400 g a mile is 25 miles, 25 x 1.609344 km.
    assert car.value == pytest.approx(25 * M_PER_MILE / 1000, rel=1e-12)
    assert car.basis == "co2e"
    assert car.factor == pytest.approx(EPA_G_CO2_PER_MILE / (M_PER_MILE / 1000), rel=1e-12)
    assert car.factor_unit == "g CO2/km"
    assert "EPA" in car.source
    assert "Greenhouse Gas Emissions from a Typical Passenger Vehicle" in car.source
    assert "EPA-420-F-23-014" in car.source

    home = found["days"]
    # 50 kWh against 10,791 kWh spread over the 365 days of 2022.
    assert home.value == pytest.approx(50.0 * 365 / EIA_KWH_PER_HOME_2022, rel=1e-12)
    assert home.basis == "energy"
    assert home.factor == pytest.approx(EIA_KWH_PER_HOME_2022 / 365, rel=1e-12)
    assert home.factor_unit == "kWh/day"
    assert "EIA" in home.source
    assert "How much electricity does an American home use?" in home.source


def test_every_equivalent_says_it_is_an_illustration_and_cites_a_source() -> None:
    found = equivalents(co2e_g=1.0, energy_kwh=1.0)
    assert len(found) == len(PUBLISHED)
    for equivalent in found:
        assert equivalent.note.startswith("Illustration only.")
        assert "https://" in equivalent.source
        assert math.isfinite(equivalent.value)


def test_an_unknown_total_leaves_its_equivalents_out_instead_of_zero() -> None:
    assert [e.basis for e in equivalents(co2e_g=None, energy_kwh=3.0)] == ["energy"]
    assert [e.basis for e in equivalents(co2e_g=3.0, energy_kwh=None)] == ["co2e"]
    assert equivalents(co2e_g=None, energy_kwh=None) == []


def test_a_known_zero_is_zero() -> None:
    assert [e.value for e in equivalents(co2e_g=0.0, energy_kwh=0)] == [0.0, 0.0]


@pytest.mark.parametrize(
    ("co2e_g", "energy_kwh"),
    [(-1.0, None), (None, -0.5), (math.nan, None), (None, math.inf), (True, None)],
)
def test_bad_totals_are_refused(co2e_g: float | None, energy_kwh: float | None) -> None:
    with pytest.raises(ValueError, match="must be a finite number"):
        equivalents(co2e_g=co2e_g, energy_kwh=energy_kwh)


def test_equivalents_are_frozen() -> None:
    equivalent = equivalents(co2e_g=1.0, energy_kwh=None)[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        equivalent.value = 2.0  # type: ignore[misc]
