"""The factors a run is priced with: region, intensity (static or live) and PUE."""

import time

import pytest

import carbon
from carbon.accounting.providers.electricitymaps import ElectricityMapsProvider
from carbon.accounting.regions import parse_region
from carbon.accounting.resolve import electricitymaps_zone, resolve
from carbon.settings import Settings
from carbon.testing import ConstantPowerSource


@pytest.mark.parametrize(
    ("region", "zone"),
    [("FR", "FR"), ("DEU", "DE"), ("SE3", "SE-SE3"), ("gcp:europe-west1", "BE"), ("US-CA", None)],
)
def test_electricitymaps_zone_ids(region: str, zone: str | None) -> None:
    assert electricitymaps_zone(parse_region(region)) == zone


def test_cloud_region_gets_its_zone_factor_and_the_providers_pue() -> None:
    pricing = resolve("aws:us-east-1")
    assert pricing.intensity.zone == "US-VA"
    assert pricing.pue.pue == 1.14  # AWS's published global PUE (see carbon/accounting/pue.py)
    assert "Amazon" in pricing.pue.source
    assert resolve("aws:us-east-1", pue=1.3).pue.pue == 1.3


def test_live_failure_falls_back_to_static_with_the_reason() -> None:
    unreachable = ElectricityMapsProvider(
        "secret-token", base_url="http://127.0.0.1:1", timeout_s=1
    )
    pricing = resolve("FR", live=unreachable)
    static = resolve("FR")
    assert pricing.intensity.intensity_g_per_kwh == static.intensity.intensity_g_per_kwh
    assert pricing.intensity.fallback is True
    assert "live intensity unavailable" in (pricing.intensity.fallback_reason or "")
    assert "secret-token" not in (pricing.intensity.fallback_reason or "")
    state = resolve("US-CA", live=unreachable).intensity
    assert state.fallback is True
    assert "no zone for US-CA" in (state.fallback_reason or "")


def test_run_records_region_zone_pue_source_and_fallback(settings: Settings) -> None:
    with carbon.track(
        settings=settings.model_copy(update={"region": "gcp:europe-west1"}),
        sources=[ConstantPowerSource(100.0)],
    ) as run:
        time.sleep(0.2)
    s = run.summary()
    assert s["region"] == "gcp:europe-west1"
    assert s["intensity_zone"] == "BEL"
    assert s["pue"] == 1.09
    assert "Google" in s["pue_source"]
    assert s["intensity_fallback"] is False
    assert s["intensity_factor_type"] == "lifecycle"
    assert s["co2e_g"] == pytest.approx(s["energy_j"] / 3.6e6 * 1.09 * s["intensity_g_per_kwh"])
