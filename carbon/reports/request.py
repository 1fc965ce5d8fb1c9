"""What a report covers: a period of UTC days, projects, a team, and how to break it down.

A period is a range of whole UTC days, both ends included, as a statement is written
("1 January to 31 March"). A run belongs to the period it started in, so every run is
counted in exactly one period and two adjacent reports add up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, get_args

from carbon.errors import ConfigError

__all__ = ["DEFAULT_DAYS", "GROUP_BY", "GroupBy", "ReportRequest", "default_period", "parse_day"]

GroupBy = Literal["project", "team", "hardware", "region", "kind"]
GROUP_BY: tuple[str, ...] = get_args(GroupBy)
"""Dimensions a report's breakdown can group runs by."""

DEFAULT_DAYS = 90
"""Length of the period when none is given: the last 90 days, today included."""


def parse_day(text: str, name: str) -> date:
    """A ``YYYY-MM-DD`` day, or a :class:`ConfigError` naming the option and the text."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{name} {text!r} is not a day; write it as YYYY-MM-DD") from None


def default_period(today: date, days: int = DEFAULT_DAYS) -> tuple[date, date]:
    """The ``days`` days that end with ``today``, both ends included."""
    return today - timedelta(days=days - 1), today


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ReportRequest:
    """The runs a report covers and the thresholds its recommendations use.

    Attributes:
        since: First UTC day of the period; ``None`` reaches back to the first run.
        until: Last UTC day of the period, included; ``None`` runs to the last run.
        projects: Only runs of these projects; empty for every project.
        team: Only this team's runs, by name (the local store holds every team's);
            ``None`` for all the caller may read.
        group_by: The breakdown's dimension.
        max_accuracy_loss: Largest accuracy drop, in the accuracy's own unit, a compression
            setting may cost to be recommended (0.01 is one point for a fraction).
        mfu_threshold: Training runs below this model FLOPs utilization are named.

    Raises:
        ConfigError: The period ends before it starts, the dimension is unknown, or a
            threshold is out of range; nothing is read.
    """

    since: date | None
    until: date | None
    projects: tuple[str, ...] = ()
    team: str | None = None
    group_by: GroupBy = "project"
    max_accuracy_loss: float = 0.01
    mfu_threshold: float = 0.30

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.since > self.until:
            raise ConfigError(
                f"the period starts on {self.since} but ends on {self.until}: "
                "--from must not be after --to"
            )
        if self.group_by not in GROUP_BY:
            raise ConfigError(
                f"cannot group by {self.group_by!r}; choose one of {', '.join(GROUP_BY)}"
            )
        if not (math.isfinite(self.max_accuracy_loss) and self.max_accuracy_loss >= 0):
            raise ConfigError(
                f"max_accuracy_loss must be a number >= 0, got {self.max_accuracy_loss!r}"
            )
        if not (math.isfinite(self.mfu_threshold) and 0 < self.mfu_threshold <= 1):
            raise ConfigError(
                f"mfu_threshold must be a fraction in (0, 1], got {self.mfu_threshold!r}"
            )
        blank = [p for p in self.projects if not p.strip()]
        if blank:
            raise ConfigError("a project name is empty")
        object.__setattr__(self, "projects", tuple(sorted(set(self.projects))))

    @property
    def start(self) -> datetime | None:
        """The period's first instant (UTC), or ``None`` when open."""
        return _day_start(self.since) if self.since is not None else None

    @property
    def end(self) -> datetime | None:
        """The instant after the period's last day (UTC, excluded), or ``None`` when open."""
        if self.until is None or self.until == date.max:  # to the end of the calendar: open
            return None
        return _day_start(self.until + timedelta(days=1))

    @property
    def days(self) -> int | None:
        """The period's length in days, when both ends are given."""
        if self.since is None or self.until is None:
            return None
        return (self.until - self.since).days + 1

    def previous(self) -> ReportRequest | None:
        """The period of the same length just before this one, for the change figures."""
        if self.since is None or self.days is None:
            return None
        try:
            until = self.since - timedelta(days=1)
            return replace(self, since=until - timedelta(days=self.days - 1), until=until)
        except OverflowError:  # a period reaching back to year 1 has no period before it
            return None
