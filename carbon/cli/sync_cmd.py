"""``carbon sync``: send the spooled records of ended runs to the team server."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from carbon.settings import load_settings


def sync_command(
    timeout: Annotated[
        float, typer.Option(min=0, help="Seconds to keep trying before giving up.")
    ] = 60.0,
) -> None:
    """Send what the spool holds to CARBON_SERVER_URL; close runs of dead processes.

    Exits 1 when records remain (the server is unreachable, the key was refused...); they
    stay in the spool for the next try.
    """
    from carbon.remote.senders import close_senders
    from carbon.remote.sync import sync

    settings = load_settings()
    # The report says why records remain; the sender's "retrying" warning would repeat it.
    sender_log = logging.getLogger("carbon.remote.sender")
    level = sender_log.level
    sender_log.setLevel(logging.ERROR)
    try:
        report = sync(settings, timeout_s=timeout)
    finally:
        close_senders(timeout_s=0.0, spool_path=settings.spool_path)
        sender_log.setLevel(level)
    lines = report.lines()
    typer.echo(lines[0])
    if report.remaining:
        typer.secho(f"error: {lines[1]}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)
