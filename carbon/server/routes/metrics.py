"""``GET /metrics``: the server's Prometheus metrics, behind a token when one is set."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, HTTPException, Response

from carbon.server.deps import CredentialsDep, StateDep
from carbon.server.routes._common import UNAUTHORIZED

router = APIRouter(prefix="/metrics", tags=["metrics"])


@router.get(
    "",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus' text format."},
        401: UNAUTHORIZED | {"description": "`CARBON_METRICS_TOKEN` is set and was not given."},
    },
)
def get_metrics(state: StateDep, credentials: CredentialsDep) -> Response:
    """Counters of ingested energy, CO2e, batches and requests, and batch latency.

    When ``CARBON_METRICS_TOKEN`` is set, ask with ``Authorization: Bearer <token>``.
    """
    token = state.settings.metrics_token
    expected = token.get_secret_value() if token is not None else ""
    if expected:  # an empty CARBON_METRICS_TOKEN leaves the metrics open, as unset does
        given = credentials.credentials if credentials is not None else ""
        if not secrets.compare_digest(given.encode(), expected.encode()):
            raise HTTPException(
                401,
                "the metrics need the token: Authorization: Bearer <CARBON_METRICS_TOKEN>",
                headers={"WWW-Authenticate": "Bearer"},
            )
    body, content_type = state.metrics.render()
    return Response(body, media_type=content_type)
