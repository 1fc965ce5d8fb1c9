"""``POST /api/v1/runs...``: what agents send, a run's start, batches, end and heartbeats.

Every record is idempotent: a repeated start, a batch sent twice (same ``seq``) or a repeated
end changes nothing, so an agent retries until acknowledged. A batch is written in one
transaction: a refused batch leaves nothing behind. The facts a rank's batches are written
with (its devices, the run's start and pricing) are cached per replica, so a batch costs no
lookups but its own writes.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from carbon import wire
from carbon.errors import RunNotFound
from carbon.server.deps import IngestCallerDep, StateDep
from carbon.server.errors import field_error
from carbon.server.json_body import StrictJsonRoute
from carbon.server.routes._common import (
    API_PREFIX,
    RUN_ID_PATTERN,
    TOO_MANY,
    UNAUTHORIZED,
    UNAVAILABLE,
    error,
)
from carbon.store.context import load_context, start_run
from carbon.store.ingest import write_batch
from carbon.store.lifecycle import finish_run, heartbeat

FUTURE_SLACK_S = 600.0
"""How far in the future (by the server's clock) a run may start or a sample end, seconds."""

ERRORS: dict[int | str, dict[str, Any]] = {
    401: UNAUTHORIZED,
    403: error("The key's role may not send runs (it is `read`)."),
    413: error("The body is larger than `CARBON_MAX_BODY_MB`."),
    429: TOO_MANY,
    503: UNAVAILABLE,
}

_NOT_STARTED: dict[int | str, dict[str, Any]] = {
    404: error("No such run of the team, or the rank never started.")
}

RunIdPath = Annotated[
    str, Path(pattern=RUN_ID_PATTERN, description="The run's id: 32 lower-case hex digits.")
]

router = APIRouter(
    prefix=f"{API_PREFIX}/runs", tags=["ingest"], route_class=StrictJsonRoute, responses=ERRORS
)

_FIELD = re.compile(r"[a-z_]+(?:\.[a-z_]+)*")


def _seconds_ahead(moment: datetime) -> float:
    """How far ``moment`` lies after now, seconds (negative in the past)."""
    return (moment - datetime.now(UTC)).total_seconds()


def _same_run(path_id: str, body_id: str) -> None:
    if body_id != path_id:
        raise field_error(
            "body", ("run_id",), f"the body is for run {body_id!r}, the path for {path_id!r}"
        )


@router.post(
    "",
    status_code=201,
    responses={
        200: {"model": wire.StartAck, "description": "The rank had started: nothing changed."},
        409: error("The run id is used by another team's or project's run."),
    },
)
def post_run(
    start: wire.RunStart, caller: IngestCallerDep, state: StateDep, response: Response
) -> wire.StartAck:
    """Start a run's rank: the run (unless another rank made it), the rank, its devices.

    201 with ``created: true`` for a new rank; 200 with ``created: false`` for a repeat.
    """
    if _seconds_ahead(start.started_at) > FUTURE_SLACK_S:
        raise field_error(
            "body",
            ("started_at",),
            f"started_at lies more than {FUTURE_SLACK_S / 60:g} minutes in the future "
            "(is the agent's clock right?)",
            start.started_at.isoformat(),
        )
    with state.store.session() as session:
        context = start_run(session, start, team_id=caller.team_id)
    if context is None:
        response.status_code = 200
        return wire.StartAck(run_id=start.id, rank=start.rank, created=False)
    state.contexts.put((caller.team_id, start.id, start.rank), context)
    return wire.StartAck(run_id=start.id, rank=start.rank, created=True)


@router.post(
    "/{run_id}/batches",
    responses=_NOT_STARTED,
)
def post_batch(
    run_id: RunIdPath, batch: wire.Batch, caller: IngestCallerDep, state: StateDep
) -> wire.BatchAck:
    """Store a batch of samples, once; ``stored: false`` when it had been stored before."""
    _same_run(run_id, batch.run_id)
    key = (caller.team_id, run_id, batch.rank)
    started = time.perf_counter()
    try:
        with state.store.transaction() as connection:
            context = state.contexts.get(key)
            if context is None:
                context = load_context(connection, run_id, batch.rank, team_id=caller.team_id)
            last_end_s = _seconds_ahead(context.started_at) + batch.totals.duration_s
            if last_end_s > FUTURE_SLACK_S:
                raise field_error(
                    "body",
                    ("totals", "duration_s"),
                    f"the run started at {context.started_at.isoformat()}: a duration of "
                    f"{batch.totals.duration_s:g} s ends more than {FUTURE_SLACK_S / 60:g} "
                    "minutes in the future",
                    batch.totals.duration_s,
                )
            try:
                result = write_batch(connection, context, batch)
            except ValueError as exc:
                raise _invalid_batch(str(exc)) from None
    except RunNotFound:
        state.metrics.record_rejected_batch()
        raise
    state.contexts.put(key, context)
    state.metrics.record_batch(
        team=caller.team_name,
        project=context.project,
        result=result,
        duration_s=time.perf_counter() - started,
    )
    return wire.BatchAck(run_id=run_id, rank=batch.rank, seq=batch.seq, stored=result.stored)


def _invalid_batch(message: str) -> Exception:
    """A 422 for a batch the store refused, naming the field its message starts with."""
    match = _FIELD.match(message)
    loc: tuple[str, ...] = ()
    if match and match.group().split(".")[0] in wire.Batch.model_fields:
        loc = tuple(match.group().split("."))
    return field_error("body", loc, message)


@router.post(
    "/{run_id}/end",
    responses=_NOT_STARTED,
)
def post_end(
    run_id: RunIdPath, end: wire.RunEnd, caller: IngestCallerDep, state: StateDep
) -> wire.RunStatusAck:
    """Record how a rank ended; the run ends, with the worst status, when its last rank does."""
    _same_run(run_id, end.run_id)
    with state.store.session() as session:
        status = finish_run(session, end, team_id=caller.team_id)
    state.contexts.pop((caller.team_id, run_id, end.rank))
    return wire.RunStatusAck(run_id=run_id, status=status)


@router.post(
    "/{run_id}/heartbeat",
    responses=_NOT_STARTED,
)
def post_heartbeat(
    run_id: RunIdPath, beat: wire.Heartbeat, caller: IngestCallerDep, state: StateDep
) -> wire.RunStatusAck:
    """Note that a rank's agent is alive (it is not marked interrupted while it beats)."""
    with state.store.session() as session:
        status = heartbeat(session, run_id, beat.rank, team_id=caller.team_id)
    return wire.RunStatusAck(run_id=run_id, status=status)
