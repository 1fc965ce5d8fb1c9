"""The agent's spool: records waiting for the team server, in a SQLite file on disk.

Every record a run produces (its start, one batch a second, its end) is appended here first,
so a server or network that is away loses nothing. The file is shared by every carbon process
of the user on the machine (WAL mode, a busy timeout), and each record names the process
that owns it (host, pid and the process's start time, so a reused pid is not mistaken for
it). A sender delivers only its own process's records, in id order; records and open runs
of a process that died are adopted by the next one (:meth:`Spool.adopt_orphans`), which
closes such runs as ``interrupted``.

The spool is bounded (``CARBON_SPOOL_MAX_MB``): past the bound, batches are kept without
their per-second columns, so a run's totals stay complete, its warnings say what was lost,
and each such batch carries a gap for every device (``device`` ``None``) from the first
batch kept without samples to its own end. Records the server refused for good move to a
``rejected`` table with the server's reason.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from carbon import _clock, wire
from carbon.remote._spool_file import SpoolFile
from carbon.remote.owner import Owner

log = logging.getLogger(__name__)

RecordKind = Literal["start", "batch", "end"]
Record = wire.RunStart | wire.Batch | wire.RunEnd

BYTES_PER_MB = 1_000_000
"""``CARBON_SPOOL_MAX_MB`` counts decimal megabytes."""
DEFAULT_MAX_BYTES = 512 * BYTES_PER_MB
"""The bound of a spool opened without one: the default of ``CARBON_SPOOL_MAX_MB``."""

_EMPTIED_COLUMNS = (
    "sample_device",
    "sample_offset_s",
    "sample_interval_s",
    "sample_energy_j",
    "sample_utilization",
    "work_offset_s",
    "work_interval_s",
    "work_steps",
    "work_samples",
    "work_tokens",
    "work_flops",
)
_OWNER_IS = "owner_host = ? AND owner_pid = ? AND owner_started = ?"


@dataclass(frozen=True)
class SpoolRecord:
    """A record waiting to be sent: ``body`` is its JSON, exactly as it will be posted."""

    id: int
    run_id: str
    rank: int
    kind: RecordKind
    seq: int | None
    body: bytes


@dataclass(frozen=True)
class OpenRun:
    """A run (one rank of it) whose start was spooled, and whether its end was too."""

    run_id: str
    rank: int
    owner: Owner
    ended: bool


@dataclass(frozen=True)
class RejectedRecord:
    """A record the server refused for good, with the server's reason."""

    id: int
    run_id: str
    rank: int
    kind: RecordKind
    seq: int | None
    body: bytes
    status_code: int | None
    reason: str


@dataclass(frozen=True)
class Adoption:
    """What :meth:`Spool.adopt_orphans` took over from processes that died."""

    records: int
    interrupted: list[tuple[str, int]]
    """Runs (id, rank) left open by a dead process, now closed with an ``interrupted`` end."""


class Spool:
    """An on-disk queue of records, shared by processes and threads.

    Args:
        path: The SQLite file (``settings.spool_path``); its folder is created.
        max_bytes: Bound on the file's used size (default 512 MB, as the setting); past it
            batches lose their per-second columns (starts and ends are always kept).
        owner: The process records are appended for; defaults to this process.
        busy_timeout_s: How long to wait for another process's write to finish.

    Raises:
        StoreError: The file cannot be created or opened.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        owner: Owner | None = None,
        busy_timeout_s: float = 30.0,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.owner = owner or Owner.current()
        self._file = SpoolFile(path, busy_timeout_s)
        self._full_logged: set[tuple[str, int]] = set()
        self._full_since_s: dict[tuple[str, int], float] = {}

    # -- writing ----------------------------------------------------------------------

    def append(self, record: Record) -> int:
        """Append a start, batch or end record for :attr:`owner`; returns its id.

        A start opens the run in the table of open runs, an end marks it ended. A batch that
        would take the file past :attr:`max_bytes` is kept without its per-second columns.

        Raises:
            StoreError: The disk refused the write (names the spool's path).
        """
        with self._file.transaction("store a record") as conn:
            if isinstance(record, wire.RunStart):
                kind, run_id, rank, seq = "start", record.id, record.rank, None
                conn.execute(
                    "INSERT INTO open_run (run_id, rank, owner_host, owner_pid, owner_started) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, rank) DO UPDATE SET "
                    "owner_host = excluded.owner_host, owner_pid = excluded.owner_pid, "
                    "owner_started = excluded.owner_started, ended = 0, full_warning = NULL",
                    (run_id, rank, *self.owner.as_row()),
                )
                body = record.model_dump_json().encode()
            elif isinstance(record, wire.Batch):
                kind, run_id, rank, seq = "batch", record.run_id, record.rank, record.seq
                body = self._bounded_body(conn, record)
            else:
                kind, run_id, rank, seq = "end", record.run_id, record.rank, None
                self._full_since_s.pop((run_id, rank), None)  # the run's last gap ends here
                conn.execute(
                    "UPDATE open_run SET ended = 1 WHERE run_id = ? AND rank = ?", (run_id, rank)
                )
                body = record.model_dump_json().encode()
            return self._insert(conn, kind, run_id, rank, seq, body, self.owner)

    def delete(self, ids: Iterable[int]) -> None:
        """Forget records the server acknowledged; an end also closes its open run."""
        id_list = list(ids)
        with self._file.transaction("delete sent records") as conn:
            for start in range(0, len(id_list), 500):
                chunk = id_list[start : start + 500]
                marks = ",".join("?" * len(chunk))
                self._forget_ended(conn, f"id IN ({marks})", chunk)
                conn.execute(f"DELETE FROM record WHERE id IN ({marks})", chunk)

    def reject(self, record_id: int, reason: str, status_code: int | None = None) -> None:
        """Move a record the server refused for good to the ``rejected`` table."""
        with self._file.transaction("set a refused record aside") as conn:
            conn.execute(
                "INSERT OR REPLACE INTO rejected (id, run_id, rank, kind, seq, body, status_code, "
                "reason, rejected_at) SELECT id, run_id, rank, kind, seq, body, ?, ?, ? "
                "FROM record WHERE id = ?",
                (status_code, reason, time.time(), record_id),
            )
            self._forget_ended(conn, "id = ?", [record_id])
            conn.execute("DELETE FROM record WHERE id = ?", (record_id,))

    def adopt_orphans(self, me: Owner | None = None) -> Adoption:
        """Take over the records and open runs of processes on this host that died.

        Their records move to ``me`` (keeping their ids, so they are sent first); each run
        they left open gets an end record (``interrupted``, naming the process).

        Raises:
            StoreError: The spool could not be read or written.
        """
        me = me or self.owner
        with self._file.locked("read owners") as conn:
            rows = conn.execute(
                "SELECT owner_host, owner_pid, owner_started FROM record "
                "UNION SELECT owner_host, owner_pid, owner_started FROM open_run"
            ).fetchall()
        dead = [
            owner for owner in (Owner(*row) for row in rows) if owner != me and not owner.is_alive()
        ]
        records, interrupted = 0, []
        with self._file.transaction("adopt records of ended processes") as conn:
            for owner in dead:
                still_open = conn.execute(
                    f"SELECT run_id, rank FROM open_run WHERE {_OWNER_IS} AND ended = 0",
                    owner.as_row(),
                ).fetchall()
                for run_id, rank in still_open:
                    end = wire.RunEnd(
                        run_id=run_id,
                        rank=rank,
                        status="interrupted",
                        ended_at=_clock.utc_now(),
                        error=f"the agent process {owner.pid} on {owner.host} ended without "
                        "closing the run",
                    )
                    self._insert(
                        conn, "end", run_id, rank, None, end.model_dump_json().encode(), owner
                    )
                    interrupted.append((str(run_id), int(rank)))
                conn.execute(
                    "UPDATE open_run SET owner_host = ?, owner_pid = ?, owner_started = ?, "
                    f"ended = 1 WHERE {_OWNER_IS}",
                    (*me.as_row(), *owner.as_row()),
                )
                moved = conn.execute(
                    f"UPDATE record SET owner_host = ?, owner_pid = ?, owner_started = ? "
                    f"WHERE {_OWNER_IS}",
                    (*me.as_row(), *owner.as_row()),
                )
                records += moved.rowcount
        return Adoption(records=records, interrupted=interrupted)

    # -- reading ----------------------------------------------------------------------

    def pending(self, owner: Owner | None = None, limit: int = 100) -> list[SpoolRecord]:
        """The oldest records of ``owner`` (default :attr:`owner`), in id order."""
        owner = owner or self.owner
        with self._file.locked("read records") as conn:
            rows = conn.execute(
                f"SELECT id, run_id, rank, kind, seq, body FROM record WHERE {_OWNER_IS} "
                "ORDER BY id LIMIT ?",
                (*owner.as_row(), limit),
            ).fetchall()
        return [SpoolRecord(*row) for row in rows]

    def count(self, owner: Owner | None = None, run_id: str | None = None) -> int:
        """How many records wait, of one owner and/or one run (both ``None``: all)."""
        clauses: list[str] = ["1 = 1"]
        params: list[object] = []
        if owner is not None:
            clauses.append(_OWNER_IS)
            params.extend(owner.as_row())
        if run_id is not None:
            clauses.append("run_id = ?")
            params.append(run_id)
        with self._file.locked("count records") as conn:
            sql = f"SELECT count(*) FROM record WHERE {' AND '.join(clauses)}"
            return int(conn.execute(sql, params).fetchone()[0])

    def open_runs(self, owner: Owner | None = None) -> list[OpenRun]:
        """Runs of ``owner`` (default :attr:`owner`) that are open: started, not ended."""
        owner = owner or self.owner
        with self._file.locked("read open runs") as conn:
            rows = conn.execute(
                f"SELECT run_id, rank FROM open_run WHERE {_OWNER_IS} AND ended = 0 "
                "ORDER BY run_id, rank",
                owner.as_row(),
            ).fetchall()
        return [OpenRun(run_id, rank, owner, ended=False) for run_id, rank in rows]

    def rejected(self, limit: int = 100) -> list[RejectedRecord]:
        """Records the server refused for good, oldest first."""
        with self._file.locked("read refused records") as conn:
            rows = conn.execute(
                "SELECT id, run_id, rank, kind, seq, body, status_code, reason FROM rejected "
                "ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
        return [RejectedRecord(*row) for row in rows]

    def size_bytes(self) -> int:
        """Bytes the spool's pages in use take (freed pages are reused, not counted)."""
        with self._file.locked("measure its size") as conn:
            return self._file.used_bytes(conn)

    def close(self) -> None:
        """Close this process's connection; the file and its records stay."""
        self._file.close()

    # -- helpers ----------------------------------------------------------------------

    def _bounded_body(self, conn: sqlite3.Connection, batch: wire.Batch) -> bytes:
        """The batch's JSON; without per-second columns when it does not fit any more.

        Once a run lost samples, each later batch of it carries the warning too, since the
        server keeps the warnings of a run's latest batch. Each batch kept without samples
        carries the gap they leave, from the first such batch of the span to its own end
        (the store extends the gap it has); a batch that fits again ends the span.
        """
        body = _batch_json(batch)
        key = (batch.run_id, batch.rank)
        row = conn.execute(
            "SELECT full_warning FROM open_run WHERE run_id = ? AND rank = ?", key
        ).fetchone()
        line: str | None = row[0] if row else None
        used_bytes = self._file.used_bytes(conn)
        full = used_bytes + len(body) > self.max_bytes
        if not full:
            self._full_since_s.pop(key, None)
        if not full and line is None:
            return body
        if line is None:
            stripped_from_s = _first_start_s(batch)
            line = (
                f"the agent's spool was full ({self.max_bytes / BYTES_PER_MB:g} MB): per-second "
                f"samples from {stripped_from_s:.1f} s on were not all kept; totals are complete"
            )
            conn.execute(
                "UPDATE open_run SET full_warning = ? WHERE run_id = ? AND rank = ?",
                (line, *key),
            )
        update: dict[str, Any] = {}
        if line not in batch.totals.warnings:
            warnings = [*batch.totals.warnings, line]
            update["totals"] = batch.totals.model_copy(update={"warnings": warnings})
        if full:
            update.update({column: [] for column in _EMPTIED_COLUMNS})
            since_s = self._full_since_s.setdefault(key, _first_start_s(batch))
            gap = wire.Gap(
                start_s=since_s,
                end_s=batch.totals.duration_s,
                reason=(
                    "spool full: per-second samples not kept (the agent's spool reached "
                    f"CARBON_SPOOL_MAX_MB={self.max_bytes / BYTES_PER_MB:g})"
                ),
            )
            update["gaps"] = [*batch.gaps, gap]
            if key not in self._full_logged:
                self._full_logged.add(key)
                log.error(
                    "carbon: the agent's spool at %s holds %.1f MB, its limit "
                    "(CARBON_SPOOL_MAX_MB=%g): run %s keeps its totals, but per-second samples "
                    "from %.1f s on are not kept until the server takes what is queued",
                    self.path,
                    used_bytes / BYTES_PER_MB,
                    self.max_bytes / BYTES_PER_MB,
                    batch.run_id,
                    _first_start_s(batch),
                )
        return _batch_json(batch.model_copy(update=update))

    @staticmethod
    def _insert(
        conn: sqlite3.Connection,
        kind: str,
        run_id: str,
        rank: int,
        seq: int | None,
        body: bytes,
        owner: Owner,
    ) -> int:
        cursor = conn.execute(
            "INSERT INTO record (run_id, rank, kind, seq, body, owner_host, owner_pid, "
            "owner_started, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, rank, kind, seq, body, *owner.as_row(), time.time()),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    @staticmethod
    def _forget_ended(conn: sqlite3.Connection, where: str, params: list[int]) -> None:
        conn.execute(
            "DELETE FROM open_run WHERE ended = 1 AND (run_id, rank) IN "
            f"(SELECT run_id, rank FROM record WHERE kind = 'end' AND {where})",
            params,
        )


def _batch_json(batch: wire.Batch) -> bytes:
    """A batch as it is posted; without ``gaps`` when it has none, so older servers take it."""
    return batch.model_dump_json(exclude=None if batch.gaps else {"gaps"}).encode()


def _first_start_s(batch: wire.Batch) -> float:
    """When the batch's interval starts (offsets are interval ends), seconds.

    Each device's first sample starts at the interval's start, except a device's that spans
    a gap before it (it starts earlier), so the latest of those starts is the interval's;
    without samples, the work row's start.
    """
    firsts: dict[int, float] = {}
    for device, end_s, interval_s in zip(
        batch.sample_device, batch.sample_offset_s, batch.sample_interval_s, strict=True
    ):
        firsts.setdefault(device, end_s - interval_s)
    if firsts:
        return max(0.0, max(firsts.values()))
    if batch.work_offset_s:
        ends = zip(batch.work_offset_s, batch.work_interval_s, strict=True)
        return max(0.0, min(end_s - interval_s for end_s, interval_s in ends))
    return batch.totals.duration_s
