"""``GET /healthz``: whether this replica can serve, for load balancers and orchestrators.

No key is needed. 200 when the database answers and is at the schema revision this code
expects; 503 (with ``Retry-After``) otherwise, so a balancer sends traffic elsewhere.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from carbon.server.deps import StateDep
from carbon.server.errors import UNAVAILABLE_RETRY_AFTER_S
from carbon.server.limits import retry_after_header
from carbon.store.migrate import HEAD_REVISION, current_revision

log = logging.getLogger(__name__)

router = APIRouter(prefix="/healthz", tags=["health"])


class Health(BaseModel):
    """The state of this replica.

    Attributes:
        status: ``ok`` or ``unavailable``.
        database: ``ok``, ``unreachable``, or ``revision <r>, expected <head>``.
        revision: The database's schema revision, when it answered.
        detail: Why it is unavailable.
    """

    status: str
    database: str
    revision: str | None
    detail: str | None = None


@router.get(
    "",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database is unusable."}},
)
def healthz(state: StateDep) -> Response:
    """200 when the database answers at the expected schema revision, else 503."""
    try:
        with state.store.engine.connect() as connection:
            revision = current_revision(connection)
    except SQLAlchemyError as exc:
        log.warning("health check: the database does not answer: %s", type(exc).__name__)
        return _unavailable("unreachable", None, "the database does not answer")
    if revision != HEAD_REVISION:
        return _unavailable(
            f"revision {revision}, expected {HEAD_REVISION}",
            revision,
            "the database's schema is not the one this server needs: run `carbon db upgrade` "
            "with the matching version of carbon",
        )
    healthy = Health(status="ok", database="ok", revision=revision)
    return JSONResponse(healthy.model_dump(exclude={"detail"}))


def _unavailable(database: str, revision: str | None, detail: str) -> Response:
    health = Health(status="unavailable", database=database, revision=revision, detail=detail)
    return JSONResponse(
        health.model_dump(),
        status_code=503,
        headers=retry_after_header(UNAVAILABLE_RETRY_AFTER_S),
    )
