"""``carbon doctor``: what this machine can measure, and how."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from carbon.cli._common import echo_json

if TYPE_CHECKING:
    from carbon.settings import Settings


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Explain which power sources work here, which are missing and why, and the settings."""
    from dataclasses import asdict

    from carbon.settings import load_settings
    from carbon.sources.detect import detect_sources, probe_machine
    from carbon.store.engine import mask_url

    settings = load_settings()
    probes = probe_machine(settings=settings)
    sources = detect_sources(settings=settings)
    try:
        devices = [device for source in sources for device in source.devices]
    finally:
        for source in sources:
            source.close()
    if as_json:
        echo_json(
            {
                "probes": [asdict(probe) for probe in probes],
                "devices": [
                    {
                        **asdict(device),
                        "component": device.component.value,
                        "provenance": device.provenance.value,
                    }
                    for device in devices
                ],
                "database_url": mask_url(settings.resolved_database_url),
                "server_url": settings.server_url,
                "spool": _spool_state(settings),
                "region": settings.region,
                "pue": settings.pue,
                "sample_hz": settings.sample_hz,
            }
        )
        return
    if settings.simulate_gpus:
        typer.echo(f"CARBON_SIMULATE_GPUS={settings.simulate_gpus}: GPUs below are simulated.\n")
    typer.echo("What this machine offers:")
    for probe in probes:
        mark = "yes" if probe.available else "no "
        typer.echo(f"  [{mark}] {probe.component:3} {probe.method:14} {probe.detail}")
    typer.echo("\nA run started now will measure:")
    for device in devices:
        typer.echo(
            f"  {device.component.value:3} {device.name}: {device.method} "
            f"({device.provenance.value}) - {device.detail}"
        )
    typer.echo("\nSettings:")
    if settings.remote:
        key = "key set" if settings.api_key else "CARBON_API_KEY is not set: runs will fail"
        typer.echo(f"  server     {settings.server_url} ({key})")
        spool = _spool_state(settings)
        waiting = (
            "empty"
            if spool is None
            else f"{spool['records']} record(s) waiting, "
            f"{spool['size_bytes'] / 1e6:.1f} of {settings.spool_max_mb:g} MB"
        )
        typer.echo(f"  spool      {settings.spool_path}: {waiting}")
    else:
        typer.echo(f"  store      {mask_url(settings.resolved_database_url)}")
    region = settings.region or "not set: CO2e will be unknown (set CARBON_REGION, e.g. FR)"
    typer.echo(f"  region     {region}")
    pue = (
        settings.pue
        if settings.pue is not None
        else "not set: a cloud region's published PUE, else 1.0"
    )
    typer.echo(f"  PUE        {pue}")
    typer.echo(f"  sampling   {settings.sample_hz:g} readings/s, one stored sample per second")


def _spool_state(settings: Settings) -> dict[str, Any] | None:
    """What the agent's spool holds, without creating it; ``None`` when there is none."""
    if not settings.spool_path.exists():
        return None
    from carbon.remote.spool import Spool

    spool = Spool(settings.spool_path)
    try:
        return {
            "path": str(settings.spool_path),
            "records": spool.count(),
            "rejected": len(spool.rejected()),
            "size_bytes": spool.size_bytes(),
        }
    finally:
        spool.close()
