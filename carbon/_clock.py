"""The wall clock, read in one place.

carbon measures every interval and duration on the monotonic clock (``time.monotonic``),
which never jumps. The wall clock only stamps when something happened: a run's start, a
record's arrival, a rank last heard of. Reading it through :func:`utc_now` lets a test move
it (``monkeypatch.setattr(carbon._clock, "utc_now", ...)``) and check that moving it during
a run changes no duration, energy or end.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["utc_now"]


def utc_now() -> datetime:
    """The current time on the wall clock, timezone-aware UTC."""
    return datetime.now(UTC)
