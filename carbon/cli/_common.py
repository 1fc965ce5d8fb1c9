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
