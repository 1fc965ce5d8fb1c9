"""What one request may cost the server: its body size, and how often a key may call.

- :class:`BodySizeLimit` refuses a body larger than ``CARBON_MAX_BODY_MB`` with 413: at once
  when ``Content-Length`` says so, and for a chunked body (which has no length) by reading
  it, up to the limit, before the application runs; so no request makes the server hold
  more than the limit, and the API and the dashboard (a WSGI app, which reads its body in
  another thread) refuse alike.
- :class:`RateLimiter` is a token bucket per API key: ``CARBON_RATE_LIMIT_PER_S`` requests
  a second on average, bursts of twice that. It lives in the process, so each replica (and
  each worker of ``carbon serve --workers``) counts on its own: behind a load balancer over
  ``n`` replicas a key may make up to ``n`` times the rate. Agents spool and retry on 429,
  honouring ``Retry-After``, so the limit slows a flood without losing records.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BYTES_PER_MB = 1_000_000
"""Megabytes as the settings count them (the agent's spool counts the same)."""

BURST_FACTOR = 2.0
"""A bucket holds this many seconds' worth of requests."""


def _too_large(max_bytes: int) -> str:
    return f"the request body is larger than the server accepts ({max_bytes / BYTES_PER_MB:g} MB)"


class BodySizeLimit:
    """ASGI middleware that answers 413 to a request body over ``max_bytes``.

    Args:
        app: The application to protect.
        max_bytes: Largest body accepted, bytes.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check ``Content-Length`` (then count the bytes), or read a chunked body first."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0:
                    response = JSONResponse(
                        {"detail": "Content-Length is not a number of bytes"},
                        status_code=400,
                    )
                    await response(scope, receive, send)
                    return
                if declared > self.max_bytes:
                    response = JSONResponse(
                        {"detail": _too_large(self.max_bytes)},
                        status_code=413,
                    )
                    await response(scope, receive, send)
                    return
            if name == b"transfer-encoding":
                await self._chunked(scope, receive, send)
                return
        received = 0
        max_bytes = self.max_bytes

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    # Raised inside the application's read of the body: the exception
                    # handlers turn it into the 413 answer.
                    raise HTTPException(413, _too_large(max_bytes))
            return message

        await self.app(scope, counted, send)

    async def _chunked(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read a body of unknown length up to the limit, then hand it to the application."""
        parts: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away: nobody to answer
            part = message.get("body", b"")
            received += len(part)
            if received > self.max_bytes:
                response = JSONResponse({"detail": _too_large(self.max_bytes)}, status_code=413)
                await response(scope, receive, send)
                return
            parts.append(part)
            if not message.get("more_body", False):
                break
        body = b"".join(parts)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # what comes after the body: a disconnect
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class RateLimiter:
    """A token bucket per key: ``rate_per_s`` on average, ``burst`` at most at once.

    A key is whatever the caller counts by: an API key's id for requests, a client's
    address for failed dashboard logins.

    Args:
        rate_per_s: Tokens added per second.
        burst: Size of a bucket; twice the rate by default (at least one request).
        max_keys: Buckets kept; the least recently used beyond that are forgotten (a
            forgotten key starts again with a full bucket).
        clock: Monotonic clock, seconds.
    """

    def __init__(
        self,
        rate_per_s: float,
        *,
        burst: float | None = None,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not rate_per_s > 0:
            raise ValueError("rate_per_s must be > 0")
        self.rate_per_s = rate_per_s
        self.burst = max(1.0, burst if burst is not None else BURST_FACTOR * rate_per_s)
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, key: Hashable) -> float | None:
        """Take a token for ``key``.

        Returns:
            ``None`` when the request may go ahead, else the seconds until a token will be
            there (for ``Retry-After``).
        """
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate_per_s)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)
            self._buckets.move_to_end(key)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        return None if allowed else (1.0 - tokens) / self.rate_per_s

    def wait_s(self, key: Hashable) -> float | None:
        """How long ``key`` must wait for a token, taking none.

        Returns:
            ``None`` when a token is there now, else the seconds until there will be one.
        """
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate_per_s)
        return None if tokens >= 1.0 else (1.0 - tokens) / self.rate_per_s


def retry_after_header(wait_s: float) -> dict[str, str]:
    """A ``Retry-After`` header for a wait, in whole seconds (at least one)."""
    return {"Retry-After": str(max(1, math.ceil(wait_s)))}
