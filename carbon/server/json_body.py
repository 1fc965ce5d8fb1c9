r"""Request bodies parsed as strict JSON: only finite numbers and text a database can keep.

Python's :func:`json.loads` (which FastAPI uses) accepts the bare literals ``NaN``,
``Infinity`` and ``-Infinity``, which are not JSON. A NaN slipping into a free-form field
(``hardware``, ``compression``) would be stored, break PostgreSQL's ``jsonb`` or poison a
sum. It also accepts the escapes ``\u0000`` (NUL, which PostgreSQL's text cannot hold) and
lone UTF-16 surrogates such as ``\ud800`` (no character at all: they cannot be written as
UTF-8, so neither stored nor echoed back in an error). A body that is not text in its
encoding made FastAPI answer a bare 400. Routes built with :class:`StrictJsonRoute` refuse
all of these with FastAPI's usual 422 ``json_invalid`` answer, naming what is wrong and
where, whatever field it is in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


class _NonFiniteNumberError(ValueError):
    """A body held ``NaN`` or an infinity."""

    def __init__(self, literal: str) -> None:
        super().__init__(literal)
        self.literal = literal


_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
"""``\\u0000`` as an escape (after an even number of backslashes, so not ``\\\\u0000``)."""

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
"""A UTF-16 surrogate escape: half of a pair (an emoji, legitimately) or a lone one."""


def _refuse_constant(literal: str) -> Any:
    raise _NonFiniteNumberError(literal)


def _decode(text: str | bytes) -> str:
    """The body as text, in the encoding JSON's first bytes show (UTF-8 unless a BOM says)."""
    if isinstance(text, str):
        return text
    encoding = json.detect_encoding(text)
    try:
        return text.decode(encoding)
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError(
            f"the body is not {encoding.upper()} text ({exc.reason} at byte {exc.start})",
            text.decode(encoding, errors="replace"),
            exc.start,
        ) from None


def _has_lone_surrogate(value: Any) -> bool:
    """Whether a parsed value holds a string (or key) with a lone UTF-16 surrogate."""
    if isinstance(value, str):
        return not value.isascii() and any("\ud800" <= char <= "\udfff" for char in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


def _refuse_unstorable_text(doc: str, value: Any) -> None:
    r"""Refuse ``\u0000`` and lone surrogates anywhere in the parsed body.

    Both can only arrive as escapes (the parser refuses raw control characters in strings,
    and a valid pair decodes to one character), so the text is searched first and the
    parsed value is walked only when a surrogate escape is there: a body without escapes,
    such as a batch of numbers, costs one substring search.
    """
    if "\\u" not in doc:
        return
    nul = _NUL_ESCAPE.search(doc)
    if nul is not None:
        raise json.JSONDecodeError(
            "a string holds \\u0000 (NUL), which text may not contain", doc, nul.end() - 6
        )
    if _SURROGATE_ESCAPE.search(doc) is not None and _has_lone_surrogate(value):
        raise json.JSONDecodeError(
            "a string holds a lone UTF-16 surrogate (\\ud800 to \\udfff without its pair), "
            "which is not a character",
            doc,
            _first_lone_surrogate(doc),
        )


def _first_lone_surrogate(doc: str) -> int:
    """Where the first surrogate escape without its other half starts in the text."""
    for match in _SURROGATE_ESCAPE.finditer(doc):
        at = match.start()
        high = match.group()[3].lower() in "89ab"
        partner = _SURROGATE_ESCAPE.match(doc, at + 6) if high else None
        if high and partner is not None and partner.group()[3].lower() in "cdef":
            continue
        if not high and _SURROGATE_ESCAPE.match(doc, max(at - 6, 0)) is not None:
            continue
        return at
    return 0


def loads_strict(text: str | bytes) -> Any:
    r"""Parse JSON, refusing non-finite numbers, NUL, lone surrogates and bytes not text.

    Raises:
        json.JSONDecodeError: The body is not text in its encoding, not JSON, or holds a
            non-finite number, a ``\u0000`` or a lone surrogate, or nests deeper than
            Python's recursion allows; the message says which and the position where.
    """
    doc = _decode(text)
    try:
        value = json.loads(doc, parse_constant=_refuse_constant)
        _refuse_unstorable_text(doc, value)
    except _NonFiniteNumberError as exc:
        position = max(doc.find(exc.literal), 0)
        raise json.JSONDecodeError(
            f"{exc.literal} is not a JSON number (numbers must be finite)", doc, position
        ) from None
    except RecursionError:
        depth = max(doc.find("[" * 50), doc.find("{" * 50), 0)
        raise json.JSONDecodeError("arrays or objects nested too deeply", doc, depth) from None
    return value


class StrictJsonRequest(Request):
    """A request whose :meth:`json` refuses what :func:`loads_strict` refuses."""

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
