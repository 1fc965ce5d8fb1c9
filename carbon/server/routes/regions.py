"""``GET /api/v1/regions``: where the team's runs ran, with their energy and CO2e."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from carbon.server.deps import ReadCallerDep, SessionDep
from carbon.server.routes._common import API_PREFIX, READ_ERRORS
from carbon.store.queries import region_totals

router = APIRouter(prefix=f"{API_PREFIX}/regions", tags=["regions"], responses=READ_ERRORS)


class RegionTotals(BaseModel):
    """A region and the totals of the team's runs in it.

    Attributes:
        region: As the runs gave it (``FR``, ``gcp:europe-west1``); ``None`` for runs
            without a region (they have no CO2e).
        runs: How many runs ran there.
        energy_j: Their energy, joules (devices, before PUE).
        co2e_g: Their location-based CO2e, grams.
    """

    region: str | None
    runs: int
    energy_j: float | None
    co2e_g: float | None


@router.get("")
def get_regions(caller: ReadCallerDep, session: SessionDep) -> list[RegionTotals]:
    """Regions, most energy first."""
    return [
        RegionTotals.model_validate(row) for row in region_totals(session, team_id=caller.team_id)
    ]
