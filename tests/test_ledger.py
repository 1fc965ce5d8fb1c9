import math

import pytest

from carbon.sources.base import DeviceReading
from carbon.tracking.ledger import Ledger


def test_counter_advances_become_interval_energy_and_totals() -> None:
    ledger = Ledger(t0=100.0, device_count=1)
    ledger.observe(0, [DeviceReading(energy_j=1000.0)], 100.0)
    ledger.observe(0, [DeviceReading(energy_j=1030.0)], 100.5)
    ledger.observe(0, [DeviceReading(energy_j=1070.0)], 101.0)
    first = ledger.close_interval(101.0)
    ledger.observe(0, [DeviceReading(energy_j=1100.5)], 101.7)
    second = ledger.close_interval(101.7)
    assert [(i.start_s, i.end_s, i.energy_j) for i in first] == [(0.0, 1.0, 70.0)]
    assert second[0].start_s == 1.0
    assert second[0].end_s == pytest.approx(1.7)
    assert second[0].energy_j == pytest.approx(30.5)
    assert ledger.totals_j == [pytest.approx(100.5)]


def test_power_readings_are_integrated_with_trapezoids() -> None:
    # Power ramps 0 -> 100 W over 2 s in 0.5 s steps: the integral is exactly 100 J.
    ledger = Ledger(t0=0.0, device_count=1)
    for k in range(5):
        ledger.observe(0, [DeviceReading(energy_j=None, power_w=50.0 * k * 0.5)], 0.5 * k)
    (interval,) = ledger.close_interval(2.0)
    assert interval.energy_j == pytest.approx(100.0)


def test_counter_going_back_is_reported_and_never_negative() -> None:
    ledger = Ledger(t0=0.0, device_count=1)
    ledger.observe(0, [DeviceReading(energy_j=500.0)], 0.0)
    ledger.observe(0, [DeviceReading(energy_j=510.0)], 0.1)
    ledger.observe(0, [DeviceReading(energy_j=3.0)], 0.2)  # driver reloaded: counter reset
    ledger.observe(0, [DeviceReading(energy_j=8.0)], 0.3)
    (interval,) = ledger.close_interval(0.3)
    assert interval.energy_j == pytest.approx(15.0)
    assert len(ledger.anomalies) == 1
    assert "went back by 507.000 J" in ledger.anomalies[0]


def test_utilization_is_averaged_per_interval_and_devices_are_independent() -> None:
    ledger = Ledger(t0=0.0, device_count=2)
    ledger.observe(0, [DeviceReading(0.0, utilization=0.2), DeviceReading(0.0)], 0.0)
    ledger.observe(0, [DeviceReading(5.0, utilization=0.6), DeviceReading(7.0)], 1.0)
    a, b = ledger.close_interval(1.0)
    assert a.utilization == pytest.approx(0.4)
    assert b.utilization is None
    assert (a.energy_j, b.energy_j) == (5.0, 7.0)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0])
def test_unusable_readings_are_refused(bad: float) -> None:
    ledger = Ledger(t0=0.0, device_count=1)
    with pytest.raises(ValueError, match="unusable reading"):
        ledger.observe(0, [DeviceReading(energy_j=bad)], 0.0)


def test_zero_length_interval_is_not_closed() -> None:
    ledger = Ledger(t0=5.0, device_count=1)
    assert ledger.close_interval(5.0) == []
    assert ledger.open_since_s == 0.0
