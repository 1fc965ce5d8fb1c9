"""CO2e as a run is written: energy per hour, hourly intensities, market factors."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from carbon import wire
from carbon.accounting.hourly import split_energy_by_hour
from carbon.store import open_store
from carbon.store.models import IntensityHour, MarketFactor, Run, RunEnergyHour
from carbon.store.pricing import energy_hour_rows
from carbon.store.sink import LocalSink

START = datetime(2026, 3, 1, 9, 59, 58, tzinfo=UTC)  # two seconds before 10:00 UTC
RUN_ID = "0123456789abcdef0123456789abcdef"


def _start(project: str = "p") -> wire.RunStart:
    return wire.RunStart(
        id=RUN_ID,
        project=project,
        name="n",
        kind="training",
        started_at=START,
        host="h",
        region="FR",
        pue=1.25,
        intensity=wire.IntensityInfo(
            intensity_g_per_kwh=56.0, source="static", zone="FRA", year=2023
        ),
        sample_hz=10,
        carbon_version="test",
        devices=[
            wire.DeviceSpec(
                position=0,
                component="gpu",
                name="g",
                method="m",
                provenance="measured",
                detail="d",
            )
        ],
    )


def _batch() -> wire.Batch:
    # Four one-second samples of 3600 J each: seconds 0-2 fall before 10:00, 2-4 after.
    return wire.Batch(
        run_id=RUN_ID,
        seq=0,
        sample_device=[0, 0, 0, 0],
        sample_offset_s=[1.0, 2.0, 3.0, 4.0],
        sample_interval_s=[1.0, 1.0, 1.0, 1.0],
        sample_energy_j=[3600.0] * 4,
        sample_utilization=[None] * 4,
        totals=wire.Totals(duration_s=4.0, device_energy_j=[14400.0], steps=0),
    )


def _series(url: str, rows: list[tuple[datetime, float]]) -> None:
    store = open_store(url)
    with store.session() as session:
        session.add_all(
            IntensityHour(zone="FRA", hour_start=hour, intensity_g_per_kwh=value, source="t")
            for hour, value in rows
        )


def test_energy_is_split_by_hour_and_priced_hour_by_hour(store_url: str) -> None:
    nine, ten = (
        START.replace(minute=0, second=0),
        START.replace(minute=0, second=0) + timedelta(hours=1),
    )
    _series(store_url, [(nine, 100.0), (ten, 20.0)])
    sink = LocalSink(open_store(store_url))
    sink.start_run(_start())
    sink.write(_batch())
    with sink.store.session() as session:
        hours = {row.hour_start: row.energy_j for row in session.scalars(select(RunEnergyHour))}
        run = session.get(Run, RUN_ID)
        assert run is not None
        # 7200 J = 0.002 kWh in each hour, times PUE 1.25, at 100 and 20 g/kWh.
        assert hours == {nine: pytest.approx(7200.0), ten: pytest.approx(7200.0)}
        assert run.co2e_method == "hourly"
        assert run.co2e_g == pytest.approx(0.002 * 1.25 * 100 + 0.002 * 1.25 * 20)
        assert run.intensity_fallback is False
        assert run.co2e_market_g is None


def test_an_hour_missing_from_the_series_falls_back_and_says_so(store_url: str) -> None:
    nine = START.replace(minute=0, second=0)
    _series(store_url, [(nine, 100.0)])
    sink = LocalSink(open_store(store_url))
    sink.start_run(_start())
    sink.write(_batch())
    with sink.store.session() as session:
        run = session.get(Run, RUN_ID)
        assert run is not None
        assert run.co2e_g == pytest.approx(0.002 * 1.25 * 100 + 0.002 * 1.25 * 56.0)
        assert run.intensity_fallback is True
        assert "1 hour(s) missing from the FRA series" in (run.intensity_fallback_reason or "")


def test_static_factor_without_a_series(store_url: str) -> None:
    sink = LocalSink(open_store(store_url))
    sink.start_run(_start())
    sink.write(_batch())
    with sink.store.session() as session:
        run = session.get(Run, RUN_ID)
        assert run is not None
        assert run.co2e_method == "static"
        assert run.co2e_g == pytest.approx(0.004 * 1.25 * 56.0)


@pytest.mark.parametrize(
    ("factor", "expected_g"),
    [
        ({"intensity_g_per_kwh": 10.0}, 0.004 * 1.25 * 10.0),
        ({"renewable_share": 0.75}, 0.004 * 1.25 * 56.0 * 0.25),
    ],
)
def test_market_based_is_reported_beside_location_based(
    store_url: str, factor: dict[str, float], expected_g: float
) -> None:
    store = open_store(store_url)
    with store.session() as session:
        session.add(
            MarketFactor(project="p", source="PPA with a wind farm", created_at=START, **factor)
        )
    sink = LocalSink(store)
    sink.start_run(_start())
    sink.write(_batch())
    with store.session() as session:
        run = session.get(Run, RUN_ID)
        assert run is not None
        assert run.co2e_g == pytest.approx(0.004 * 1.25 * 56.0)  # location-based untouched
        assert run.co2e_market_g == pytest.approx(expected_g)
        assert "PPA with a wind farm" in (run.market_source or "")


@settings(max_examples=300, deadline=None)
@given(
    start_us=st.integers(min_value=0, max_value=3600 * 10**6 - 1),
    first_s=st.floats(min_value=0, max_value=20_000),
    parts=st.lists(
        st.tuples(
            st.floats(min_value=0.001, max_value=5.0), st.floats(min_value=0, max_value=900.0)
        ),
        min_size=1,
        max_size=40,
    ),
)
def test_energy_per_hour_of_a_batch_matches_the_split_of_its_samples(
    start_us: int, first_s: float, parts: list[tuple[float, float]]
) -> None:
    started = START.replace(minute=0, second=0) + timedelta(microseconds=start_us)
    ends, end_s = [], first_s
    for interval_s, _ in parts:
        end_s += interval_s
        ends.append(end_s)
    batch = wire.Batch(
        run_id=RUN_ID,
        seq=0,
        sample_device=[0] * len(parts),
        sample_offset_s=ends,
        sample_interval_s=[interval_s for interval_s, _ in parts],
        sample_energy_j=[energy_j for _, energy_j in parts],
        sample_utilization=[None] * len(parts),
        totals=wire.Totals(duration_s=end_s, device_energy_j=[0.0], steps=0),
    )
    rows = energy_hour_rows(RUN_ID, 0, started, batch)
    expected = split_energy_by_hour(
        [
            (started + timedelta(seconds=e - i), started + timedelta(seconds=e), j)
            for e, (i, j) in zip(ends, parts, strict=True)
        ]
    )
    got = {row["hour_start"]: row["energy_j"] for row in rows}
    assert got.keys() == {hour for hour, energy_j in expected.items() if energy_j > 0}
    for hour, energy_j in got.items():
        assert energy_j == pytest.approx(expected[hour], rel=1e-9, abs=1e-6)
