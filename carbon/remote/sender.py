"""The background thread that sends a process's spooled records to the team server.

There is one :class:`Sender` per process and spool file
(:func:`carbon.remote.senders.sender_for` keeps them), so records leave in the order they
were spooled. The thread deletes a record only after the
server acknowledged it; while the server or the network is away it backs off exponentially
with jitter (honouring ``Retry-After``) and tries the same record again, so nothing is lost
or reordered. Records the server refuses for good go to the spool's ``rejected`` table.

The thread also takes over records of processes on the machine that died (at start and
every minute; they are older, so they go first) and sends a heartbeat for open runs that
have had nothing acknowledged for a while. At interpreter exit it gets a short last chance
(``CARBON_FLUSH_TIMEOUT_S``) to send what is left; the rest stays on disk for the next start
or ``carbon sync``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, replace

from carbon.errors import StoreError
from carbon.remote.client import Outcome, OutcomeKind, ServerClient
from carbon.remote.owner import Owner
from carbon.remote.spool import Adoption, Spool, SpoolRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SenderTiming:
    """How long the sender waits between things; tests shorten them.

    Attributes:
        initial_backoff_s: Wait after the first failure; it doubles with each failure.
        max_backoff_s: Longest wait between two tries of the same record.
        unauthorized_backoff_s: Wait after the server refused the API key.
        max_retry_after_s: Largest ``Retry-After`` honoured.
        heartbeat_interval_s: A run with nothing acknowledged this long gets a heartbeat.
        adopt_interval_s: How often records of dead processes are looked for.
        batch_records: Records read from the spool at once.
    """

    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    unauthorized_backoff_s: float = 300.0
    max_retry_after_s: float = 300.0
    heartbeat_interval_s: float = 30.0
    adopt_interval_s: float = 60.0
    batch_records: int = 100


@dataclass(frozen=True)
class SenderStats:
    """What a sender did since it started: records sent, refused, taken over, runs closed."""

    sent: int = 0
    rejected: int = 0
    adopted: int = 0
    interrupted: int = 0


class Sender:
    """Sends one process's records from a spool to the server on a daemon thread.

    Args:
        spool: The spool; records of ``spool.owner`` are sent.
        client: The server's client.
        timing: Back-off and interval settings.
        exit_timeout_s: How long the last flush at interpreter exit may take.
    """

    def __init__(
        self,
        spool: Spool,
        client: ServerClient,
        *,
        timing: SenderTiming | None = None,
        exit_timeout_s: float = 10.0,
    ) -> None:
        self.spool = spool
        self.client = client
        self.timing = timing or SenderTiming()
        self.exit_timeout_s = exit_timeout_s
        self.me: Owner = spool.owner
        self._thread = threading.Thread(target=self._loop, name="carbon-sender", daemon=True)
        self._wake = threading.Event()
        self._urgent = threading.Event()
        self._stopping = threading.Event()
        self._changed = threading.Condition()
        self._attempts = 0
        self._retry_at = 0.0
        self._failures = 0
        self._stats = SenderStats()
        self._problem: str | None = None
        self._key_refused_logged = False
        self._last_ack: dict[tuple[str, int], float] = {}

    @property
    def running(self) -> bool:
        """Whether the thread runs and was not asked to stop."""
        return self._thread.is_alive() and not self._stopping.is_set()

    @property
    def last_problem(self) -> str | None:
        """Why the last try failed (``None`` once a record went through)."""
        return self._problem

    def stats(self) -> SenderStats:
        """Counts of what the sender did so far."""
        with self._changed:
            return self._stats

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def wake(self) -> None:
        """New records were spooled: send them (unless the thread is backing off)."""
        self._wake.set()

    def adopt_now(self) -> Adoption:
        """Take over records and open runs of dead processes now, on the caller's thread.

        Raises:
            StoreError: The spool could not be read or written.
        """
        adoption = self.spool.adopt_orphans(self.me)
        with self._changed:
            self._stats = replace(
                self._stats,
                adopted=self._stats.adopted + adoption.records,
                interrupted=self._stats.interrupted + len(adoption.interrupted),
            )
        if adoption.records:
            log.info(
                "carbon: took over %d record(s) of ended carbon processes from %s; closed %d "
                "run(s) they left open as interrupted",
                adoption.records,
                self.spool.path,
                len(adoption.interrupted),
            )
            self._wake.set()
        return adoption

    def flush(self, run_id: str | None = None, timeout_s: float = 10.0) -> int:
        """Wait until this process has no record (of ``run_id``, or at all) left to send.

        The thread is woken and a back-off in progress is cut short once; the wait ends
        early when the next try would come after the timeout anyway.

        Returns:
            How many records remain in the spool (0 when all were acknowledged).

        Raises:
            StoreError: The spool could not be read.
        """
        deadline = time.monotonic() + timeout_s
        with self._changed:
            attempts_before = self._attempts
        self._urgent.set()
        self._wake.set()
        while True:
            remaining = self.spool.count(self.me, run_id)
            now = time.monotonic()
            if remaining == 0 or now >= deadline or not self._thread.is_alive():
                return remaining
            with self._changed:
                if self._attempts > attempts_before and self._retry_at > deadline:
                    return remaining
                self._changed.wait(min(deadline - now, 0.1))

    def close(self, timeout_s: float | None = None) -> int:
        """Send what is left for up to ``timeout_s`` (default: the exit timeout), then stop.

        Returns:
            How many records stay in the spool for later.
        """
        timeout_s = self.exit_timeout_s if timeout_s is None else timeout_s
        try:
            remaining = self.flush(None, timeout_s) if self.running else self.spool.count(self.me)
        except StoreError as exc:
            log.error("carbon: %s", exc)
            remaining = -1
        self._stopping.set()
        self._urgent.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)
        if not self._thread.is_alive():  # else it is inside a request; it dies with the process
            self.client.close()
            self.spool.close()
        return remaining

    # -- the thread -------------------------------------------------------------------

    def _loop(self) -> None:
        next_adopt = 0.0
        next_heartbeat = time.monotonic() + self.timing.heartbeat_interval_s
        while not self._stopping.is_set():
            try:
                now = time.monotonic()
                if now >= next_adopt:
                    next_adopt = now + self.timing.adopt_interval_s
                    self.adopt_now()
                if now >= next_heartbeat:
                    next_heartbeat = now + self.timing.heartbeat_interval_s
                    self._heartbeats()
                self._wake.clear()
                records = self.spool.pending(self.me, self.timing.batch_records)
                if not records:
                    self._notify()
                    if self._stopping.is_set():  # asked to stop while we cleared the wake
                        break
                    wait_s = min(next_adopt, next_heartbeat) - time.monotonic()
                    self._wake.wait(timeout=max(0.0, wait_s))
                    continue
                for record in records:
                    if self._stopping.is_set() or not self._deliver(record):
                        break
            except Exception as exc:  # the disk, or a bug: never let the thread die
                known = isinstance(exc, StoreError)
                problem = str(exc) if known else f"the sender failed: {type(exc).__name__}: {exc}"
                if self._failures == 0:
                    log.error("carbon: %s; trying again", problem, exc_info=not known)
                self._failed(Outcome(OutcomeKind.RETRY), problem=problem)

    def _deliver(self, record: SpoolRecord) -> bool:
        """Send one record; True to go on with the next, False after a failure."""
        try:
            outcome = self.client.send(record)
        except Exception as exc:  # a bug in a transport must not kill the thread
            log.debug("carbon: sending a record raised", exc_info=True)
            outcome = Outcome(OutcomeKind.RETRY, detail=f"{type(exc).__name__}: {exc}")
        if outcome.kind is OutcomeKind.ACKED:
            self.spool.delete([record.id])
            self._last_ack[(record.run_id, record.rank)] = time.monotonic()
            if self._failures:
                log.info("carbon: the server at %s takes records again", self.client.base_url)
            self._failures, self._problem, self._key_refused_logged = 0, None, False
            self._count(sent=1)
            return True
        if outcome.kind is OutcomeKind.REJECTED:
            self.spool.reject(record.id, outcome.detail, outcome.status_code)
            log.error(
                "carbon: the server at %s refused a %s record of run %s (rank %d%s) for good: "
                "%s; it is kept in the rejected table of the spool at %s",
                self.client.base_url,
                record.kind,
                record.run_id,
                record.rank,
                "" if record.seq is None else f", seq {record.seq}",
                outcome.detail,
                self.spool.path,
            )
            self._count(rejected=1)
            return True
        self._failed(outcome)
        return False

    def _failed(self, outcome: Outcome, problem: str | None = None) -> None:
        """Remember why a try failed, say so once, and back off before the next."""
        self._failures += 1
        if problem is not None:  # not the server's doing; the caller said so
            self._problem = problem
            delay_s = self._backoff_s(outcome)
        elif outcome.kind is OutcomeKind.UNAUTHORIZED:
            self._problem = f"the server refused the API key ({outcome.detail})"
            delay_s = self.timing.unauthorized_backoff_s
            if not self._key_refused_logged:
                self._key_refused_logged = True
                log.error(
                    "carbon: the server at %s refused the API key (%s): check CARBON_API_KEY "
                    "(sending runs needs the ingest role); records are kept in the spool at %s",
                    self.client.base_url,
                    outcome.detail,
                    self.spool.path,
                )
        else:
            state = "is unreachable" if outcome.status_code is None else "did not take records"
            self._problem = f"the server at {self.client.base_url} {state} ({outcome.detail})"
            delay_s = self._backoff_s(outcome)
            if self._failures == 1:
                log.warning(
                    "carbon: cannot send to the server yet (%s); records are kept in the spool "
                    "at %s and retried",
                    self._problem,
                    self.spool.path,
                )
        with self._changed:
            self._retry_at = time.monotonic() + delay_s
            self._attempts += 1
            self._changed.notify_all()
        self._urgent.wait(timeout=delay_s)
        self._urgent.clear()

    def _backoff_s(self, outcome: Outcome) -> float:
        """Exponential back-off with jitter, and never less than the server's Retry-After."""
        exponent = min(self._failures - 1, 30)
        delay_s = min(self.timing.max_backoff_s, self.timing.initial_backoff_s * 2.0**exponent)
        delay_s *= random.uniform(0.5, 1.0)
        if outcome.retry_after_s is not None:
            delay_s = max(delay_s, min(outcome.retry_after_s, self.timing.max_retry_after_s))
        return delay_s

    def _heartbeats(self) -> None:
        """Heartbeat each open run of this process that had nothing acknowledged lately."""
        now = time.monotonic()
        for run in self.spool.open_runs(self.me):
            key = (run.run_id, run.rank)
            last = self._last_ack.get(key)
            if last is None or now - last < self.timing.heartbeat_interval_s:
                continue  # its start is not acknowledged yet, or it was heard from lately
            if self.spool.count(self.me, run.run_id):
                continue  # its records are on their way: they say it is alive
            outcome = self.client.heartbeat(run.run_id, run.rank)
            if outcome.kind is OutcomeKind.ACKED:
                self._last_ack[key] = now
            else:
                log.debug("carbon: heartbeat of run %s not taken: %s", run.run_id, outcome)

    def _count(self, *, sent: int = 0, rejected: int = 0) -> None:
        with self._changed:
            self._stats = replace(
                self._stats, sent=self._stats.sent + sent, rejected=self._stats.rejected + rejected
            )
            self._attempts += 1
            self._retry_at = 0.0
            self._changed.notify_all()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()
