"""Numbers as text for the terminal, each with its unit; unknown shows as an em dash.

One place for the prefixes, so the CLI and the demo's table print the same figure alike.
"""

from __future__ import annotations

from carbon.units import J_PER_WH

MISSING = "—"
"""An unknown value: never printed as 0, which would read as a measurement."""

_ENERGY_PREFIXES = ((1e6, "MJ"), (1e3, "kJ"), (1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ"))
_PER_FLOP_PREFIXES = ((1e-6, "µJ"), (1e-9, "nJ"), (1e-12, "pJ"), (1e-15, "fJ"))
_WH_PREFIXES = (
    (1e9, "GWh"),
    (1e6, "MWh"),
    (1e3, "kWh"),
    (1.0, "Wh"),
    (1e-3, "mWh"),
    (1e-6, "µWh"),
)
_POWER_PREFIXES = ((1e6, "MW"), (1e3, "kW"), (1.0, "W"), (1e-3, "mW"))
_FLOPS_PREFIXES = (
    (1e18, "EFLOP/s"),
    (1e15, "PFLOP/s"),
    (1e12, "TFLOP/s"),
    (1e9, "GFLOP/s"),
    (1e6, "MFLOP/s"),
    (1e3, "kFLOP/s"),
    (1.0, "FLOP/s"),
)


def _prefixed(value: float, prefixes: tuple[tuple[float, str], ...]) -> str:
    """Three significant digits with the largest prefix the value reaches (else the last)."""
    for factor, unit in prefixes:
        if abs(value) >= factor * 0.9995:
            return f"{value / factor:.3g} {unit}"
    factor, unit = prefixes[-1]
    return f"{value / factor:.3g} {unit}"


def format_energy(energy_j: float | None) -> str:
    """Joules with an SI prefix and three significant digits (``4.21 mJ``, ``1.23 kJ``)."""
    if energy_j is None:
        return MISSING
    if energy_j == 0:
        return "0 J"
    return _prefixed(energy_j, _ENERGY_PREFIXES)


def format_energy_wh(energy_j: float | None) -> str:
    """Joules as watt-hours with a prefix and three significant digits (``1.23 kWh``).

    Energy bills and grid figures are in watt-hours, so totals read better this way;
    prefixes run from µWh to GWh (1 Wh = 3600 J).
    """
    if energy_j is None:
        return MISSING
    if energy_j == 0:
        return "0 Wh"
    return _prefixed(energy_j / J_PER_WH, _WH_PREFIXES)


def format_power(power_w: float | None) -> str:
    """Watts with a prefix (mW, W, kW, MW) and three significant digits (``312 W``)."""
    if power_w is None:
        return MISSING
    if power_w == 0:
        return "0 W"
    return _prefixed(power_w, _POWER_PREFIXES)


def format_share(fraction: float | None) -> str:
    """A fraction as a percentage (``0.4213`` -> ``42.1 %``).

    One decimal from 1 % on; below, two significant digits (``0.00013`` -> ``0.013 %``), so
    a small MFU or saving never reads as zero. Only zero prints ``0.0 %``.
    """
    if fraction is None:
        return MISSING
    percent = fraction * 100
    if percent != 0 and abs(round(percent, 1)) < 1:
        return f"{percent:.2g} %"
    return f"{round(percent, 1) + 0.0:.1f} %"


def format_flops_per_s(flops_per_s: float | None) -> str:
    """A FLOP rate with a prefix from k to E and three significant digits (``312 TFLOP/s``)."""
    if flops_per_s is None:
        return MISSING
    if flops_per_s == 0:
        return "0 FLOP/s"
    return _prefixed(flops_per_s, _FLOPS_PREFIXES)


def format_j_per_flop(j_per_flop: float | None) -> str:
    """Joules per FLOP with a prefix from femto to micro (``350 pJ``, ``45.9 nJ``)."""
    if j_per_flop is None:
        return MISSING
    return _prefixed(j_per_flop, _PER_FLOP_PREFIXES)


def format_mass_g(mass_g: float | None) -> str:
    """A mass of CO2e with a readable prefix: mg, g, kg, t."""
    if mass_g is None:
        return MISSING
    if mass_g < 1:
        return f"{mass_g * 1000:.2f} mg"
    if mass_g < 1_000:
        return f"{mass_g:.2f} g"
    if mass_g < 1_000_000:
        return f"{mass_g / 1_000:.2f} kg"
    return f"{mass_g / 1_000_000:.2f} t"


def format_duration(duration_s: float | None) -> str:
    """Seconds with one decimal (``12.3 s``), or h:mm:ss from an hour on."""
    if duration_s is None:
        return MISSING
    if duration_s < 3600:
        return f"{duration_s:.1f} s"
    hours, rest = divmod(int(duration_s), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
