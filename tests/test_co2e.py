from __future__ import annotations

import math

import pytest

from carbon.accounting import co2e_g


def test_one_kwh_at_unit_pue_is_the_intensity() -> None:
    assert co2e_g(3_600_000.0, 100.0, 1.0) == pytest.approx(100.0)


def test_pue_scales_the_energy() -> None:
    # 2 kWh x 1.5 x 56.039 g/kWh (France 2023) = 168.117 g
    assert co2e_g(7_200_000.0, 56.039, 1.5) == pytest.approx(168.117)


def test_small_energy() -> None:
    # 1 kJ at 380.95 g/kWh: 1000 / 3.6e6 x 380.95 = 0.105819... g
    assert co2e_g(1_000.0, 380.95, 1.0) == pytest.approx(0.10581944444)


def test_zero_energy_and_zero_intensity_give_zero() -> None:
    assert co2e_g(0.0, 400.0, 1.2) == 0.0
    assert co2e_g(5e6, 0.0, 1.2) == 0.0


@pytest.mark.parametrize(
    ("energy_j", "intensity", "pue", "message"),
    [
        (-1.0, 100.0, 1.0, "energy_j must not be negative"),
        (1.0, -5.0, 1.0, "intensity_g_per_kwh must not be negative"),
        (1.0, 100.0, 0.99, "pue must be at least 1"),
        (math.nan, 100.0, 1.0, "energy_j must be a finite number"),
        (1.0, math.nan, 1.0, "intensity_g_per_kwh must be a finite number"),
        (1.0, 100.0, math.nan, "pue must be a finite number"),
        (math.inf, 100.0, 1.0, "energy_j must be a finite number"),
    ],
)
def test_bad_inputs_raise(energy_j: float, intensity: float, pue: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        co2e_g(energy_j, intensity, pue)
