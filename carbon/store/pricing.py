"""CO2e of a run as it is written: energy per hour, location-based and market-based figures.

Energy per UTC hour (``run_energy_hour``) is the stored fact. From it, at each batch, the
run's location-based CO2e is set: hour by hour from an imported intensity series where the
run's zone has one (an hour missing from the series falls back to the static factor, and the
run says so), else with the static factor of the run's region. A market-based figure is set
beside it, never in it, when a contractual factor applies to the run's project or zone.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from carbon import wire
from carbon.accounting.co2e import co2e_g
from carbon.accounting.hourly import hourly_co2e_g, split_energy_by_hour
from carbon.store import factors
from carbon.store.models import IntensityHour, MarketFactor, RunEnergyHour
from carbon.store.queries import energy_by_hour

_HOURS = cast(Table, RunEnergyHour.__table__)
_SERIES = cast(Table, IntensityHour.__table__)


def energy_hour_rows(
    run_id: str, rank: int, started_at: datetime, batch: wire.Batch
) -> list[dict[str, Any]]:
    """The batch's sample energy per UTC hour, as rows to add to ``run_energy_hour``."""
    if not batch.sample_energy_j:
        return []
    # Nearly every batch lies within one hour: then the hour takes the batch's energy whole,
    # with no per-sample arithmetic on times.
    first_s = min(
        end_s - interval_s
        for end_s, interval_s in zip(batch.sample_offset_s, batch.sample_interval_s, strict=True)
    )
    last_s = max(batch.sample_offset_s)
    hour = started_at.replace(minute=0, second=0, microsecond=0)
    into_hour_s = (started_at - hour).total_seconds()
    first_slot = math.floor((into_hour_s + first_s) / 3600)
    if first_slot == math.ceil((into_hour_s + last_s) / 3600) - 1 or last_s == first_s:
        energy_j = math.fsum(batch.sample_energy_j)
        if energy_j == 0:
            return []
        hour_start = hour + timedelta(hours=first_slot)
        return [{"run_id": run_id, "rank": rank, "hour_start": hour_start, "energy_j": energy_j}]
    intervals = [
        (
            started_at + timedelta(seconds=end_s - interval_s),
            started_at + timedelta(seconds=end_s),
            energy_j,
        )
        for end_s, interval_s, energy_j in zip(
            batch.sample_offset_s, batch.sample_interval_s, batch.sample_energy_j, strict=True
        )
    ]
    return [
        {"run_id": run_id, "rank": rank, "hour_start": hour, "energy_j": energy_j}
        for hour, energy_j in split_energy_by_hour(intervals).items()
    ]


def add_energy_hours(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Add energy to the run's hours (insert, or add to an hour already there)."""
    if rows:
        connection.execute(_hours_upsert(connection.dialect.name), rows)


@functools.cache
def _hours_upsert(dialect: str) -> Any:
    """The per-hour energy upsert for a dialect, built once (every batch uses it)."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(_HOURS)
    return statement.on_conflict_do_update(
        index_elements=["run_id", "rank", "hour_start"],
        set_={"energy_j": _HOURS.c.energy_j + statement.excluded.energy_j},
    )


@dataclass(frozen=True)
class PricedRun:
    """What of a run its CO2e depends on: from its start record, or read back from its row."""

    id: str
    team_id: int
    project: str
    started_at: datetime
    pue: float
    intensity: wire.IntensityInfo | None

    @classmethod
    def of(cls, start: wire.RunStart, team_id: int) -> PricedRun:
        """The priced facts of a start record."""
        return cls(start.id, team_id, start.project, start.started_at, start.pue, start.intensity)


class Pricing:
    """How one run's energy becomes CO2e; built once per run (and rank) by the sink.

    Args:
        connection: Where to look up the zone's series and the market factors.
        start: The run's facts that its CO2e depends on.
    """

    def __init__(self, connection: Connection, start: PricedRun) -> None:
        self.start = start
        intensity = start.intensity
        self.zone = intensity.zone if intensity else None
        self.hourly = self.zone is not None and (
            connection.execute(
                select(_SERIES.c.id).where(_SERIES.c.zone == self.zone).limit(1)
            ).first()
            is not None
        )
        self.market = _market_factor(connection, start)

    def figures(self, connection: Connection, energy_j: float | None) -> dict[str, Any]:
        """Column values of the run's CO2e for its energy so far."""
        intensity = self.start.intensity
        if energy_j is None or intensity is None:
            return {"co2e_g": None, "co2e_market_g": None, "co2e_method": None}
        pue = self.start.pue
        location_g = co2e_g(energy_j, intensity.intensity_g_per_kwh, pue)
        method = "static"
        values: dict[str, Any] = {}
        if self.hourly:
            location_g, missing = self._hourly(connection, pue)
            method = "hourly"
            if missing:
                values["intensity_fallback"] = True
                values["intensity_fallback_reason"] = (
                    f"{missing} hour(s) missing from the {self.zone} series: "
                    f"the static factor ({intensity.intensity_g_per_kwh:.1f} g/kWh) was used"
                )
        values.update(co2e_g=location_g, co2e_method=method)
        values["co2e_market_g"] = self._market(energy_j, location_g)
        return values

    def _hourly(self, connection: Connection, pue: float) -> tuple[float, int]:
        assert self.start.intensity is not None
        assert self.zone is not None
        hours = energy_by_hour(connection, self.start.id)
        series = factors.series(connection, self.zone, list(hours))
        result = hourly_co2e_g(hours, series, pue=pue)
        fallback_g_per_kwh = self.start.intensity.intensity_g_per_kwh
        return result.total_with_fallback_g(fallback_g_per_kwh), len(result.missing_hours)

    def _market(self, energy_j: float, location_g: float) -> float | None:
        if self.market is None:
            return None
        if self.market.intensity_g_per_kwh is not None:
            return co2e_g(energy_j, self.market.intensity_g_per_kwh, self.start.pue)
        share = self.market.renewable_share or 0.0
        return location_g * (1.0 - share)

    @property
    def market_source(self) -> str | None:
        """Where the market-based factor comes from, for the run row."""
        if self.market is None:
            return None
        if self.market.intensity_g_per_kwh is not None:
            return f"{self.market.source} ({self.market.intensity_g_per_kwh:g} g/kWh)"
        return (
            f"{self.market.source} (renewable share {self.market.renewable_share:.0%}; "
            "the uncovered share at the location-based factor)"
        )


def _market_factor(connection: Connection, start: PricedRun) -> MarketFactor | None:
    """The newest contractual factor for the run's project, else its zone, valid at its start."""
    zone = start.intensity.zone if start.intensity else None
    table = cast(Table, MarketFactor.__table__)
    at = start.started_at
    valid = and_(
        table.c.team_id == start.team_id,
        or_(table.c.valid_from.is_(None), table.c.valid_from <= at),
        or_(table.c.valid_to.is_(None), table.c.valid_to > at),
    )
    for condition in (table.c.project == start.project, table.c.zone == zone):
        row = connection.execute(
            select(table).where(condition, valid).order_by(table.c.created_at.desc()).limit(1)
        ).first()
        if row is not None:
            return MarketFactor(**row._mapping)
    return None
