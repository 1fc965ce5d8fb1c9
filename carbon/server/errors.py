"""How errors become answers: the status, ``{"detail": ...}``, and ``Retry-After`` where it helps.

- :class:`~carbon.errors.RunNotFound` is 404 (another team's run is "not found" too, so
  a caller learns nothing of other teams) and :class:`~carbon.errors.RunConflict` 409.
- Any other :class:`~carbon.errors.StoreError`, and SQLAlchemy errors that reach here, mean
  the database is unavailable or busy: 503 with ``Retry-After``, never 500, since agents
  retry 5xx and keep their records meanwhile. A value the database refuses as such (too long
  for its column), or one that cannot even be sent to it (a time with no UTC equivalent), is
  the record's fault: 422 in the shape of a validation error, so the agent does not retry
  it forever. The wire models bound their fields to the columns, so this is a last resort.
- Validation errors keep FastAPI's shape (``detail`` is a list whose ``loc`` names the
  field); :func:`field_error` makes the server's own checks look the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, SQLAlchemyError, StatementError

from carbon.errors import RunConflict, RunNotFound, StoreError
from carbon.server.limits import retry_after_header

log = logging.getLogger(__name__)

UNAVAILABLE_RETRY_AFTER_S = 5.0
"""What a 503 asks the client to wait before trying again, seconds."""

UNAVAILABLE_DETAIL = "the database is unavailable; try again later"
"""The answer of a 503 (the cause is logged, with the database URL masked)."""


def field_error(
    where: str, loc: tuple[str | int, ...], message: str, value: Any = None
) -> RequestValidationError:
    """A 422 naming a field, in the shape FastAPI gives its own validation errors.

    Args:
        where: ``body``, ``path`` or ``query``.
        loc: The field's path (``("totals", "duration_s")``).
        message: What is wrong and what is expected.
        value: The value refused, echoed back.
    """
    return RequestValidationError(
        [{"type": "value_error", "loc": (where, *loc), "msg": message, "input": value}]
    )


def unavailable_response() -> JSONResponse:
    """The 503 answer: the database cannot be used now."""
    return JSONResponse(
        {"detail": UNAVAILABLE_DETAIL},
        status_code=503,
        headers=retry_after_header(UNAVAILABLE_RETRY_AFTER_S),
    )


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)


async def _conflict(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=409)


def _refused_value(exc: BaseException) -> bool:
    """Whether the database refused a value, or the value could not be bound for it."""
    if isinstance(exc, DataError):
        return True
    unbindable = (OverflowError, ValueError, UnicodeError)
    return (
        isinstance(exc, StatementError)
        and not isinstance(exc, DBAPIError)
        and isinstance(exc.orig, unbindable)
    )


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    cause = exc.__cause__ if isinstance(exc, StoreError) else exc
    if cause is not None and _refused_value(cause):
        where = "query" if request.method in ("GET", "HEAD") else "body"
        message = f"the database refused a value of the record: {_first_line(cause)}"
        return await request_validation_exception_handler(request, field_error(where, (), message))
    log.warning("%s %s: answered 503: %s", request.method, request.url.path, _first_line(exc))
    return unavailable_response()


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def install_error_handlers(app: FastAPI, on_invalid_batch: Callable[[], None]) -> None:
    """Register the handlers on an application.

    Args:
        app: The application.
        on_invalid_batch: Called when a batch is refused with 422 (its body or one of the
            server's checks), for the ``rejected`` count of batches.
    """

    async def validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        path = getattr(request.scope.get("route"), "path", "")
        if request.method == "POST" and str(path).endswith("/batches"):
            on_invalid_batch()
        return await request_validation_exception_handler(request, exc)

    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(RunNotFound, _not_found)
    app.add_exception_handler(RunConflict, _conflict)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(SQLAlchemyError, _store_error)
