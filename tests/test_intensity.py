from __future__ import annotations

import pytest

from carbon.accounting import IntensityFactor, lookup_country_intensity
from carbon.errors import ConfigError

# Figures read from codecarbon 3.3.2's data/private_infra/global_energy_mix.json:
# "FRA": carbon_intensity 56.039, year 2023, country_name "France"
# "DEU": carbon_intensity 380.95, year 2023, country_name "Germany"
FRANCE_2023_G_PER_KWH = 56.039
GERMANY_2023_G_PER_KWH = 380.95


@pytest.mark.parametrize("region", ["FR", "fr", "FRA", "fra", " Fra "])
def test_france_by_alpha2_and_alpha3(region: str) -> None:
    factor = lookup_country_intensity(region)
    assert isinstance(factor, IntensityFactor)
    assert factor.zone == "FRA"
    assert factor.intensity_g_per_kwh == pytest.approx(FRANCE_2023_G_PER_KWH)
    assert factor.year == 2023
    assert factor.country_name == "France"


def test_germany() -> None:
    for region in ("DE", "DEU"):
        factor = lookup_country_intensity(region)
        assert factor.zone == "DEU"
        assert factor.intensity_g_per_kwh == pytest.approx(GERMANY_2023_G_PER_KWH)
        assert factor.year == 2023
        assert factor.country_name == "Germany"


def test_source_names_the_file_and_the_data_origin() -> None:
    source = lookup_country_intensity("FR").source
    assert "codecarbon" in source
    assert "global_energy_mix.json" in source
    assert "Our World in Data" in source
    assert "2023" in source


def test_factor_is_frozen() -> None:
    factor = lookup_country_intensity("FR")
    with pytest.raises(AttributeError):
        factor.intensity_g_per_kwh = 0.0  # type: ignore[misc]


def test_unknown_code_names_the_value_and_suggests() -> None:
    with pytest.raises(ConfigError, match="'FRN'") as caught:
        lookup_country_intensity("FRN")
    suggestions = str(caught.value).split("close matches: ")[1].split(", ")
    assert suggestions[0] == "FRA (France)"
    assert 1 <= len(suggestions) <= 5


def test_misspelt_name_suggests_the_country() -> None:
    with pytest.raises(ConfigError, match=r"DEU \(Germany\)"):
        lookup_country_intensity("Germny")


def test_nothing_close() -> None:
    with pytest.raises(ConfigError, match="no close match"):
        lookup_country_intensity("ZZZ")


def test_real_country_without_data_is_an_error_not_a_default() -> None:
    # Antarctica (AQ / ATA) is an ISO country code with no entry in the energy-mix file.
    with pytest.raises(ConfigError, match=r"no carbon intensity for ATA \(Antarctica\)"):
        lookup_country_intensity("AQ")


@pytest.mark.parametrize("region", ["", "   "])
def test_empty_region(region: str) -> None:
    with pytest.raises(ConfigError, match="region is empty"):
        lookup_country_intensity(region)


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown region"):
        lookup_country_intensity("US-CA")
