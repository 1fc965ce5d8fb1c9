"""PUE defaults per cloud provider, 1.0 elsewhere, and the check every PUE goes through."""

from __future__ import annotations

import pytest

from carbon.accounting.pue import CLOUD_PUE, DEFAULT_PUE, PueFactor, check_pue, default_pue
from carbon.accounting.regions import CLOUD_PROVIDERS, parse_region
from carbon.errors import ConfigError


@pytest.mark.parametrize(
    ("region", "pue", "year", "publisher"),
    [
        ("gcp:europe-west1", 1.09, 2024, "Google"),
        ("aws:us-east-1", 1.14, 2025, "Amazon"),
        ("azure:westeurope", 1.18, 2022, "Microsoft"),
    ],
)
def test_cloud_region_gets_its_provider_published_pue(
    region: str, pue: float, year: int, publisher: str
) -> None:
    factor = default_pue(parse_region(region))
    assert factor.pue == pytest.approx(pue)
    assert factor.year == year
    assert publisher in factor.source
    assert "https://" in factor.source


@pytest.mark.parametrize("region", ["FR", "US-CA", "CA-QC", "SE3"])
def test_other_regions_default_to_one_and_say_why(region: str) -> None:
    factor = default_pue(parse_region(region))
    assert factor == DEFAULT_PUE
    assert factor.pue == 1.0
    assert factor.year is None
    assert "IT energy only" in factor.source


def test_every_provider_has_a_published_figure() -> None:
    assert set(CLOUD_PUE) == set(CLOUD_PROVIDERS)
    for factor in CLOUD_PUE.values():
        assert 1.0 < factor.pue < 1.3
        assert factor.year is not None


@pytest.mark.parametrize("value", [1.0, 1.1, 2.5, 1])
def test_check_accepts_values_from_one(value: float) -> None:
    checked = check_pue(value)
    assert checked == value
    assert isinstance(checked, float)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0.99, ">= 1.0"),
        (0.0, ">= 1.0"),
        (-1.2, ">= 1.0"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (float("-inf"), "finite"),
        (True, "number"),
        ("1.2", "number"),
    ],
)
def test_check_refuses_unusable_values(value: float, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_pue(value)


def test_check_error_is_a_value_error_naming_the_value() -> None:
    with pytest.raises(ValueError, match=r"0\.5"):
        check_pue(0.5)


def test_pue_factor_is_checked() -> None:
    with pytest.raises(ConfigError):
        PueFactor(0.9, "nowhere")
