"""``carbon runs list`` and ``carbon runs show``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from carbon._format import format_duration, format_energy, format_mass_g
from carbon.cli._common import echo_json
from carbon.settings import Settings, load_settings
from carbon.store import open_store
from carbon.store.queries import get_run, list_runs
from carbon.store.summary import run_summary

if TYPE_CHECKING:
    from carbon.remote.client import ServerClient

app = typer.Typer(
    help="List and inspect tracked runs (the team server's, when CARBON_SERVER_URL is set).",
    no_args_is_help=True,
)


@contextmanager
def _server(settings: Settings) -> Iterator[ServerClient]:
    """A client of the team server the agent reports to (the key must be read or admin)."""
    from carbon.remote.client import ServerClient

    client = ServerClient.from_settings(settings)
    try:
        yield client
    finally:
        client.close()


JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (stable field names).")]


@app.command("list")
def list_command(
    as_json: JsonFlag = False,
    project: Annotated[str | None, typer.Option(help="Only runs of this project.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only training or inference runs.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs.")] = 50,
) -> None:
    """List runs, newest first."""
    if kind is not None and kind not in ("training", "inference"):
        raise typer.BadParameter(f"kind must be training or inference, not {kind!r}")
    settings = load_settings()
    if settings.remote:
        with _server(settings) as client:
            summaries = client.list_runs(project=project, kind=kind, limit=limit)
        where = f"the server at {settings.server_url}"
    else:
        store = open_store(settings.resolved_database_url)
        with store.session() as session:
            summaries = [
                run_summary(run)
                for run in list_runs(session, project=project, kind=kind, limit=limit)
            ]
        where = store.display_url
    if as_json:
        echo_json(summaries)
        return
    if not summaries:
        typer.echo(f"no runs yet in {where}: try `carbon demo`")
        return
    header = f"{'id':8}  {'project':14} {'name':22} {'kind':9} {'status':11} {'duration':>9} "
    header += f"{'energy':>10} {'CO2e':>9}  method"
    typer.echo(header)
    for s in summaries:
        methods = " ".join(f"{k}:{v}" for k, v in s["energy_method"].items() if v)
        methods += " (simulated GPU)" if s["simulated"] else ""
        typer.echo(
            f"{s['id'][:8]}  {s['project'][:14]:14} {s['name'][:22]:22} {s['kind']:9} "
            f"{s['status']:11} {format_duration(s['duration_s']):>9} "
            f"{format_energy(s['energy_j']):>10} {format_mass_g(s['co2e_g']):>9}  {methods}"
        )


@app.command("show")
def show_command(
    run_id: Annotated[str, typer.Argument(help="Run id, or a unique prefix of 6+ characters.")],
    as_json: JsonFlag = False,
) -> None:
    """Show one run: energy per component and how it was obtained, work and CO2e."""
    settings = load_settings()
    if settings.remote:
        with _server(settings) as client:
            summary = client.get_run(run_id)
    else:
        with open_store(settings.resolved_database_url).session() as session:
            summary = run_summary(get_run(session, run_id))
    if as_json:
        echo_json(summary)
        return
    s = summary
    lines = [
        f"run {s['id']}  {s['project']} / {s['name']}  ({s['kind']}, {s['status']})",
        f"  started {s['started_at']}  duration {format_duration(s['duration_s'])}",
        *(
            ["  SIMULATED: GPU figures come from a simulated GPU, not hardware"]
            if s["simulated"]
            else []
        ),
        f"  energy  {format_energy(s['energy_j'])} (devices, before PUE)",
    ]
    for device in s["devices"]:
        failed = f"  FAILED: {device['error']}" if device["error"] else ""
        lines.append(
            f"    {device['component']:3} {format_energy(device['energy_j']):>10}  "
            f"{device['name']}  [{device['method']}, {device['provenance']}]{failed}"
        )
        lines.append(f"        {device['detail']}")
    lines.extend(_gap_lines(s.get("gaps") or []))
    work = ", ".join(
        f"{key} {s[key]:,}" for key in ("steps", "samples", "tokens") if s[key] is not None
    )
    lines.append(f"  work    {work or '—'}")
    if s["flops"] is not None:
        lines.append(
            f"  flops   {s['flops']:.3e} ({s['flops_method']}), {s['j_per_flop']:.3e} J/FLOP, "
            f"{s['achieved_flops_per_s']:.3e} FLOP/s"
        )
        mfu = "— (no known peak for this hardware and precision)"
        if s["mfu"] is not None:
            mfu = f"{s['mfu']:.2%} of {s['peak_flops_per_s']:.3e} FLOP/s peak ({s['precision']})"
        lines.append(f"  MFU     {mfu}")
    if s["co2e_g"] is not None:
        how = (
            "hour by hour from an imported series"
            if s["co2e_method"] == "hourly"
            else (f"{s['intensity_g_per_kwh']:.1f} g/kWh")
        )
        lines.append(
            f"  CO2e    {format_mass_g(s['co2e_g'])} location-based = energy x PUE {s['pue']} "
            f"({s['pue_source'] or 'given'}) x {how}"
        )
        lines.append(f"          zone {s['intensity_zone']}: {s['intensity_source']}")
        if s["intensity_fallback"]:
            lines.append(f"          FALLBACK: {s['intensity_fallback_reason']}")
    else:
        lines.append("  CO2e    — (no region: set CARBON_REGION or pass region=...)")
    if s["co2e_market_g"] is not None:
        lines.append(
            f"  CO2e    {format_mass_g(s['co2e_market_g'])} market-based ({s['market_source']})"
        )
    if s["embodied_g"] is not None:
        lines.append(
            f"  Scope 3 {format_mass_g(s['embodied_g'])} embodied, not in CO2e above "
            f"({s['embodied_source']})"
        )
    if s["compression"]:
        lines.append(f"  compression {s['compression']}")
    if s["metrics"]:
        lines.append(f"  metrics {s['metrics']}")
    if s["tags"]:
        lines.append(f"  tags    {s['tags']}")
    for warning in s["warnings"]:
        lines.append(f"  warning: {warning}")
    if s["error"]:
        lines.append(f"  error:  {s['error']}")
    typer.echo("\n".join(lines))


def _gap_lines(gaps: list[dict[str, Any]]) -> list[str]:
    """One line per span without per-second samples: whose, from when to when, and why."""
    lines = []
    for gap in gaps:
        who = "all devices" if gap["device"] is None else f"{gap['component']} {gap['name']}"
        if gap["rank"]:
            who += f" (rank {gap['rank']})"
        until = "the end" if gap["end_s"] is None else f"{gap['end_s']:.1f} s"
        lines.append(
            f"  gap     {who}: no per-second samples from {gap['start_s']:.1f} s to {until} "
            f"({gap['reason']})"
        )
    return lines
