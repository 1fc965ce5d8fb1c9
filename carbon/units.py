"""Unit conversions with exact factors, in one place.

Names carry their units (``energy_j``, ``power_w``); these helpers are the only place
where one unit becomes another.
"""

from __future__ import annotations

J_PER_WH = 3_600.0
J_PER_KWH = 3_600_000.0
UJ_PER_J = 1_000_000.0
MJ_PER_J = 1_000.0  # millijoules per joule (NVML counts millijoules)
MW_PER_W = 1_000.0  # milliwatts per watt (NVML reports milliwatts)
G_PER_KG = 1_000.0
BYTES_PER_GIB = 1024.0**3


def j_to_kwh(energy_j: float) -> float:
    """Convert joules to kilowatt-hours."""
    return energy_j / J_PER_KWH


def kwh_to_j(energy_kwh: float) -> float:
    """Convert kilowatt-hours to joules."""
    return energy_kwh * J_PER_KWH
