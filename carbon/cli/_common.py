"""Helpers shared by the CLI commands: settings, the store and number formatting."""

from __future__ import annotations

import json
from typing import Any

import typer

from carbon.settings import Settings, load_settings
from carbon.store import Store, open_store


def settings_and_store(database_url: str | None = None) -> tuple[Settings, Store]:
    """The settings in force and the store they point at (migrated on first use)."""
    settings = load_settings(database_url=database_url)
    return settings, open_store(settings.resolved_database_url)


def echo_json(data: Any) -> None:
    """Print data as indented JSON (no NaN: unknown values are null)."""
    typer.echo(json.dumps(data, indent=2, allow_nan=False, sort_keys=False))


def fmt_energy(energy_j: float | None) -> str:
    """Energy with a readable prefix: J, kJ, MJ (or kWh past 1 MJ), ``—`` when unknown."""
    if energy_j is None:
        return "—"
    if energy_j < 1_000:
        return f"{energy_j:.1f} J"
    if energy_j < 1_000_000:
        return f"{energy_j / 1_000:.2f} kJ"
    return f"{energy_j / 3_600_000:.3f} kWh"


def fmt_mass_g(mass_g: float | None) -> str:
    """A mass of CO2e with a readable prefix: mg, g, kg, t; ``—`` when unknown."""
    if mass_g is None:
        return "—"
    if mass_g < 1:
        return f"{mass_g * 1000:.2f} mg"
    if mass_g < 1_000:
        return f"{mass_g:.2f} g"
    if mass_g < 1_000_000:
        return f"{mass_g / 1_000:.2f} kg"
    return f"{mass_g / 1_000_000:.2f} t"


def fmt_seconds(duration_s: float | None) -> str:
    """A duration as seconds, or h:mm:ss past an hour; ``—`` when unknown."""
    if duration_s is None:
        return "—"
    if duration_s < 3600:
        return f"{duration_s:.1f} s"
    hours, rest = divmod(int(duration_s), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
