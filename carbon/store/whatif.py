"""What a stored run would have emitted elsewhere: CO2e recomputed from its energy per hour.

Energy per hour is the stored fact; each region's CO2e is computed from it, hour by hour
with an imported intensity series where the region's zone has one (missing hours at the
static factor, and counted), else with the static factor. Nothing is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from carbon.accounting.co2e import co2e_g
from carbon.accounting.hourly import hourly_co2e_g
from carbon.accounting.resolve import resolve
from carbon.store import factors
from carbon.store.queries import energy_by_hour, get_run


@dataclass(frozen=True, slots=True)
class WhatIf:
    """A run's CO2e had it drawn the same energy in another region.

    Attributes:
        region: The region, normalised (``FRA``, ``gcp:europe-west1``).
        zone: Its grid zone.
        co2e_g: Location-based CO2e, grams.
        intensity_g_per_kwh: The static factor of the zone.
        intensity_source: Where that factor comes from.
        pue: The PUE applied.
        pue_source: Where the PUE comes from.
        method: ``hourly`` (an imported series) or ``static``.
        missing_hours: Hours the series lacked, priced at the static factor.
    """

    region: str
    zone: str
    co2e_g: float
    intensity_g_per_kwh: float
    intensity_source: str
    pue: float
    pue_source: str
    method: str
    missing_hours: int


def whatif(
    session: Session,
    run_id: str,
    regions: Sequence[str],
    *,
    pue: float | None = None,
    team_id: int | None = None,
) -> list[WhatIf]:
    """CO2e of a run in each of ``regions``.

    Args:
        session: An open session.
        run_id: The run (a unique prefix of 6+ characters will do).
        regions: Regions in any syntax the region parser accepts.
        pue: The PUE to apply; by default a cloud region's published PUE, else the run's.
        team_id: Look only among this team's runs; ``None`` looks at every team's.

    Raises:
        RunNotFound: No such run.
        ConfigError: A region is unknown (with close matches) or the PUE is invalid.
    """
    run = get_run(session, run_id, team_id=team_id)
    hours = energy_by_hour(session, run.id)
    results = []
    for text in regions:
        pricing = resolve(text, pue=pue)
        if pue is None and pricing.region.kind != "cloud":
            applied_pue, pue_source = run.pue, "the run's own"
        else:
            applied_pue, pue_source = pricing.pue.pue, pricing.pue.source
        factor = pricing.intensity
        series = factors.series(session, factor.zone, list(hours))
        if series:
            result = hourly_co2e_g(hours, series, pue=applied_pue)
            total_g = result.total_with_fallback_g(factor.intensity_g_per_kwh)
            method, missing = "hourly", len(result.missing_hours)
        else:
            total_g = co2e_g(sum(hours.values()), factor.intensity_g_per_kwh, applied_pue)
            method, missing = "static", 0
        results.append(
            WhatIf(
                region=pricing.region.code,
                zone=factor.zone,
                co2e_g=total_g,
                intensity_g_per_kwh=factor.intensity_g_per_kwh,
                intensity_source=factor.source,
                pue=applied_pue,
                pue_source=pue_source,
                method=method,
                missing_hours=missing,
            )
        )
    return results
