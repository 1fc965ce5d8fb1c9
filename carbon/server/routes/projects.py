"""``GET /api/v1/projects``: the team's projects with their runs, energy and CO2e."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from carbon.server.deps import ReadCallerDep, SessionDep
from carbon.server.routes._common import API_PREFIX, READ_ERRORS
from carbon.store.queries import project_totals

router = APIRouter(prefix=f"{API_PREFIX}/projects", tags=["projects"], responses=READ_ERRORS)


class ProjectTotals(BaseModel):
    """A project and the totals of its runs.

    Attributes:
        name: The project's name.
        runs: How many runs it has.
        energy_j: Their energy, joules (devices, before PUE); ``None`` if none is known.
        co2e_g: Their location-based CO2e, grams; ``None`` if none is known.
    """

    name: str
    runs: int
    energy_j: float | None
    co2e_g: float | None


@router.get("")
def get_projects(caller: ReadCallerDep, session: SessionDep) -> list[ProjectTotals]:
    """The team's projects, by name."""
    return [
        ProjectTotals.model_validate(row) for row in project_totals(session, team_id=caller.team_id)
    ]
