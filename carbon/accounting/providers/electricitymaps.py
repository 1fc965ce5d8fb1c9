"""Live grid carbon intensity from the Electricity Maps API, used only when a token is given.

The API (``GET /v3/carbon-intensity/latest?zone=FR`` and ``.../history?zone=FR``, token in
the ``auth-token`` header) answers with ``carbonIntensity`` in gCO2e/kWh, the ``datetime``
the figure describes and the ``emissionFactorType`` (``lifecycle`` by default, or
``direct``). The free tier covers one zone, so calls are cached per zone and, after a
failure, paused for a growing delay rather than repeated.

Back-off: after ``n`` consecutive failed calls no call is made for
``min(backoff_initial_s * 2 ** (n - 1), backoff_max_s)`` seconds of the injected clock;
asking during that time raises :class:`ElectricityMapsBackoffError` at once. One success
resets the count. The pause is provider-wide: the token and the service are shared by all
zones.

The token is kept private: it is sent in the header and never put in a message, a log
record or the provider's ``repr``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from carbon.errors import ConfigError, SourceError

__all__ = [
    "ElectricityMapsAuthError",
    "ElectricityMapsBackoffError",
    "ElectricityMapsConnectionError",
    "ElectricityMapsError",
    "ElectricityMapsProvider",
    "ElectricityMapsResponseError",
    "ElectricityMapsServerError",
    "ElectricityMapsTimeoutError",
    "ElectricityMapsZoneError",
    "LiveIntensity",
]

log = logging.getLogger(__name__)

SOURCE_NAME = "Electricity Maps API"
_T = TypeVar("_T")
_MAX_DETAIL_CHARS = 200


class ElectricityMapsError(SourceError):
    """The Electricity Maps API gave no usable intensity."""


class ElectricityMapsAuthError(ElectricityMapsError):
    """The API refused the token (HTTP 401 or 403)."""


class ElectricityMapsZoneError(ElectricityMapsError):
    """The API does not know the zone (HTTP 400 or 404)."""


class ElectricityMapsTimeoutError(ElectricityMapsError):
    """The API did not answer within the time box."""


class ElectricityMapsServerError(ElectricityMapsError):
    """The API failed on its side (HTTP 5xx)."""


class ElectricityMapsConnectionError(ElectricityMapsError):
    """The API could not be reached at all."""


class ElectricityMapsResponseError(ElectricityMapsError):
    """Any other status (such as 429), or a body that is not the documented JSON."""


class ElectricityMapsBackoffError(ElectricityMapsError):
    """No call was made: earlier calls failed and the back-off delay has not passed."""


@dataclass(frozen=True, slots=True)
class LiveIntensity:
    """One carbon-intensity figure from the Electricity Maps API.

    Attributes:
        zone: Zone id as the API returned it (``FR``, ``US-CAL-CISO``).
        intensity_g_per_kwh: Grid intensity, gCO2e per kWh.
        datetime_utc: Start of the period the figure describes, timezone-aware UTC.
        source: ``"Electricity Maps API"`` with the zone and factor type, for reports.
        factor_type: ``emissionFactorType`` as returned (``lifecycle``, ``direct``), or
            ``None`` when the answer did not say.
        is_estimated: Whether the API marked the figure as estimated, ``None`` if unsaid.
    """

    zone: str
    intensity_g_per_kwh: float
    datetime_utc: datetime
    source: str
    factor_type: str | None
    is_estimated: bool | None


class ElectricityMapsProvider:
    """Reads the latest and recent carbon intensity of a zone, with a cache and back-off.

    Args:
        token: The Electricity Maps API token (passed in; never read from the environment).
        base_url: API root, without ``/v3``.
        timeout_s: Limit for each phase of a call (connect, send, each read), in seconds.
        cache_ttl_s: How long an answer is reused for the same zone, in seconds.
        clock: Monotonic seconds; injected so tests can move time.
        backoff_initial_s: Pause after the first failure, doubled per further failure.
        backoff_max_s: Longest pause.

    Raises:
        ConfigError: The token is empty or has line breaks, the URL is not http(s), or a
            duration is negative, zero (timeout) or not finite.
    """

    def __init__(
        self,
        token: str,
        *,
        base_url: str = "https://api.electricitymap.org",
        timeout_s: float = 5.0,
        cache_ttl_s: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
        backoff_initial_s: float = 30.0,
        backoff_max_s: float = 1800.0,
    ) -> None:
        if not token.strip() or any(char in token for char in "\r\n"):
            raise ConfigError("Electricity Maps token is empty or contains a line break")
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"Electricity Maps base_url must be http(s), got {base_url!r}")
        durations = {
            "timeout_s": timeout_s,
            "cache_ttl_s": cache_ttl_s,
            "backoff_initial_s": backoff_initial_s,
            "backoff_max_s": backoff_max_s,
        }
        for name, value in durations.items():
            if not math.isfinite(value) or value < 0 or (name == "timeout_s" and value == 0):
                raise ConfigError(f"Electricity Maps {name} must be a positive number: {value}")
        self._token = token
        self._base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self._cache_ttl_s = cache_ttl_s
        self._clock = clock
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._latest: dict[str, tuple[float, LiveIntensity]] = {}
        self._history: dict[str, tuple[float, tuple[LiveIntensity, ...]]] = {}
        self._failures = 0
        self._retry_at = -math.inf
        self._last_error = ""

    def __repr__(self) -> str:
        return f"ElectricityMapsProvider(base_url={self._base_url!r}, token=<hidden>)"

    def latest(self, zone: str) -> LiveIntensity:
        """Return the zone's most recent carbon intensity.

        Raises:
            ElectricityMapsError: A subclass naming what failed; see the module docstring.
        """
        return self._cached(self._latest, "latest", zone, _parse_point)

    def history(self, zone: str) -> list[LiveIntensity]:
        """Return the zone's hourly intensities over the last day, oldest first.

        Hours the API lists without a figure are left out, so they show up as missing
        hours in :func:`carbon.accounting.hourly.hourly_co2e_g` instead of as zeros.

        Raises:
            ElectricityMapsError: A subclass naming what failed; see the module docstring.
        """
        points = self._cached(self._history, "history", zone, _parse_history)
        return list(points)

    def _cached(
        self,
        cache: dict[str, tuple[float, _T]],
        endpoint: str,
        zone: str,
        parse: Callable[[Any, str], _T],
    ) -> _T:
        zone = zone.strip()
        if not zone:
            raise ConfigError("Electricity Maps zone must not be empty")
        now = self._clock()
        hit = cache.get(zone)
        if hit is not None and now - hit[0] < self._cache_ttl_s:
            return hit[1]
        if now < self._retry_at:
            raise ElectricityMapsBackoffError(
                f"Electricity Maps not called for {endpoint} intensity of zone {zone!r}: "
                f"paused for another {self._retry_at - now:.0f} s after {self._failures} "
                f"consecutive failure(s); last: {self._last_error}"
            )
        try:
            value = parse(self._get(endpoint, zone), zone)
        except ElectricityMapsError as exc:
            self._failed(exc)
            raise
        self._failures, self._retry_at = 0, -math.inf
        cache[zone] = (self._clock(), value)
        return value

    def _failed(self, exc: ElectricityMapsError) -> None:
        self._failures += 1
        doublings = min(self._failures - 1, 32)
        delay_s = min(self._backoff_initial_s * 2.0**doublings, self._backoff_max_s)
        self._retry_at = self._clock() + delay_s
        self._last_error = str(exc)
        log.warning("%s; next Electricity Maps call in %.0f s at the earliest", exc, delay_s)

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "<token>")

    def _get(self, endpoint: str, zone: str) -> Any:
        what = f"{endpoint} intensity of zone {zone!r}"
        try:
            with httpx.Client(timeout=self._timeout_s) as client:
                response = client.get(
                    f"{self._base_url}/v3/carbon-intensity/{endpoint}",
                    params={"zone": zone},
                    headers={"auth-token": self._token},
                )
        except httpx.TimeoutException:
            raise ElectricityMapsTimeoutError(
                f"Electricity Maps did not answer within {self._timeout_s:g} s ({what})"
            ) from None
        except httpx.HTTPError as exc:
            raise ElectricityMapsConnectionError(
                f"Electricity Maps at {self._base_url} could not be reached ({what}): "
                f"{self._scrub(str(exc)) or type(exc).__name__}"
            ) from None
        status = response.status_code
        if status == 200:
            try:
                return response.json()
            except ValueError:
                raise ElectricityMapsResponseError(
                    f"Electricity Maps answered with something other than JSON ({what})"
                ) from None
        detail = self._scrub(_error_detail(response))
        if status in (401, 403):
            raise ElectricityMapsAuthError(
                f"Electricity Maps refused the API token (HTTP {status}{detail}) for the "
                f"{what}; check the token and that its plan covers the zone"
            )
        if status in (400, 404):
            raise ElectricityMapsZoneError(
                f"Electricity Maps does not know zone {zone!r} (HTTP {status}{detail}); "
                "zone ids look like FR, DE or US-CAL-CISO"
            )
        if status >= 500:
            raise ElectricityMapsServerError(
                f"Electricity Maps failed on its side (HTTP {status}{detail}) for the {what}"
            )
        raise ElectricityMapsResponseError(
            f"Electricity Maps answered HTTP {status}{detail} for the {what}"
        )


def _error_detail(response: httpx.Response) -> str:
    """Return ``": <message>"`` from an error body, or ``""``; bounded in length."""
    try:
        body = response.json()
    except ValueError:
        return ""
    message = body.get("error") or body.get("message") if isinstance(body, dict) else None
    return f": {str(message)[:_MAX_DETAIL_CHARS]}" if message else ""


def _parse_point(item: Any, zone: str) -> LiveIntensity:
    if not isinstance(item, dict):
        raise ElectricityMapsResponseError(f"Electricity Maps answer for zone {zone!r} is odd")
    value = item.get("carbonIntensity")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ElectricityMapsResponseError(
            f"Electricity Maps gave no carbon intensity for zone {zone!r}: {value!r}"
        )
    if not math.isfinite(value) or value < 0:
        raise ElectricityMapsResponseError(
            f"Electricity Maps gave an impossible carbon intensity for zone {zone!r}: {value}"
        )
    try:
        when = datetime.fromisoformat(str(item["datetime"]))
    except (KeyError, ValueError):
        raise ElectricityMapsResponseError(
            f"Electricity Maps gave no usable datetime for zone {zone!r}: {item.get('datetime')!r}"
        ) from None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    factor = item.get("emissionFactorType")
    factor_type = factor if isinstance(factor, str) and factor else None
    estimated = item.get("isEstimated")
    returned_zone = item.get("zone")
    zone_id = returned_zone if isinstance(returned_zone, str) and returned_zone else zone
    return LiveIntensity(
        zone=zone_id,
        intensity_g_per_kwh=float(value),
        datetime_utc=when,
        source=f"{SOURCE_NAME}, zone {zone_id}, {factor_type or 'factor type not given'}",
        factor_type=factor_type,
        is_estimated=estimated if isinstance(estimated, bool) else None,
    )


def _parse_history(body: Any, zone: str) -> tuple[LiveIntensity, ...]:
    entries = body.get("history") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        raise ElectricityMapsResponseError(
            f"Electricity Maps history for zone {zone!r} has no 'history' list"
        )
    points = [
        _parse_point(entry, zone)
        for entry in entries
        if not (isinstance(entry, dict) and entry.get("carbonIntensity") is None)
    ]
    return tuple(sorted(points, key=lambda point: point.datetime_utc))
