"""``carbon regions``: the zones carbon has a grid intensity for, and where each comes from."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from carbon.cli._common import echo_json


def regions(
    query: Annotated[
        str | None,
        typer.Argument(help="Show only zones whose code or name contains this text."),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List the regions with a grid intensity: code, gCO2e/kWh, year, factor type, source.

    Countries, US states, Canadian provinces, Nordic bidding zones and cloud regions, one
    line each; a cloud region shows the figure of the grid zone it lies in.
    """
    from carbon.accounting.providers.static import StaticProvider
    from carbon.accounting.regions import suggest_regions

    wanted = (query or "").strip().lower()
    rows: list[dict[str, Any]] = []
    for region, factor in StaticProvider().entries():
        if wanted and wanted not in region.code.lower() and wanted not in region.name.lower():
            continue
        rows.append(
            {
                "code": region.code,
                "kind": region.kind,
                "name": region.name,
                "zone": factor.zone,
                "intensity_g_per_kwh": factor.intensity_g_per_kwh,
                "year": factor.year,
                "factor_type": factor.factor_type,
                "source": factor.source,
            }
        )
    if json:
        echo_json(rows)
        return
    if not rows:
        close = suggest_regions(wanted)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        typer.echo(f"no region matches {query!r}{hint}", err=True)
        raise typer.Exit(code=1)
    for row in rows:
        year = row["year"] if row["year"] is not None else "—"
        typer.echo(
            f"{row['code']:<26} {row['intensity_g_per_kwh']:8.1f} g/kWh  {year}  "
            f"{row['factor_type']:<9}  {row['name']}: {row['source']}"
        )
