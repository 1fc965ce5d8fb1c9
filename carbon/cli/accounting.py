"""Carbon-accounting commands: ``carbon intensity import``, ``carbon market``, ``carbon whatif``."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from carbon._format import format_mass_g
from carbon.cli._common import echo_json, settings_and_store
from carbon.errors import ConfigError

if TYPE_CHECKING:
    from carbon.accounting.hourly import HourlyIntensity

intensity_app = typer.Typer(help="Hourly grid intensity series.", no_args_is_help=True)
market_app = typer.Typer(help="Contractual factors for market-based CO2e.", no_args_is_help=True)


@intensity_app.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(help="CSV file: zone, hour (UTC), gCO2e/kWh.")],
    zone: Annotated[
        str | None, typer.Option(help="Region the whole file describes (overrides its zones).")
    ] = None,
    replace: Annotated[bool, typer.Option(help="Overwrite hours already stored.")] = False,
) -> None:
    """Import an hourly intensity series (for example an Electricity Maps export).

    Runs in the series' zone are then priced hour by hour. The file is imported whole or
    not at all: a bad line is named and nothing is stored.
    """
    import dataclasses

    from carbon.accounting.hourly import parse_intensity_csv
    from carbon.store.factors import import_series

    rows = parse_intensity_csv(path)
    if zone is not None:
        code = _zone_of(zone)
        rows = [dataclasses.replace(row, zone=code) for row in rows]
    else:
        known: dict[str, str] = {}
        for row in rows:
            if row.zone not in known:
                try:
                    known[row.zone] = _zone_of(row.zone)
                except ConfigError:
                    known[row.zone] = row.zone  # a zone of the data's own (US-CAL-CISO)
        _one_hour_per_zone(path, rows, known)
        rows = [dataclasses.replace(row, zone=known[row.zone]) for row in rows]
    _, store = settings_and_store()
    with store.session() as session:
        count = import_series(session, rows, replace=replace)
    zones = sorted({row.zone for row in rows})
    typer.echo(f"imported {count} hour(s) for {', '.join(zones) or 'no zone'} from {path}")


def _one_hour_per_zone(path: Path, rows: list[HourlyIntensity], zones: dict[str, str]) -> None:
    """Refuse two spellings of one region (``FR``, ``fra``) that give the same hour.

    Raises:
        ConfigError: Two rows become the same zone and hour; the message names both.
    """
    seen: dict[tuple[str, datetime], str] = {}
    for row in rows:
        zone = zones[row.zone]
        first = seen.setdefault((zone, row.hour_start), row.zone)
        if first != row.zone:
            raise ConfigError(
                f"{path}: zones {first!r} and {row.zone!r} are both {zone} and both give the "
                f"hour {row.hour_start:%Y-%m-%dT%H:%MZ}; nothing was imported"
            )


def _zone_of(text: str) -> str:
    """The grid zone our static data uses for a region (``FR`` -> ``FRA``)."""
    from carbon.accounting.resolve import resolve

    return resolve(text).intensity.zone


def _when(text: str | None, what: str) -> datetime | None:
    """An ISO date or time as UTC (a time without an offset is UTC already)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{what} {text!r} is not an ISO date (2026-01-01)") from None
    try:
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        raise ConfigError(f"{what} {text!r} lies outside years 1 to 9999 in UTC") from None


@market_app.command("add")
def market_add(
    source: Annotated[str, typer.Option(help="The contract or certificates (auditable).")],
    project: Annotated[str | None, typer.Option(help="Applies to this project's runs.")] = None,
    region: Annotated[str | None, typer.Option(help="Applies to runs in this region.")] = None,
    intensity: Annotated[
        float | None, typer.Option(help="Supplier-specific factor, gCO2e/kWh.")
    ] = None,
    renewable_share: Annotated[
        float | None, typer.Option(help="Share of energy covered by certificates, 0 to 1.")
    ] = None,
    valid_from: Annotated[str | None, typer.Option("--from", help="ISO date.")] = None,
    valid_to: Annotated[str | None, typer.Option("--to", help="ISO date.")] = None,
) -> None:
    """Record a contractual factor; later runs it applies to get a market-based CO2e."""
    from carbon.store.factors import add_market_factor

    _, store = settings_and_store()
    with store.session() as session:
        factor = add_market_factor(
            session,
            source=source,
            project=project,
            zone=_zone_of(region) if region else None,
            intensity_g_per_kwh=intensity,
            renewable_share=renewable_share,
            valid_from=_when(valid_from, "--from"),
            valid_to=_when(valid_to, "--to"),
        )
        scope = f"project {factor.project}" if factor.project else f"zone {factor.zone}"
    typer.echo(f"market factor {factor.id} recorded for {scope}")


@market_app.command("list")
def market_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the contractual factors."""
    from carbon.store.factors import market_factors

    _, store = settings_and_store()
    with store.session() as session:
        rows = [
            {
                "id": f.id,
                "project": f.project,
                "zone": f.zone,
                "intensity_g_per_kwh": f.intensity_g_per_kwh,
                "renewable_share": f.renewable_share,
                "valid_from": f.valid_from.isoformat() if f.valid_from else None,
                "valid_to": f.valid_to.isoformat() if f.valid_to else None,
                "source": f.source,
            }
            for f in market_factors(session)
        ]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        factor = (
            f"{row['intensity_g_per_kwh']:g} g/kWh"
            if row["intensity_g_per_kwh"] is not None
            else f"{row['renewable_share']:.0%} renewable"
        )
        typer.echo(f"{row['id']:4} {row['project'] or row['zone']:20} {factor:18} {row['source']}")


def whatif_command(
    run_id: Annotated[str, typer.Argument(help="Run id or a unique prefix of 6+ characters.")],
    region: Annotated[list[str], typer.Option(help="A region to compare; repeat for several.")],
    pue: Annotated[float | None, typer.Option(help="PUE to apply in every region.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """What a run would have emitted in other regions, from its energy per hour."""
    from carbon.store.whatif import whatif

    _, store = settings_and_store()
    with store.session() as session:
        results = whatif(session, run_id, region, pue=pue)
    if as_json:
        echo_json([asdict(result) for result in results])
        return
    for r in results:
        missing = f", {r.missing_hours} hour(s) at the static factor" if r.missing_hours else ""
        typer.echo(
            f"{r.region:22} {format_mass_g(r.co2e_g):>10}  {r.method}: "
            f"{r.intensity_g_per_kwh:.1f} g/kWh x PUE {r.pue:g}{missing}  ({r.intensity_source})"
        )
