"""``GET /api/v1/team``: which team and role the caller's key acts as."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from carbon.server.deps import ReadCallerDep
from carbon.server.routes._common import API_PREFIX, READ_ERRORS

router = APIRouter(prefix=f"{API_PREFIX}/team", tags=["team"], responses=READ_ERRORS)


class TeamInfo(BaseModel):
    """The caller as the server sees it.

    Attributes:
        team: The team's name.
        role: The key's role: ``read`` or ``admin`` (an ``ingest`` key may not ask).
        key_prefix: The key's visible prefix; ``None`` in local mode (no key).
    """

    team: str
    role: str
    key_prefix: str | None


@router.get("")
def get_team(caller: ReadCallerDep) -> TeamInfo:
    """The caller's team name and key role."""
    return TeamInfo(team=caller.team_name, role=caller.role, key_prefix=caller.key_prefix)
