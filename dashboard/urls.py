"""The dashboard's state lives in the URL: reading query parameters and writing them back.

A view is shared by copying its address, so every filter is a query parameter. Values
from the URL are checked here; a bad one is reported to the page (which says what was
wrong and ignores it) rather than raised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from carbon.store.browse import RunFilter

RUN_ID = re.compile(r"^[0-9a-f]{6,32}$")
"""A run id or a unique prefix of one, as the URL may carry it."""

MAX_IDS = 20
"""Most runs one Compare or Regions view takes."""

FILTER_KEYS = (
    "project",
    "kind",
    "status",
    "hardware",
    "region",
    "compression",
    "tag",
    "since",
    "until",
)
"""Query parameters of the Runs page, in the order they are written."""


def query_string(params: Mapping[str, str | None]) -> str:
    """``?a=1&b=2`` from the parameters that have a value (empty string when none)."""
    kept = {key: value for key, value in params.items() if value not in (None, "")}
    return "?" + urlencode(kept) if kept else ""


def run_ids(text: str | None) -> tuple[list[str], list[str]]:
    """Run ids from a comma-separated parameter, and the problems found.

    Returns:
        The valid ids (unique, in order) and what was wrong (bad ids, too many).
    """
    ids: list[str] = []
    problems: list[str] = []
    for part in (text or "").split(","):
        needle = part.strip().lower()
        if not needle:
            continue
        if not RUN_ID.match(needle):
            problems.append(f"{part.strip()!r} is not a run id (6 to 32 hexadecimal digits)")
        elif needle not in ids:
            ids.append(needle)
    if len(ids) > MAX_IDS:
        problems.append(f"{len(ids)} runs asked; showing the first {MAX_IDS}")
        ids = ids[:MAX_IDS]
    return ids, problems


def parse_day(text: str | None, name: str) -> tuple[date | None, str | None]:
    """A ``YYYY-MM-DD`` day from a parameter, or the problem with it."""
    if not text:
        return None, None
    try:
        return date.fromisoformat(text.strip()), None
    except ValueError:
        return None, f"{name}={text!r} is not a date (YYYY-MM-DD); ignored"


def day_start(day: date | None) -> datetime | None:
    """Midnight UTC at the start of ``day``."""
    return None if day is None else datetime.combine(day, time(), tzinfo=UTC)


def run_filter(query: Mapping[str, str]) -> tuple[RunFilter, list[str]]:
    """The Runs page's filter from its query parameters, and the problems found.

    ``until`` is inclusive in the URL (a day) and exclusive in the filter (the next
    midnight). ``tag`` is ``key=value``.
    """
    problems: list[str] = []
    since, problem = parse_day(query.get("since"), "since")
    problems += [problem] if problem else []
    until, problem = parse_day(query.get("until"), "until")
    problems += [problem] if problem else []
    tags: dict[str, str] = {}
    if tag := query.get("tag"):
        key, sep, value = tag.partition("=")
        if sep and key:
            tags[key] = value
        else:
            problems.append(f"tag={tag!r} is not key=value; ignored")
    start = day_start(since)
    end = day_start(until + timedelta(days=1)) if until is not None else None
    if start is not None and end is not None and start >= end:
        problems.append(f"since={since} is after until={until}; dates ignored")
        start = end = None
    filters = RunFilter(
        project=query.get("project") or None,
        kind=query.get("kind") or None,
        status=query.get("status") or None,
        hardware=query.get("hardware") or None,
        region=query.get("region") or None,
        compression=query.get("compression") or None,
        tags=tags,
        since=start,
        until=end,
    )
    return filters, problems


def join_ids(ids: Iterable[str]) -> str:
    """The comma-separated form of run ids, for a ``runs=`` parameter."""
    return ",".join(ids)
