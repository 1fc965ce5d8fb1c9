"""``carbon db``: manage the store's schema."""

from __future__ import annotations

import typer

from carbon.settings import load_settings
from carbon.store import connect_store
from carbon.store.migrate import HEAD_REVISION, current_revision

app = typer.Typer(help="Manage the database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command() -> None:
    """Create or migrate the store at CARBON_DATABASE_URL to the newest schema."""
    settings = load_settings()
    store = connect_store(settings.resolved_database_url, migrate=True)
    try:
        typer.echo(f"{store.display_url} is at schema revision {HEAD_REVISION}")
    finally:
        store.dispose()


@app.command("current")
def current_command() -> None:
    """Print the store's schema revision without changing anything."""
    from carbon.store.engine import create_store_engine, mask_url

    settings = load_settings()
    url = settings.resolved_database_url
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            revision = current_revision(connection)
    finally:
        engine.dispose()
    typer.echo(f"{mask_url(url)}: {revision or 'empty'} (this carbon needs {HEAD_REVISION})")


@app.command("maintain")
def maintain_command() -> None:
    """Mark silent runs interrupted, make sample partitions, apply sample retention, once.

    The server does this every CARBON_MAINTENANCE_INTERVAL_S; run it from cron for a store
    that agents write to directly.
    """
    from carbon.store.maintenance import run_maintenance

    settings = load_settings()
    store = connect_store(settings.resolved_database_url)
    try:
        report = run_maintenance(store, settings)
    finally:
        store.dispose()
    typer.echo(
        f"runs marked interrupted (silent > {settings.heartbeat_timeout_s:g} s): "
        f"{len(report.interrupted)}"
    )
    if report.skipped_locked:
        typer.echo("partitions and retention: skipped, another process is doing them")
        return
    typer.echo(f"sample partitions made: {', '.join(report.partitions_created) or 'none'}")
    if report.retention is None:
        typer.echo("retention: off (CARBON_SAMPLE_RETENTION_DAYS unset), raw samples are kept")
    else:
        retention = report.retention
        typer.echo(
            f"retention: {retention.samples_removed} sample(s) before "
            f"{retention.cutoff:%Y-%m-%d} removed (their minutes keep them); partitions dropped: "
            f"{', '.join(retention.partitions_dropped) or 'none'}"
        )
