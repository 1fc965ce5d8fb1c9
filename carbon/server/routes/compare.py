"""``GET /api/v1/compare?ids=a,b``: several runs of the team side by side."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from carbon.server.deps import ReadCallerDep, SessionDep
from carbon.server.errors import field_error
from carbon.server.routes._common import API_PREFIX, READ_ERRORS, QueryText, error
from carbon.store.queries import runs_by_ids
from carbon.store.summary import run_summary

MIN_COMPARED = 2
MAX_COMPARED = 20
"""How many runs one comparison takes."""

router = APIRouter(prefix=f"{API_PREFIX}/compare", tags=["runs"], responses=READ_ERRORS)


@router.get("", responses={404: error("One of the runs is not the team's.")})
def compare_runs(
    caller: ReadCallerDep,
    session: SessionDep,
    ids: Annotated[QueryText, Query(description="2 to 20 run ids or unique prefixes, by commas.")],
) -> dict[str, list[dict[str, Any]]]:
    """The runs in the order given, each as ``carbon runs show --json`` prints it."""
    wanted = [run_id.strip() for run_id in ids.split(",") if run_id.strip()]
    if not MIN_COMPARED <= len(wanted) <= MAX_COMPARED:
        raise field_error(
            "query",
            ("ids",),
            f"give {MIN_COMPARED} to {MAX_COMPARED} run ids, separated by commas "
            f"(got {len(wanted)})",
            ids,
        )
    runs = runs_by_ids(session, wanted, team_id=caller.team_id)
    return {"runs": [run_summary(run) for run in runs]}
