"""Request bodies parsed as strict JSON: ``NaN`` and ``Infinity`` are not numbers here.

Python's :func:`json.loads` (which FastAPI uses) accepts the bare literals ``NaN``,
``Infinity`` and ``-Infinity``, which are not JSON. A NaN slipping into a free-form field
(``hardware``, ``compression``) would be stored, break PostgreSQL's ``jsonb`` or poison a
sum. Routes built with :class:`StrictJsonRoute` refuse such a body with FastAPI's usual 422
``json_invalid`` answer, whatever field it is in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


class _NonFiniteNumberError(ValueError):
    """A body held ``NaN`` or an infinity."""

    def __init__(self, literal: str) -> None:
        super().__init__(literal)
        self.literal = literal


def _refuse_constant(literal: str) -> Any:
    raise _NonFiniteNumberError(literal)


def loads_strict(text: str | bytes) -> Any:
    """Parse JSON, refusing ``NaN`` and infinities.

    Raises:
        json.JSONDecodeError: The text is not JSON, or holds a non-finite number; the
            message says which.
    """
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except _NonFiniteNumberError as exc:
        doc = text.decode(errors="replace") if isinstance(text, bytes) else text
        position = max(doc.find(exc.literal), 0)
        raise json.JSONDecodeError(
            f"{exc.literal} is not a JSON number (numbers must be finite)", doc, position
        ) from None


class StrictJsonRequest(Request):
    """A request whose :meth:`json` refuses ``NaN`` and infinities."""

    async def json(self) -> Any:
        """The body parsed as strict JSON (see :func:`loads_strict`)."""
        if not hasattr(self, "_json"):
            self._json = loads_strict(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """An API route whose JSON body is parsed with :class:`StrictJsonRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, given a strict request instead of the plain one."""
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_handler
