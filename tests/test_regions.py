"""The one region parser: every accepted form, normalisation, and errors that suggest."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from carbon.accounting.regions import (
    CLOUD_PROVIDERS,
    Region,
    cloud_regions,
    known_regions,
    parse_region,
)
from carbon.errors import ConfigError


def _suggestions(error: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return str(error.value).split("close matches: ")[1].split(", ")


@pytest.mark.parametrize("text", ["FR", "fr", "FRA", "fra", " Fra "])
def test_country_alpha2_and_alpha3_in_any_case(text: str) -> None:
    assert parse_region(text) == Region("country", "FRA", "France", "FRA")


def test_alpha2_and_alpha3_give_the_same_region() -> None:
    assert parse_region("GB") == parse_region("gbr")
    assert parse_region("GB").code == "GBR"


@pytest.mark.parametrize(
    ("text", "code", "name", "country"),
    [
        ("US-CA", "US-CA", "California", "USA"),
        ("us-va", "US-VA", "Virginia", "USA"),
        ("US-DC", "US-DC", "District of Columbia", "USA"),
        ("CA-QC", "CA-QC", "Quebec", "CAN"),
        ("ca-on", "CA-ON", "Ontario", "CAN"),
        ("CA-YT", "CA-YT", "Yukon", "CAN"),
    ],
)
def test_us_states_and_canadian_provinces(text: str, code: str, name: str, country: str) -> None:
    region = parse_region(text)
    assert (region.kind, region.code, region.name, region.country) == (
        "subregion",
        code,
        name,
        country,
    )
    assert region.provider is None
    assert region.cloud_region is None


@pytest.mark.parametrize(
    ("text", "country"),
    [
        *[(f"SE{n}", "SWE") for n in range(1, 5)],
        *[(f"no{n}", "NOR") for n in range(1, 6)],
        ("DK1", "DNK"),
        ("dk2", "DNK"),
    ],
)
def test_nordic_bidding_zones(text: str, country: str) -> None:
    region = parse_region(text)
    assert region.kind == "subregion"
    assert region.code == text.upper()
    assert region.country == country


def test_fi_is_finland_the_country_and_its_single_bidding_zone() -> None:
    assert parse_region("FI") == parse_region("FIN")
    assert parse_region("fi").kind == "country"


@pytest.mark.parametrize(
    ("text", "code", "provider", "name", "country"),
    [
        ("gcp:europe-west1", "gcp:europe-west1", "gcp", "europe-west1", "BEL"),
        ("GCP:Europe-West4", "gcp:europe-west4", "gcp", "europe-west4", "NLD"),
        (" gcp : us-central1 ", "gcp:us-central1", "gcp", "us-central1", "USA"),
        ("aws:us-east-1", "aws:us-east-1", "aws", "us-east-1", "USA"),
        ("AWS:EU-WEST-1", "aws:eu-west-1", "aws", "eu-west-1", "IRL"),
        ("aws:eu-north-1", "aws:eu-north-1", "aws", "eu-north-1", "SWE"),
        ("azure:westeurope", "azure:westeurope", "azure", "westeurope", "NLD"),
        ("Azure:NorthEurope", "azure:northeurope", "azure", "northeurope", "IRL"),
        ("azure:eastus", "azure:eastus", "azure", "eastus", "USA"),
    ],
)
def test_cloud_regions(text: str, code: str, provider: str, name: str, country: str) -> None:
    region = parse_region(text)
    assert region.kind == "cloud"
    assert region.code == code
    assert region.provider == provider
    assert region.cloud_region == name
    assert region.country == country


def test_cloud_region_name_is_its_documented_location() -> None:
    assert parse_region("gcp:europe-west1").name == "St. Ghislain, Belgium"
    assert parse_region("azure:westeurope").name == "Netherlands"


def test_region_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        parse_region("FR").code = "DEU"  # type: ignore[misc]


def test_unknown_country_code_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match="unknown region 'FRR'") as caught:
        parse_region("FRR")
    suggestions = _suggestions(caught)
    assert suggestions[0] == "FRA (France)"
    assert 1 <= len(suggestions) <= 5


def test_unknown_cloud_region_suggests_the_provider_regions() -> None:
    with pytest.raises(ConfigError, match="'gcp:europe-west9x'") as caught:
        parse_region("gcp:europe-west9x")
    suggestions = _suggestions(caught)
    assert suggestions[0].startswith("gcp:europe-west9 (")
    assert all(s.startswith("gcp:europe-west") for s in suggestions)
    assert len(suggestions) == 5


def test_unknown_provider_is_named() -> None:
    with pytest.raises(ConfigError, match="unknown cloud provider 'gpc'") as caught:
        parse_region("gpc:europe-west1")
    assert _suggestions(caught)[0].startswith("gcp:europe-west1 (")


def test_misspelt_name_suggests_by_name() -> None:
    with pytest.raises(ConfigError, match=r"DEU \(Germany\)"):
        parse_region("Germny")


def test_bare_cloud_region_suggests_it_with_its_provider() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_region("westeurope")
    assert _suggestions(caught)[0] == "azure:westeurope (Netherlands)"


def test_us_outlying_area_points_to_its_country_code() -> None:
    with pytest.raises(ConfigError, match="own ISO country code, PR") as caught:
        parse_region("US-PR")
    assert _suggestions(caught)[0] == "PRI (Puerto Rico)"


@pytest.mark.parametrize("text", ["ZZZ", "qqqqqqqqqq"])
def test_nothing_close(text: str) -> None:
    with pytest.raises(ConfigError, match="no close match"):
        parse_region(text)


@pytest.mark.parametrize("text", ["", "   "])
def test_empty(text: str) -> None:
    with pytest.raises(ConfigError, match="region is empty"):
        parse_region(text)


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown region"):
        parse_region("nowhere")


def test_every_known_region_parses_back_to_itself() -> None:
    regions = known_regions()
    assert len({region.code for region in regions}) == len(regions)
    for region in regions:
        assert parse_region(region.code) == region
        assert parse_region(region.code.lower()) == region


def test_known_regions_cover_every_form() -> None:
    kinds = Counter(region.kind for region in known_regions())
    assert kinds["country"] >= 240  # every ISO 3166 country, with or without data
    # 50 states + DC, 10 provinces + 3 territories, SE1-4, NO1-5, DK1-2
    assert kinds["subregion"] == 51 + 13 + 11
    assert kinds["cloud"] == len(cloud_regions())


def test_cloud_table_has_the_major_regions_of_each_provider() -> None:
    rows = cloud_regions()
    per_provider = Counter(row.provider for row in rows)
    assert set(per_provider) == set(CLOUD_PROVIDERS)
    assert per_provider["gcp"] >= 15
    assert per_provider["aws"] >= 15
    assert per_provider["azure"] >= 10
    assert len({(row.provider, row.region) for row in rows}) == len(rows)
    by_code = {f"{row.provider}:{row.region}": row.grid_zone for row in rows}
    # Physical locations from each provider's region documentation.
    assert by_code["aws:us-east-1"] == "US-VA"
    assert by_code["aws:us-west-2"] == "US-OR"
    assert by_code["aws:eu-west-1"] == "IE"
    assert by_code["aws:eu-central-1"] == "DE"
    assert by_code["gcp:europe-west1"] == "BE"
    assert by_code["gcp:europe-west4"] == "NL"
    assert by_code["gcp:us-central1"] == "US-IA"
    assert by_code["azure:westeurope"] == "NL"
    assert by_code["azure:northeurope"] == "IE"
    assert by_code["azure:eastus"] == "US-VA"


def test_cloud_table_rows_name_a_grid_zone_and_the_provider_page() -> None:
    pages = {
        "gcp": "https://cloud.google.com/",
        "aws": "https://docs.aws.amazon.com/",
        "azure": "https://learn.microsoft.com/",
    }
    for row in cloud_regions():
        zone = parse_region(row.grid_zone)
        assert zone.kind in ("country", "subregion"), row
        assert pages[row.provider] in row.source, row
        assert row.location
        assert row.year is not None
        assert row.year >= 2025
