"""Teams and their API keys: the unit of tenancy of a team server, and how callers prove it.

A key is shown once, when it is made (``cbn_`` and 43 random URL-safe characters); the store
keeps only its SHA-256 digest, so a stolen database yields no usable key, and a visible
prefix (its first 12 characters) by which people tell keys apart and revoke them. A caller's
key is found with one indexed lookup of its digest. Revoking a key stamps ``revoked_at``;
the row stays, so lists show who had access and when.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, joinedload

from carbon.errors import ConfigError
from carbon.store.models import KEY_ROLES, ApiKey, Team

KEY_PREFIX = "cbn_"
"""How every carbon API key begins, so a key pasted in the wrong place is recognisable."""

VISIBLE_PREFIX_CHARS = 12
"""How many leading characters of a key are stored in clear, to tell keys apart."""

MAX_TEAM_NAME_CHARS = 100
"""Longest team name (the column's width)."""

MAX_KEY_CHARS = 200
"""Longest string looked up as a key; anything longer is refused without a lookup."""


def hash_key(plaintext: str) -> str:
    """The SHA-256 hex digest under which a key is stored and looked up."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_team(session: Session, name: str) -> Team:
    """Make a team.

    Raises:
        ConfigError: The name is empty, too long, or another team has it.
    """
    name = name.strip()
    if not name:
        raise ConfigError("a team needs a name")
    if len(name) > MAX_TEAM_NAME_CHARS:
        raise ConfigError(f"team names have at most {MAX_TEAM_NAME_CHARS} characters")
    if session.scalar(select(Team.id).where(Team.name == name)) is not None:
        raise ConfigError(f"a team named {name!r} exists already")
    team = Team(name=name, created_at=datetime.now(UTC))
    session.add(team)
    session.flush()
    return team


def get_team(session: Session, name: str) -> Team:
    """The team with this name.

    Raises:
        ConfigError: No team has this name; the message lists the teams there are.
    """
    team = session.scalar(select(Team).where(Team.name == name.strip()))
    if team is None:
        known = ", ".join(t.name for t in list_teams(session)) or "none"
        raise ConfigError(f"no team named {name!r} (teams: {known})")
    return team


def list_teams(session: Session) -> list[Team]:
    """Every team, by name."""
    return list(session.scalars(select(Team).order_by(Team.name)))


def create_key(session: Session, team: Team, name: str, role: str) -> tuple[ApiKey, str]:
    """Make an API key of a team.

    Args:
        session: An open session.
        team: The team the key acts for.
        name: What the key is for (``training cluster``), shown in lists.
        role: ``ingest`` (send runs), ``read`` (read runs) or ``admin`` (both).

    Returns:
        The stored row (digest and prefix only) and the key itself, which exists nowhere
        else: show it once and forget it.

    Raises:
        ConfigError: The role is not one of :data:`~carbon.store.models.KEY_ROLES`, or the
            name is empty or too long.
    """
    if role not in KEY_ROLES:
        raise ConfigError(f"role must be one of {', '.join(KEY_ROLES)}, not {role!r}")
    name = name.strip()
    if not name or len(name) > 200:
        raise ConfigError("a key needs a name of 1 to 200 characters")
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        team_id=team.id,
        name=name,
        role=role,
        prefix=plaintext[:VISIBLE_PREFIX_CHARS],
        key_hash=hash_key(plaintext),
        created_at=datetime.now(UTC),
    )
    session.add(key)
    session.flush()
    return key, plaintext


def list_keys(session: Session, team: Team) -> list[ApiKey]:
    """The team's keys, revoked ones included, oldest first."""
    return list(
        session.scalars(
            select(ApiKey).where(ApiKey.team_id == team.id).order_by(ApiKey.created_at, ApiKey.id)
        )
    )


def revoke_key(session: Session, team: Team, prefix_or_id: str) -> ApiKey:
    """Revoke one of the team's keys, named by its visible prefix (or the start of it) or id.

    Revoking a revoked key changes nothing. Servers cache keys for a few seconds, so a
    revoked key may still work that long.

    Raises:
        ConfigError: No key of this team matches, or several do.
    """
    needle = prefix_or_id.strip()
    if not needle:
        raise ConfigError("name the key to revoke by its prefix or id")
    condition = ApiKey.prefix.startswith(needle, autoescape=True)
    if needle.isdigit():
        condition = or_(condition, ApiKey.id == int(needle))
    matches = list(
        session.scalars(select(ApiKey).where(ApiKey.team_id == team.id, condition).limit(2))
    )
    if not matches:
        raise ConfigError(f"team {team.name!r} has no key {needle!r}")
    if len(matches) > 1:
        raise ConfigError(f"{needle!r} matches several keys of team {team.name!r}: give more")
    key = matches[0]
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        session.flush()
    return key


def find_key(session: Session, plaintext: str) -> ApiKey | None:
    """The key a caller presents, with its team loaded; ``None`` if unknown or revoked.

    One lookup by the key's digest (a unique index); a string that cannot be a carbon key
    is refused without asking the database.

    The database compares digests, never keys: how long its index takes may depend on how
    many leading characters of two digests agree, but a caller cannot choose the
    characters of a digest without a SHA-256 preimage, so that time says nothing about a
    stored key. The row found is checked once more with :func:`hmac.compare_digest`, so
    the comparison this code makes itself takes the same time whatever the digests hold.
    """
    if not plaintext.startswith(KEY_PREFIX) or len(plaintext) > MAX_KEY_CHARS:
        return None
    digest = hash_key(plaintext)
    key = session.scalar(
        select(ApiKey)
        .options(joinedload(ApiKey.team))
        .where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))
    )
    if key is None or not hmac.compare_digest(key.key_hash.encode(), digest.encode()):
        return None
    return key


def count_active_keys(session: Session) -> int:
    """How many keys, of any team, are not revoked (``carbon serve`` asks: keys or not)."""
    return session.scalar(select(func.count(ApiKey.id)).where(ApiKey.revoked_at.is_(None))) or 0


def touch_key(session: Session, key_id: int, *, now: datetime, min_interval_s: float) -> None:
    """Set a key's ``last_used_at`` to ``now``, unless it was set less than the interval ago.

    The condition is in the UPDATE, so several server replicas write it about once per
    interval between them.
    """
    cutoff = now - timedelta(seconds=min_interval_s)
    session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < cutoff),
        )
        .values(last_used_at=now)
    )
