"""Helpers shared by the CLI commands: settings, the store and number formatting."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import typer

from carbon.errors import ConfigError
from carbon.settings import Settings, load_settings
from carbon.store import Store, open_store


def settings_and_store(database_url: str | None = None) -> tuple[Settings, Store]:
    """The settings in force and the store they point at (migrated on first use)."""
    settings = load_settings(database_url=database_url)
    return settings, open_store(settings.resolved_database_url)


def echo_json(data: Any) -> None:
    """Print data as indented JSON (no NaN: unknown values are null)."""
    typer.echo(json.dumps(data, indent=2, allow_nan=False, sort_keys=False))


def write_atomically(output: Path, content: bytes) -> None:
    """Write ``content`` to ``output`` whole or not at all (a temporary file, then rename).

    Raises:
        ConfigError: The folder does not exist or the file cannot be written; an existing
            file is left as it was.
    """
    folder = output.resolve().parent
    if not folder.is_dir():
        raise ConfigError(f"cannot write {output}: folder {folder} does not exist")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.", dir=folder)
    except OSError as exc:
        raise ConfigError(f"cannot write {output}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
        os.replace(temporary, output)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise ConfigError(f"cannot write {output}: {exc.strerror or exc}") from exc
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
