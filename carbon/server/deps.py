"""The routes' dependencies, as ``Annotated`` aliases: the state, a session, the caller.

- :data:`StateDep`: the application's :class:`~carbon.server.state.ServerState`.
- :data:`SessionDep`: a session of the store for a read (committed or rolled back when the
  request ends; a database error becomes 503).
- :data:`CallerDep`: who calls (401 without a valid key, unless the server runs in local
  mode), after the caller's rate limit (429 with ``Retry-After``).
- :data:`IngestCallerDep` / :data:`ReadCallerDep`: the same, for a role that may send runs
  (``ingest``, ``admin``) or read them (``read``, ``admin``); 403 otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, cast

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from carbon.server.auth import INGEST_ROLES, LOCAL_CALLER, READ_ROLES, Caller
from carbon.server.limits import retry_after_header
from carbon.server.state import ServerState

bearer = HTTPBearer(
    auto_error=False,
    description="An API key of the team (`cbn_...`), from `carbon admin create-key`.",
)
"""The ``Authorization: Bearer`` scheme, as OpenAPI shows it."""

_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


async def get_state(request: Request) -> ServerState:
    """The application's state (``async``: a plain function would cost a thread-pool hop)."""
    return cast(ServerState, request.app.state.server)


StateDep = Annotated[ServerState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    """A session of the store for the request."""
    with state.store.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def get_caller(state: StateDep, credentials: CredentialsDep) -> Caller:
    """The caller of the request, within its rate limit.

    Raises:
        HTTPException: 401 without a key or with an unknown or revoked one; 429 when the
            key made more requests than its rate allows.
    """
    if not state.require_auth:
        caller = LOCAL_CALLER
    elif credentials is None:
        raise HTTPException(
            401, "an API key is needed: Authorization: Bearer <key>", headers=_UNAUTHORIZED
        )
    else:
        found = await state.keys.authenticate(credentials.credentials.strip())
        if found is None:
            raise HTTPException(401, "unknown or revoked API key", headers=_UNAUTHORIZED)
        caller = found
    wait_s = state.limiter.acquire(caller.bucket)
    if wait_s is not None:
        raise HTTPException(
            429,
            f"more than {state.settings.rate_limit_per_s:g} requests a second with this key: "
            "slow down",
            headers=retry_after_header(wait_s),
        )
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]


def _forbidden(caller: Caller, action: str, roles: frozenset[str]) -> HTTPException:
    needed = " or ".join(sorted(roles))
    return HTTPException(403, f"this key has role {caller.role!r}: {action} needs {needed}")


async def get_ingest_caller(caller: CallerDep) -> Caller:
    """The caller, who must be allowed to send runs.

    Raises:
        HTTPException: 403 for a key of role ``read``.
    """
    if caller.role not in INGEST_ROLES:
        raise _forbidden(caller, "sending runs", INGEST_ROLES)
    return caller


async def get_read_caller(caller: CallerDep) -> Caller:
    """The caller, who must be allowed to read runs.

    Raises:
        HTTPException: 403 for a key of role ``ingest``.
    """
    if caller.role not in READ_ROLES:
        raise _forbidden(caller, "reading runs", READ_ROLES)
    return caller


IngestCallerDep = Annotated[Caller, Depends(get_ingest_caller)]
ReadCallerDep = Annotated[Caller, Depends(get_read_caller)]
