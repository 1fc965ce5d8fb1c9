"""``carbon admin``: teams and API keys of a team server's store.

The commands work on the store of the settings (``CARBON_DATABASE_URL``) directly, so they
run where the database is reachable, not through the server. A key is printed once, when it
is made: the store keeps only its digest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from carbon.cli._common import settings_and_store
from carbon.store.models import KEY_ROLES
from carbon.store.teams import (
    create_key,
    create_team,
    get_team,
    list_keys,
    list_teams,
    revoke_key,
)

app = typer.Typer(help="Manage the teams and API keys of a team server.", no_args_is_help=True)

TeamOption = Annotated[str, typer.Option("--team", help="The team's name.")]


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else "—"


@app.command("create-team")
def create_team_command(
    name: Annotated[str, typer.Argument(help="The team's name (unique).")],
) -> None:
    """Make a team; give it keys with `carbon admin create-key --team NAME`."""
    _, store = settings_and_store()
    with store.session() as session:
        team = create_team(session, name)
        team_id, team_name = team.id, team.name
    typer.echo(f"team {team_name!r} created (id {team_id}) in {store.display_url}")
    typer.echo(f"next: carbon admin create-key --team {team_name} --role ingest")


@app.command("create-key")
def create_key_command(
    team: TeamOption,
    role: Annotated[
        str,
        typer.Option(
            help="ingest: send runs (agents); read: read runs; admin: both.",
            case_sensitive=False,
        ),
    ],
    name: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
) -> None:
    """Make an API key of a team and print it, once."""
    role = role.lower()
    if role not in KEY_ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(KEY_ROLES)}, not {role!r}")
    _, store = settings_and_store()
    with store.session() as session:
        key, plaintext = create_key(session, get_team(session, team), name or f"{role} key", role)
        prefix, key_id = key.prefix, key.id
    typer.echo(plaintext)
    typer.echo(
        f"key {prefix}… (id {key_id}, role {role}) of team {team!r}: this is the only time it "
        "is shown. It is not stored (only its hash is) and cannot be shown again; keep it in "
        "a secret store and give it to agents as CARBON_API_KEY.",
        err=True,
    )


@app.command("revoke-key")
def revoke_key_command(
    team: TeamOption,
    prefix_or_id: Annotated[str, typer.Argument(help="The key's prefix (cbn_...) or id.")],
) -> None:
    """Revoke a key: servers refuse it within seconds (they cache keys briefly)."""
    _, store = settings_and_store()
    with store.session() as session:
        key = revoke_key(session, get_team(session, team), prefix_or_id)
        prefix, key_id, revoked_at = key.prefix, key.id, key.revoked_at
    typer.echo(f"key {prefix}… (id {key_id}) of team {team!r} revoked at {_when(revoked_at)}")


@app.command("list-keys")
def list_keys_command(team: TeamOption) -> None:
    """List a team's keys (prefixes only: keys themselves are not stored)."""
    _, store = settings_and_store()
    with store.session() as session:
        rows = [
            (k.id, k.prefix, k.role, k.name, k.created_at, k.last_used_at, k.revoked_at)
            for k in list_keys(session, get_team(session, team))
        ]
    if not rows:
        typer.echo(f"team {team!r} has no keys: carbon admin create-key --team {team} ...")
        return
    typer.echo(
        f"{'id':>4}  {'prefix':12}  {'role':6}  {'created':20}  {'last used':20}  state  name"
    )
    for key_id, prefix, role, name, created, used, revoked in rows:
        state = f"revoked {_when(revoked)}" if revoked is not None else "active"
        typer.echo(
            f"{key_id:>4}  {prefix:12}  {role:6}  {_when(created):20}  {_when(used):20}  "
            f"{state}  {name}"
        )


@app.command("list-teams")
def list_teams_command() -> None:
    """List the teams of the store."""
    _, store = settings_and_store()
    with store.session() as session:
        rows = [(team.id, team.name, team.created_at) for team in list_teams(session)]
    typer.echo(f"{'id':>4}  {'created':20}  name")
    for team_id, name, created in rows:
        typer.echo(f"{team_id:>4}  {_when(created):20}  {name}")
