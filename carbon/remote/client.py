"""The HTTP client of the team server, and what each of its answers means for a record.

:meth:`ServerClient.send` never raises for the network: it classifies every answer into an
:class:`Outcome`. ``acked`` (the server took the record, or already had it), ``retry`` (the
server or the network is away: connection errors, timeouts, 408, 429, 5xx, honouring
``Retry-After``), ``rejected`` (the record itself is refused for good: 400, 404, 409, 413,
422, with the server's reason) and ``unauthorized`` (401, 403: the key is wrong; the record
is kept). An answer that is not the acknowledgement the contract promises is a ``retry``, so
a proxy's page never deletes a record.
"""

from __future__ import annotations

import email.utils
import enum
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from carbon import wire
from carbon._version import __version__
from carbon.errors import ConfigError, RunNotFound, StoreError
from carbon.remote.spool import SpoolRecord
from carbon.settings import Settings

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
_REJECTED_CODES = frozenset({400, 404, 409, 413, 422})
_ACKS: dict[str, type[BaseModel]] = {
    "start": wire.StartAck,
    "batch": wire.BatchAck,
    "end": wire.RunStatusAck,
}
_DETAIL_CHARS = 500


class OutcomeKind(enum.StrEnum):
    """What the sender does with a record after an answer."""

    ACKED = "acked"
    RETRY = "retry"
    REJECTED = "rejected"
    UNAUTHORIZED = "unauthorized"


@dataclass(frozen=True)
class Outcome:
    """The meaning of the server's answer to one request.

    Attributes:
        kind: What to do with the record.
        status_code: The HTTP status, ``None`` when no answer came.
        detail: The server's reason or the network error, for messages (never the key).
        retry_after_s: The server's ``Retry-After``, seconds, when it gave one.
    """

    kind: OutcomeKind
    status_code: int | None = None
    detail: str = ""
    retry_after_s: float | None = None


def remote_settings(settings: Settings) -> tuple[str, SecretStr]:
    """The server URL and API key, checked: both are needed to send runs to a server.

    Raises:
        ConfigError: ``CARBON_SERVER_URL`` or ``CARBON_API_KEY`` is not set.
    """
    if settings.server_url is None:
        raise ConfigError("no team server is set: set CARBON_SERVER_URL (and CARBON_API_KEY)")
    key = settings.api_key
    if key is None or not key.get_secret_value().strip():
        raise ConfigError(
            f"CARBON_SERVER_URL is set ({settings.server_url}) but CARBON_API_KEY is not: "
            "set it to the team's API key (role ingest to send runs)"
        )
    return settings.server_url, key


class ServerClient:
    """Requests to the team server with the team's key, on one keep-alive connection pool.

    Args:
        base_url: The server's URL (``https://carbon.example.org``).
        api_key: The key sent as a bearer token; it is never logged.
        timeout_s: Connect and read timeout of each request.
        transport: An ``httpx`` transport to use instead of the network (tests).
    """

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr,
        *,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {api_key.get_secret_value().strip()}",
                "User-Agent": f"carbon/{__version__}",
                "Content-Type": "application/json",
            },
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, transport: httpx.BaseTransport | None = None
    ) -> ServerClient:
        """The client of the server the settings name.

        Raises:
            ConfigError: The server URL or the API key is not set.
        """
        url, key = remote_settings(settings)
        return cls(url, key, transport=transport)

    def send(self, record: SpoolRecord) -> Outcome:
        """Post one spooled record (its JSON as stored) and say what the answer means."""
        run = quote(record.run_id, safe="")
        path = {
            "start": f"{API_PREFIX}/runs",
            "batch": f"{API_PREFIX}/runs/{run}/batches",
            "end": f"{API_PREFIX}/runs/{run}/end",
        }[record.kind]
        outcome = self._post(path, record.body, _ACKS[record.kind])
        if record.kind == "start" and outcome.status_code == 404:
            # There is no "unknown run" for a start: the URL does not lead to a carbon server.
            detail = f"{outcome.detail}; is CARBON_SERVER_URL ({self.base_url}) right?"
            return Outcome(OutcomeKind.RETRY, 404, detail)
        return outcome

    def heartbeat(self, run_id: str, rank: int) -> Outcome:
        """Tell the server that an open run whose process has nothing to send is alive."""
        body = wire.Heartbeat(rank=rank).model_dump_json().encode()
        path = f"{API_PREFIX}/runs/{quote(run_id, safe='')}/heartbeat"
        return self._post(path, body, wire.RunStatusAck)

    def list_runs(
        self, *, project: str | None = None, kind: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The team's runs, newest first, in the JSON shape of ``carbon runs list --json``.

        Raises:
            StoreError: The server cannot be reached, refused the key (reading needs a key
                with role read or admin) or answered something else.
        """
        params: dict[str, str | int] = {"limit": limit}
        params.update({k: v for k, v in (("project", project), ("kind", kind)) if v})
        data = self._get_json(f"{API_PREFIX}/runs", "the runs", params)
        if not isinstance(data, list):
            raise StoreError(f"the server at {self.base_url} answered the runs with no list")
        return data

    def get_run(self, run_id: str) -> dict[str, Any]:
        """The run as the server has it, in the JSON shape of ``carbon runs show --json``.

        Raises:
            RunNotFound: The server has no such run (or it is another team's).
            StoreError: The server cannot be reached, refused the key (reading needs a key
                with role read or admin) or answered something else.
        """
        data = self._get_json(f"{API_PREFIX}/runs/{quote(run_id, safe='')}", f"run {run_id}")
        if not isinstance(data, dict):
            raise StoreError(f"the server at {self.base_url} answered run {run_id} with no JSON")
        return data

    def get_report(self, params: Sequence[tuple[str, str]]) -> bytes:
        """The team's report as the server renders it (``/api/v1/reports``), as bytes.

        Raises:
            ConfigError: The server refused the request's options (HTTP 422).
            StoreError: The server cannot be reached, refused the key or answered otherwise.
        """
        response = self._get(f"{API_PREFIX}/reports", "the report", list(params), timeout_s=600)
        return response.content

    def _get_json(self, path: str, what: str, params: dict[str, str | int] | None = None) -> Any:
        """GET a read route and return its JSON, translating failures into carbon's errors."""
        response = self._get(path, what, params)
        try:
            return response.json()
        except ValueError:
            raise StoreError(
                f"the server at {self.base_url} answered {what} with no JSON"
            ) from None

    def _get(
        self,
        path: str,
        what: str,
        params: Any = None,
        *,
        timeout_s: float | None = None,
    ) -> httpx.Response:
        """GET a read route, translating failures into carbon's errors."""
        try:
            response = self._http.get(
                path,
                params=params,
                timeout=httpx.USE_CLIENT_DEFAULT if timeout_s is None else timeout_s,
            )
        except httpx.HTTPError as exc:
            raise StoreError(
                f"cannot reach the server at {self.base_url}: {_describe(exc)}"
            ) from exc
        code = response.status_code
        if code in (401, 403):
            raise StoreError(
                f"the server at {self.base_url} refused the API key (HTTP {code}: "
                f"{_detail(response)}): reading runs needs a key with role read or admin "
                "(CARBON_API_KEY)"
            )
        if code == 404:
            raise RunNotFound(f"the server at {self.base_url} has no {what}")
        if code == 422:
            raise ConfigError(f"the server at {self.base_url} refused: {_detail(response)}")
        if code != 200:
            raise StoreError(
                f"the server at {self.base_url} could not give {what} (HTTP {code}: "
                f"{_detail(response)})"
            )
        return response

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _post(self, path: str, body: bytes, ack: type[BaseModel]) -> Outcome:
        try:
            response = self._http.post(path, content=body)
        except httpx.HTTPError as exc:
            return Outcome(OutcomeKind.RETRY, None, _describe(exc))
        code = response.status_code
        if 200 <= code < 300:
            try:
                ack.model_validate_json(response.content)
            except ValidationError:
                detail = f"HTTP {code} but no {ack.__name__}: is {self.base_url} a carbon server?"
                return Outcome(OutcomeKind.RETRY, code, detail)
            return Outcome(OutcomeKind.ACKED, code)
        detail = f"HTTP {code}: {_detail(response)}"
        if code in (401, 403):
            return Outcome(OutcomeKind.UNAUTHORIZED, code, detail)
        if code in _REJECTED_CODES:
            return Outcome(OutcomeKind.REJECTED, code, detail)
        return Outcome(OutcomeKind.RETRY, code, detail, _retry_after_s(response))


def _detail(response: httpx.Response) -> str:
    """The server's ``detail``, short, as text (FastAPI's list of field errors joined)."""
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        detail = response.text or response.reason_phrase
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(part) for part in item.get("loc", ()))
                parts.append(f"{where}: {item.get('msg', item)}" if where else str(item))
            else:
                parts.append(str(item))
        detail = "; ".join(parts)
    text = str(detail).strip() or response.reason_phrase
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 3] + "..."


def _describe(exc: httpx.HTTPError) -> str:
    """A network error as one line: its kind and message."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _retry_after_s(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), ``None`` when absent or bad."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None
