"""Numbers as text for the terminal, each with its unit; unknown shows as an em dash.

One place for the prefixes, so the CLI and the demo's table print the same figure alike.
"""

from __future__ import annotations

MISSING = "—"
"""An unknown value: never printed as 0, which would read as a measurement."""

_ENERGY_PREFIXES = ((1e6, "MJ"), (1e3, "kJ"), (1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ"))
_PER_FLOP_PREFIXES = ((1e-6, "µJ"), (1e-9, "nJ"), (1e-12, "pJ"), (1e-15, "fJ"))


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
