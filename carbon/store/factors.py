"""Emission factors kept in the store: imported hourly intensities and market factors.

Imports are all or nothing: a file whose rows overlap hours already stored for a zone is
refused (unless replacing), and nothing of it is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection, delete, select, tuple_
from sqlalchemy.orm import Session

from carbon.accounting.hourly import HourlyIntensity
from carbon.errors import ConfigError
from carbon.store.models import DEFAULT_TEAM_ID, IntensityHour, MarketFactor


def import_series(
    session: Session, rows: Sequence[HourlyIntensity], *, replace: bool = False
) -> int:
    """Store an hourly intensity series; return the number of hours stored.

    Raises:
        ConfigError: Some hours are already stored for their zone and ``replace`` is off;
            the message names the first of them, and nothing is written.
    """
    keys = [(row.zone, row.hour_start) for row in rows]
    existing = (
        session.execute(
            select(IntensityHour.zone, IntensityHour.hour_start)
            .where(tuple_(IntensityHour.zone, IntensityHour.hour_start).in_(keys))
            .order_by(IntensityHour.zone, IntensityHour.hour_start)
        ).all()
        if keys
        else []
    )
    if existing and not replace:
        zone, hour = existing[0]
        raise ConfigError(
            f"{len(existing)} hour(s) are already stored, the first {zone} "
            f"{hour.isoformat()}; nothing was imported (use --replace to overwrite them)"
        )
    if existing:
        session.execute(
            delete(IntensityHour).where(
                tuple_(IntensityHour.zone, IntensityHour.hour_start).in_(keys)
            )
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
