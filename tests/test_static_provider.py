"""StaticProvider: codecarbon's yearly figures, converted where needed, with provenance."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from carbon.accounting.providers import IntensityFactor, IntensityProvider, StaticProvider, static
from carbon.accounting.regions import cloud_regions, parse_region
from carbon.errors import ConfigError, SourceUnavailable

# Literals read from codecarbon 3.3.2's data/private_infra/ files:
# global_energy_mix.json "FRA": carbon_intensity 56.039, year 2023
FRANCE_2023_G_PER_KWH = 56.039
# global_energy_mix.json "BEL": carbon_intensity 138.107, year 2023
BELGIUM_2023_G_PER_KWH = 138.107
# global_energy_mix.json "FIN": carbon_intensity 79.158, year 2023
FINLAND_2023_G_PER_KWH = 79.158
# 2023/usa_emissions.json "california": emissions 394.769 (unit lbs/MWh, eGRID2023 STC2ERTA)
CALIFORNIA_2023_LB_PER_MWH = 394.769
# 2023/usa_emissions.json "virginia": emissions 539.599 lbs/MWh
VIRGINIA_2023_LB_PER_MWH = 539.599
# 2023/canada_energy_mix.json "quebec": coal 0.0, petroleum 0.3, naturalGas 0.2, total 100.01
# carbon_intensity_per_source.json: coal 995, petroleum 816, natural_gas 743 (gCO2.eq/kWh)
QUEBEC_2023_G_PER_KWH = (0.0 * 995 + 0.3 * 816 + 0.2 * 743) / 100.01
# 2023/canada_energy_mix.json "alberta": coal 8.0, petroleum 0.02, naturalGas 73.5, total 99.82
ALBERTA_2023_G_PER_KWH = (8.0 * 995 + 0.02 * 816 + 73.5 * 743) / 99.82
# nordic_emissions.json "SE3": emission_factor 27.0 gCO2eq/kWh, year 2025
SE3_2025_G_PER_KWH = 27.0

provider = StaticProvider()


def _factor(text: str) -> IntensityFactor:
    return provider.factor(parse_region(text))


def test_is_an_intensity_provider() -> None:
    assert isinstance(provider, IntensityProvider)


def test_country_from_our_world_in_data() -> None:
    factor = _factor("FR")
    assert factor.zone == "FRA"
    assert factor.intensity_g_per_kwh == pytest.approx(FRANCE_2023_G_PER_KWH)
    assert factor.year == 2023
    assert factor.country_name == "France"
    assert factor.factor_type == "lifecycle"
    assert (factor.fallback, factor.fallback_reason, factor.hourly) == (False, None, False)
    for part in ("codecarbon", "data/private_infra/global_energy_mix.json", "Our World in Data"):
        assert part in factor.source
    assert "Ember" in factor.source
    assert "CC BY 4.0" in factor.source


def test_us_state_from_egrid_converted_from_pounds_per_mwh() -> None:
    factor = _factor("US-CA")
    assert factor.zone == "US-CA"
    # 1 lb = 453.59237 g and 1 MWh = 1000 kWh
    assert factor.intensity_g_per_kwh == pytest.approx(CALIFORNIA_2023_LB_PER_MWH * 0.45359237)
    assert factor.intensity_g_per_kwh == pytest.approx(179.064, abs=1e-3)
    assert factor.year == 2023
    assert factor.factor_type == "direct"
    assert factor.country_name == "United States"
    assert "2023/usa_emissions.json" in factor.source
    assert "eGRID2023" in factor.source
    assert "lb/MWh" in factor.source


def test_canadian_province_from_its_generation_mix() -> None:
    quebec = _factor("CA-QC")
    assert quebec.zone == "CA-QC"
    assert quebec.intensity_g_per_kwh == pytest.approx(QUEBEC_2023_G_PER_KWH)
    assert quebec.year == 2023
    assert quebec.factor_type == "direct"
    assert quebec.country_name == "Canada"
    assert "2023/canada_energy_mix.json" in quebec.source
    assert "carbon_intensity_per_source.json" in quebec.source
    assert _factor("ca-ab").intensity_g_per_kwh == pytest.approx(ALBERTA_2023_G_PER_KWH)


def test_every_us_state_and_canadian_province_has_a_figure() -> None:
    entries = {region.code for region, _ in provider.entries()}
    assert sum(code.startswith("US-") for code in entries) == 51
    assert sum(code.startswith("CA-") for code in entries) == 13


def test_nordic_bidding_zone() -> None:
    factor = _factor("SE3")
    assert factor.zone == "SE3"
    assert factor.intensity_g_per_kwh == pytest.approx(SE3_2025_G_PER_KWH)
    assert factor.year == 2025
    assert factor.factor_type == "lifecycle"
    assert factor.country_name == "Sweden"
    assert "nordic_emissions.json" in factor.source
    assert "ENTSO-E" in factor.source


def test_finland_uses_the_country_figure() -> None:
    factor = _factor("FI")
    assert factor.zone == "FIN"
    assert factor.intensity_g_per_kwh == pytest.approx(FINLAND_2023_G_PER_KWH)


def test_cloud_region_gets_its_grid_zone_figure() -> None:
    factor = _factor("gcp:europe-west1")
    assert factor.zone == "BEL"
    assert factor.intensity_g_per_kwh == pytest.approx(BELGIUM_2023_G_PER_KWH)
    assert factor.year == 2023
    assert factor.factor_type == "lifecycle"
    assert not factor.fallback
    assert "gcp:europe-west1" in factor.source
    assert "cloud_regions.csv" in factor.source
    assert "https://cloud.google.com/" in factor.source
    assert "global_energy_mix.json" in factor.source


def test_cloud_region_in_a_us_state() -> None:
    factor = _factor("aws:us-east-1")
    assert factor.zone == "US-VA"
    assert factor.intensity_g_per_kwh == pytest.approx(VIRGINIA_2023_LB_PER_MWH * 0.45359237)
    assert factor.factor_type == "direct"
    assert "usa_emissions.json" in factor.source


def test_cloud_region_in_a_bidding_zone() -> None:
    assert _factor("azure:swedencentral").intensity_g_per_kwh == pytest.approx(SE3_2025_G_PER_KWH)


def test_every_cloud_region_has_its_zone_figure() -> None:
    for row in cloud_regions():
        factor = _factor(f"{row.provider}:{row.region}")
        zone = _factor(row.grid_zone)
        assert factor.zone == zone.zone
        assert factor.intensity_g_per_kwh == zone.intensity_g_per_kwh
        assert factor.year == zone.year
        assert zone.source in factor.source


def test_the_moment_does_not_change_a_yearly_average() -> None:
    region = parse_region("FR")
    assert provider.factor(region, at=datetime(2024, 7, 1, 12, tzinfo=UTC)) == provider.factor(
        region
    )


def test_bidding_zone_without_data_is_an_error_that_names_the_country() -> None:
    with pytest.raises(ConfigError, match=r"no carbon intensity for DK1 .*available as DNK"):
        _factor("DK1")


def test_country_without_data_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"no carbon intensity for ATA \(Antarctica\)"):
        _factor("AQ")


def test_entries_list_each_region_once_and_never_a_fallback() -> None:
    entries = provider.entries()
    codes = [region.code for region, _ in entries]
    assert len(codes) == len(set(codes))
    assert {"FRA", "US-CA", "CA-QC", "SE3", "gcp:europe-west1"} <= set(codes)
    assert "DK1" not in codes
    assert not any(factor.fallback or factor.hourly for _, factor in entries)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"intensity_g_per_kwh": -1.0}, "finite and >= 0"),
        ({"intensity_g_per_kwh": float("nan")}, "finite and >= 0"),
        ({"factor_type": "marginal"}, "factor_type"),
        ({"fallback": True}, "fallback_reason"),
        ({"fallback_reason": "why"}, "fallback_reason"),
    ],
)
def test_factor_checks_its_fields(changes: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "zone": "FRA",
        "intensity_g_per_kwh": 56.0,
        "year": 2023,
        "source": "test",
        "country_name": "France",
        "factor_type": "lifecycle",
    }
    with pytest.raises(ValueError, match=message):
        IntensityFactor(**{**fields, **changes})  # type: ignore[arg-type]


def test_fallback_with_reason_is_allowed() -> None:
    factor = IntensityFactor("FRA", 56.0, 2023, "s", "France", "lifecycle", True, "API down")
    assert factor.fallback_reason == "API down"


@pytest.fixture
def fake_usa_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "usa_emissions.json"
    monkeypatch.setattr(static, "codecarbon_data_path", lambda relative: path)
    static._us_states.cache_clear()
    yield path
    static._us_states.cache_clear()


def test_unexpected_unit_is_refused_not_converted(fake_usa_file: Path) -> None:
    fake_usa_file.write_text(
        json.dumps(
            {
                "_unit": {"emissions": "kg/MWh"},
                "california": {"emissions": 180.0, "regionCode": "CA"},
            }
        )
    )
    with pytest.raises(SourceUnavailable, match="'kg/MWh'"):
        _factor("US-CA")
