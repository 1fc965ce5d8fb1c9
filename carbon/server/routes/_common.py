"""What the routes share: where the API lives, error answers, and text a query may hold."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel

API_PREFIX = "/api/v1"
"""Where the API lives; agents of this major version post here.

Routers carry it in their own prefix (not given to ``include_router``), so a route's
template, as the request metrics label it, is the full path on every FastAPI version.
"""

RUN_ID_PATTERN = r"^[0-9a-f]{32}$"
"""A full run id: 32 lower-case hex digits (a UUID without dashes)."""


class ErrorAnswer(BaseModel):
    """The body of every error answer but a 422: what went wrong, in a sentence.

    Attributes:
        detail: What is wrong and, where it helps, what to do.
    """

    detail: str


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string"}}


_RETRY_AFTER = {"Retry-After": _header("Seconds to wait before trying again.")}


def error(description: str, *, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """An error answer as OpenAPI declares it: its meaning, its :class:`ErrorAnswer` body."""
    answer: dict[str, Any] = {"model": ErrorAnswer, "description": description}
    if headers:
        answer["headers"] = headers
    return answer


UNAUTHORIZED = error(
    "No API key, or an unknown or revoked one.",
    headers={"WWW-Authenticate": _header("`Bearer`: the scheme to authenticate with.")},
)
TOO_MANY = error(
    "Too many requests with this key: wait `Retry-After` seconds.", headers=_RETRY_AFTER
)
UNAVAILABLE = error(
    "The database is unavailable: retry after `Retry-After` seconds.", headers=_RETRY_AFTER
)

READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: UNAUTHORIZED,
    403: error("The key's role may not read runs (it is `ingest`)."),
    429: TOO_MANY,
    503: UNAVAILABLE,
}
"""Answers every read route may give besides its own."""


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("holds a NUL character (\\x00), which no name or id contains")
    return text


QueryText = Annotated[str, AfterValidator(_no_nul)]
"""Text of a query or path parameter compared with stored names and ids.

PostgreSQL cannot compare text holding NUL, so such a parameter is refused (422, naming
it) rather than sent to the database.
"""
