"""How runs end: an agent's end record, its heartbeats, and runs whose agent went silent.

A rank ends with its agent's :class:`~carbon.wire.RunEnd`; the run ends when its last rank
does, with the worst status of its ranks. An agent that stops sending (the process was
killed, the machine lost) cannot say so: a rank running with nothing received for longer
than the heartbeat timeout is marked ``interrupted``, keeping everything it sent. A later
end record from that agent still sets the status it reports.

An interrupted rank ends where its measurements end: its start plus the duration of its
last batch, on the run's own (monotonic) timeline, rather than when the interruption was
noticed (``carbon sync`` may close a killed run days later, the server minutes later).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from carbon import _clock, wire
from carbon.errors import RunNotFound
from carbon.store.models import Run, RunRank

FINAL_ORDER = ("failed", "interrupted", "completed")
"""How the ranks' endings combine: any failed rank fails the run, then interrupted."""


def finish_run(session: Session, end: wire.RunEnd, *, team_id: int) -> str:
    """Record how a rank ended, and the run's status once every rank has ended.

    Returns:
        The run's status afterwards (``running`` while other ranks go on).

    Raises:
        RunNotFound: No such run in this team, or the rank never started.
    """
    _check_rank(session, end.run_id, end.rank, team_id)
    ended_at = end.ended_at
    if end.status == "interrupted":
        started_at, duration_s = session.execute(
            select(RunRank.started_at, RunRank.duration_s).where(
                RunRank.run_id == end.run_id, RunRank.rank == end.rank
            )
        ).one()
        ended_at = _measured_end(started_at, duration_s) or ended_at
    session.execute(
        update(RunRank)
        .where(RunRank.run_id == end.run_id, RunRank.rank == end.rank)
        .values(status=end.status, ended_at=ended_at, error=end.error)
    )
    return _settle_run(session, end.run_id)


def heartbeat(session: Session, run_id: str, rank: int, *, team_id: int) -> str:
    """Note that a rank's agent is alive; returns the run's status.

    Raises:
        RunNotFound: No such run in this team, or the rank never started.
    """
    _check_rank(session, run_id, rank, team_id)
    now = _clock.utc_now()
    session.execute(
        update(RunRank)
        .where(RunRank.run_id == run_id, RunRank.rank == rank)
        .values(last_seen_at=now)
    )
    session.execute(update(Run).where(Run.id == run_id).values(last_seen_at=now))
    return str(session.scalar(select(Run.status).where(Run.id == run_id)))


def mark_silent_runs(
    session: Session, *, timeout_s: float, now: datetime | None = None
) -> list[str]:
    """Mark ``interrupted`` every running rank with nothing received for ``timeout_s``.

    Returns:
        The ids of the runs that changed, in no particular order.
    """
    now = now or _clock.utc_now()
    cutoff = now - timedelta(seconds=timeout_s)
    silent = session.execute(
        select(
            RunRank.run_id,
            RunRank.rank,
            RunRank.last_seen_at,
            RunRank.started_at,
            RunRank.duration_s,
        ).where(
            RunRank.status == "running",
            or_(
                RunRank.last_seen_at < cutoff,
                RunRank.last_seen_at.is_(None) & (RunRank.started_at < cutoff),
            ),
        )
    ).all()
    for run_id, rank, last_seen_at, started_at, duration_s in silent:
        seen = last_seen_at or started_at
        session.execute(
            update(RunRank)
            .where(RunRank.run_id == run_id, RunRank.rank == rank, RunRank.status == "running")
            .values(
                status="interrupted",
                ended_at=_measured_end(started_at, duration_s) or seen,
                error=(
                    f"the agent went silent: nothing received since {seen:%Y-%m-%d %H:%M:%S} "
                    f"UTC (timeout {timeout_s:g} s)"
                ),
            )
        )
    changed = sorted({run_id for run_id, *_ in silent})
    for run_id in changed:
        _settle_run(session, run_id)
    return changed


def _measured_end(started_at: datetime, duration_s: float | None) -> datetime | None:
    """Where a rank's measurements end, or ``None`` before its first batch."""
    return None if duration_s is None else started_at + timedelta(seconds=duration_s)


def _check_rank(session: Session, run_id: str, rank: int, team_id: int) -> None:
    owner = session.scalar(select(Run.team_id).where(Run.id == run_id))
    if owner is None or owner != team_id:
        raise RunNotFound(f"no run with id {run_id!r}")
    if session.get(RunRank, (run_id, rank)) is None:
        raise RunNotFound(f"run {run_id} has no rank {rank}: its start record was not received")


def _settle_run(session: Session, run_id: str) -> str:
    """Set the run's status from its ranks' once none is running; return the status."""
    ranks = session.execute(
        select(RunRank.status, RunRank.ended_at, RunRank.error, RunRank.rank)
        .where(RunRank.run_id == run_id)
        .order_by(RunRank.rank)
    ).all()
    if any(status == "running" for status, *_ in ranks):
        session.execute(
            update(Run).where(Run.id == run_id).values(status="running", ended_at=None, error=None)
        )
        return "running"
    statuses = {status for status, *_ in ranks}
    status = next(s for s in FINAL_ORDER if s in statuses)
    errors = [
        error if len(ranks) == 1 else f"rank {rank}: {error}"
        for _, _, error, rank in ranks
        if error
    ]
    session.execute(
        update(Run)
        .where(Run.id == run_id)
        .values(
            status=status,
            ended_at=max(ended for _, ended, *_ in ranks if ended is not None),
            error="; ".join(errors) or None,
        )
    )
    return status
