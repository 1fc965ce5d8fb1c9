"""``GET /api/v1/runs``: the team's runs, and one run, in the JSON of ``carbon runs --json``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from carbon.server.deps import ReadCallerDep, SessionDep
from carbon.server.errors import field_error
from carbon.server.routes._common import API_PREFIX, READ_ERRORS, QueryText, error
from carbon.store.queries import get_run, list_runs
from carbon.store.summary import run_summary

MAX_LIST_LIMIT = 1000
"""Most runs one list answer holds."""

router = APIRouter(prefix=f"{API_PREFIX}/runs", tags=["runs"], responses=READ_ERRORS)


@router.get("")
def get_runs(
    caller: ReadCallerDep,
    session: SessionDep,
    project: Annotated[QueryText | None, Query(description="Only runs of this project.")] = None,
    kind: Annotated[Literal["training", "inference"] | None, Query()] = None,
    status: Annotated[
        Literal["running", "completed", "failed", "interrupted"] | None, Query()
    ] = None,
    since: Annotated[
        datetime | None,
        Query(description="Only runs started at or after this time (UTC when no zone)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 100,
) -> list[dict[str, Any]]:
    """The team's runs, newest first, each as ``carbon runs show --json`` prints it."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    if since is not None:
        try:
            since = since.astimezone(UTC)
        except OverflowError:
            raise field_error(
                "query", ("since",), "lies outside years 1 to 9999 in UTC", str(since)
            ) from None
    runs = list_runs(
        session,
        project=project,
        kind=kind,
        status=status,
        since=since,
        limit=limit,
        team_id=caller.team_id,
    )
    return [run_summary(run) for run in runs]


@router.get("/{run_id}", responses={404: error("No such run of the team.")})
def get_one_run(
    run_id: Annotated[QueryText, Path(description="A run id, or a unique prefix of 6+ of it.")],
    caller: ReadCallerDep,
    session: SessionDep,
) -> dict[str, Any]:
    """One run of the team, by its id or a unique prefix of 6+ characters."""
    return run_summary(get_run(session, run_id, team_id=caller.team_id))
