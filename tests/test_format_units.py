"""Watt-hours, watts, shares and FLOP rates as text: prefixes, rounding and unknowns."""

from __future__ import annotations

import pytest

from carbon._format import (
    MISSING,
    format_energy,
    format_energy_wh,
    format_flops_per_s,
    format_mass_g,
    format_power,
    format_share,
)
from carbon.units import J_PER_KWH, J_PER_WH


def test_a_watt_hour_is_3600_joules() -> None:
    assert J_PER_WH == 3_600.0
    assert J_PER_KWH == 1_000 * J_PER_WH


@pytest.mark.parametrize(
    ("energy_j", "text"),
    [
        (None, MISSING),
        (0.0, "0 Wh"),
        (3_600.0, "1 Wh"),
        (1_800.0, "500 mWh"),
        (4_435.2, "1.23 Wh"),  # 1.232 Wh
        (3.6e6, "1 kWh"),
        (3.6e6 * 12.345, "12.3 kWh"),
        (3.6e9 * 4.5, "4.5 MWh"),
        (3.6e12 * 2, "2 GWh"),
        (3.6, "1 mWh"),
        (1.0, "278 µWh"),  # 1 J = 0.2778 mWh, below the 0.9995 mWh threshold
        (-7_200.0, "-2 Wh"),
        # The 0.9995 threshold of _prefixed: what would round to 1000 takes the next prefix.
        (0.9995 * J_PER_KWH, "1 kWh"),
        (0.9994 * J_PER_KWH, "999 Wh"),
        (0.9995 * J_PER_WH, "1 Wh"),
        (0.9994 * J_PER_WH, "999 mWh"),
    ],
)
def test_format_energy_wh_picks_a_prefix(energy_j: float | None, text: str) -> None:
    assert format_energy_wh(energy_j) == text


@pytest.mark.parametrize(
    ("power_w", "text"),
    [
        (None, MISSING),
        (0.0, "0 W"),
        (312.4, "312 W"),
        (0.0421, "42.1 mW"),
        (0.9995, "1 W"),
        (0.9994, "999 mW"),
        (999.5, "1 kW"),
        (1_500.0, "1.5 kW"),
        (2.25e6, "2.25 MW"),
        (-1_500.0, "-1.5 kW"),
    ],
)
def test_format_power_picks_a_prefix(power_w: float | None, text: str) -> None:
    assert format_power(power_w) == text


@pytest.mark.parametrize(
    ("fraction", "text"),
    [
        (None, MISSING),
        (0.0, "0.0 %"),
        (0.4213, "42.1 %"),
        (0.9777, "97.8 %"),
        (1.0, "100.0 %"),
        (1.25, "125.0 %"),
        (-0.25, "-25.0 %"),
        (0.0004, "0.04 %"),
        (-0.0004, "-0.04 %"),
        (0.000127, "0.013 %"),  # small shares keep two significant digits, never "0.0 %"
        (0.00999, "1.0 %"),
        (0.0094, "0.94 %"),
        (-0.0006, "-0.06 %"),
    ],
)
def test_format_share_is_a_percentage_never_rounded_to_zero(
    fraction: float | None, text: str
) -> None:
    assert format_share(fraction) == text


@pytest.mark.parametrize(
    ("flops_per_s", "text"),
    [
        (None, MISSING),
        (0.0, "0 FLOP/s"),
        (512.0, "512 FLOP/s"),
        (999.5, "1 kFLOP/s"),
        (2.5e6, "2.5 MFLOP/s"),
        (1.234e9, "1.23 GFLOP/s"),
        (989e12, "989 TFLOP/s"),
        (0.9995e15, "1 PFLOP/s"),
        (1.1e18, "1.1 EFLOP/s"),
    ],
)
def test_format_flops_per_s_picks_a_prefix(flops_per_s: float | None, text: str) -> None:
    assert format_flops_per_s(flops_per_s) == text


def test_existing_formats_keep_their_behaviour() -> None:
    assert format_energy(999.7) == "1 kJ"
    assert format_mass_g(0.5) == "500.00 mg"
    assert format_mass_g(1_234.0) == "1.23 kg"
