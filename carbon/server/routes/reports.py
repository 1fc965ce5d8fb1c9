"""``GET /api/v1/reports``: the team's sustainability report, in any of the report's formats.

The same document ``carbon report`` writes, built from the caller's team's runs: the query
parameters are the command's options. Bad options are a 422 that names them.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response

from carbon.errors import ConfigError
from carbon.reports.build import build_report
from carbon.reports.render import FORMATS, MEDIA_TYPES, render_report
from carbon.reports.request import GROUP_BY, ReportRequest
from carbon.server.deps import ReadCallerDep, SessionDep
from carbon.server.errors import field_error
from carbon.server.routes._common import API_PREFIX, READ_ERRORS, QueryText

router = APIRouter(prefix=f"{API_PREFIX}/reports", tags=["reports"], responses=READ_ERRORS)


@router.get(
    "",
    responses={
        200: {
            "description": "The report, in the format asked for.",
            "content": {media: {} for media in MEDIA_TYPES.values()},
        },
    },
)
def get_report(
    caller: ReadCallerDep,
    session: SessionDep,
    since: Annotated[
        date | None, Query(alias="from", description="First UTC day (YYYY-MM-DD).")
    ] = None,
    until: Annotated[
        date | None, Query(alias="to", description="Last UTC day, included (YYYY-MM-DD).")
    ] = None,
    project: Annotated[list[QueryText] | None, Query(description="Only these projects.")] = None,
    group_by: Annotated[
        str,
        Query(
            description="What the breakdown groups runs by.",
            json_schema_extra={"enum": list(GROUP_BY)},
        ),
    ] = "project",
    fmt: Annotated[
        str,
        Query(
            alias="format",
            description="The document's format.",
            json_schema_extra={"enum": list(FORMATS)},
        ),
    ] = "json",
    max_accuracy_loss: Annotated[float, Query(ge=0)] = 0.01,
    mfu_threshold: Annotated[float, Query(gt=0, le=1)] = 0.30,
) -> Response:
    """The report of the caller's team for a period (every run when no period is given)."""
    if fmt not in FORMATS:
        raise field_error("query", ("format",), f"choose one of {', '.join(FORMATS)}", fmt)
    try:
        request = ReportRequest(
            since=since,
            until=until,
            projects=tuple(project or ()),
            group_by=group_by,  # type: ignore[arg-type]  # checked by ReportRequest
            max_accuracy_loss=max_accuracy_loss,
            mfu_threshold=mfu_threshold,
        )
    except ConfigError as exc:
        raise field_error("query", (), str(exc)) from None
    report = build_report(session, request, team_id=caller.team_id, source="carbon server")
    content = render_report(report, fmt)
    name = f"carbon-report-{since or 'start'}-{until or 'now'}.{fmt}"
    return Response(
        content,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
