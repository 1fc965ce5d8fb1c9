"""Energy to emissions: grams of CO2e from joules, a PUE and a grid intensity.

Location-based Scope 2 accounting (GHG Protocol): the energy the hardware drew, scaled up by
the data centre's power usage effectiveness (PUE, facility energy over IT energy, at least
1) and multiplied by the average carbon intensity of the grid that supplied it.
"""

from __future__ import annotations

import math

from carbon.units import J_PER_KWH

__all__ = ["co2e_g"]


def co2e_g(energy_j: float, intensity_g_per_kwh: float, pue: float) -> float:
    """Return the emissions in grams of CO2e: ``energy_kwh x pue x intensity_g_per_kwh``.

    Args:
        energy_j: Energy drawn by the IT equipment, in joules (at least 0).
        intensity_g_per_kwh: Grid carbon intensity in gCO2e per kWh (at least 0).
        pue: Power usage effectiveness of the facility (at least 1; 1.0 counts IT only).

    Raises:
        ValueError: An argument is NaN or infinite, ``energy_j`` or the intensity is
            negative, or ``pue`` is below 1.
    """
    for name, value in (
        ("energy_j", energy_j),
        ("intensity_g_per_kwh", intensity_g_per_kwh),
        ("pue", pue),
    ):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")
    if energy_j < 0:
        raise ValueError(f"energy_j must not be negative, got {energy_j}")
    if intensity_g_per_kwh < 0:
        raise ValueError(f"intensity_g_per_kwh must not be negative, got {intensity_g_per_kwh}")
    if pue < 1:
        raise ValueError(f"pue must be at least 1 (facility energy / IT energy), got {pue}")
    return energy_j / J_PER_KWH * pue * intensity_g_per_kwh
