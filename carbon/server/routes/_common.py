"""What the routes share: where the API lives, and the read routes' error answers."""

from __future__ import annotations

from typing import Any

API_PREFIX = "/api/v1"
"""Where the API lives; agents of this major version post here.

Routers carry it in their own prefix (not given to ``include_router``), so a route's
template, as the request metrics label it, is the full path on every FastAPI version.
"""

READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API key, or an unknown or revoked one."},
    403: {"description": "The key's role may not read runs (it is `ingest`)."},
    429: {"description": "Too many requests with this key: wait `Retry-After` seconds."},
    503: {"description": "The database is unavailable: retry after `Retry-After` seconds."},
}
"""Answers every read route may give besides its own."""
