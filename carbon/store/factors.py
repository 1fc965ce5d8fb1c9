"""Emission factors kept in the store: imported hourly intensities and market factors.

Imports are all or nothing: a file whose rows overlap hours already stored for a zone is
refused (unless replacing), and nothing of it is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection, delete, select
from sqlalchemy.orm import Session

from carbon.accounting.hourly import HourlyIntensity
from carbon.errors import ConfigError
from carbon.store.models import DEFAULT_TEAM_ID, IntensityHour, MarketFactor

_CHUNK = 1000
"""Ids per ``DELETE``: a year of hours in one ``IN`` list is too deep for PostgreSQL's parser."""


def _stored(session: Session, rows: Sequence[HourlyIntensity]) -> list[tuple[str, datetime, int]]:
    """The rows' hours already stored, as ``(zone, hour, id)`` by zone and hour.

    One range query per zone, matched here: a year of ``(zone, hour)`` pairs in one ``IN``
    list exceeds PostgreSQL's stack depth limit.
    """
    by_zone: dict[str, set[datetime]] = {}
    for row in rows:
        by_zone.setdefault(row.zone, set()).add(row.hour_start)
    found: list[tuple[str, datetime, int]] = []
    for zone, hours in sorted(by_zone.items()):
        stored = session.execute(
            select(IntensityHour.hour_start, IntensityHour.id).where(
                IntensityHour.zone == zone,
                IntensityHour.hour_start >= min(hours),
                IntensityHour.hour_start <= max(hours),
            )
        )
        found.extend((zone, hour, row_id) for hour, row_id in stored if hour in hours)
    return sorted(found)


def import_series(
    session: Session, rows: Sequence[HourlyIntensity], *, replace: bool = False
) -> int:
    """Store an hourly intensity series; return the number of hours stored.

    Raises:
        ConfigError: Some hours are already stored for their zone and ``replace`` is off;
            the message names the first of them, and nothing is written.
    """
    existing = _stored(session, rows)
    if existing and not replace:
        zone, hour, _ = existing[0]
        raise ConfigError(
            f"{len(existing)} hour(s) are already stored, the first {zone} "
            f"{hour.isoformat()}; nothing was imported (use --replace to overwrite them)"
        )
    ids = [row_id for _, _, row_id in existing]
    for start in range(0, len(ids), _CHUNK):
        session.execute(
            delete(IntensityHour).where(IntensityHour.id.in_(ids[start : start + _CHUNK]))
        )
    session.add_all(
        IntensityHour(
            zone=row.zone,
            hour_start=row.hour_start,
            intensity_g_per_kwh=row.intensity_g_per_kwh,
            factor_type=row.factor_type,
            source=row.source,
        )
        for row in rows
    )
    return len(rows)


def series(db: Session | Connection, zone: str, hours: Sequence[datetime]) -> dict[datetime, float]:
    """The stored intensity of ``zone`` for each of ``hours`` that has one."""
    if not hours:
        return {}
    rows = db.execute(
        select(IntensityHour.hour_start, IntensityHour.intensity_g_per_kwh).where(
            IntensityHour.zone == zone, IntensityHour.hour_start.in_(list(hours))
        )
    ).all()
    return {hour: value for hour, value in rows}


def series_between(
    db: Session | Connection, zone: str, start: datetime, end: datetime
) -> dict[datetime, float]:
    """The stored intensity of ``zone`` for every hour from ``start`` until ``end`` (excluded)."""
    rows = db.execute(
        select(IntensityHour.hour_start, IntensityHour.intensity_g_per_kwh).where(
            IntensityHour.zone == zone,
            IntensityHour.hour_start >= start,
            IntensityHour.hour_start < end,
        )
    ).all()
    return {hour: value for hour, value in rows}


def add_market_factor(
    session: Session,
    *,
    source: str,
    project: str | None = None,
    zone: str | None = None,
    intensity_g_per_kwh: float | None = None,
    renewable_share: float | None = None,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
    team_id: int = DEFAULT_TEAM_ID,
) -> MarketFactor:
    """Record a contractual factor for the runs of a project or of a zone (of one team).

    Raises:
        ConfigError: Neither or both of project and zone, neither or both of a supplier
            factor and a renewable share, a value out of range, or an empty period.
    """
    if (project is None) == (zone is None):
        raise ConfigError("a market factor applies to a project or to a zone: give one")
    if (intensity_g_per_kwh is None) == (renewable_share is None):
        raise ConfigError("give a supplier factor (g/kWh) or a renewable share, not both")
    if intensity_g_per_kwh is not None and not 0 <= intensity_g_per_kwh < float("inf"):
        raise ConfigError(f"supplier factor {intensity_g_per_kwh} g/kWh must be >= 0")
    if renewable_share is not None and not 0 <= renewable_share <= 1:
        raise ConfigError(f"renewable share {renewable_share} must be between 0 and 1")
    if valid_from is not None and valid_to is not None and valid_to <= valid_from:
        raise ConfigError("the factor's validity ends before it starts")
    if not source.strip():
        raise ConfigError("a market factor needs its source (the contract or certificate)")
    factor = MarketFactor(
        team_id=team_id,
        project=project,
        zone=zone,
        intensity_g_per_kwh=intensity_g_per_kwh,
        renewable_share=renewable_share,
        valid_from=valid_from,
        valid_to=valid_to,
        source=source.strip(),
        created_at=datetime.now(UTC),
    )
    session.add(factor)
    session.flush()
    return factor


def market_factors(session: Session, *, team_id: int = DEFAULT_TEAM_ID) -> list[MarketFactor]:
    """Every market factor of a team, newest first."""
    return list(
        session.scalars(
            select(MarketFactor)
            .where(MarketFactor.team_id == team_id)
            .order_by(MarketFactor.created_at.desc())
        )
    )
