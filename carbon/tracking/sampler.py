"""The sampler: a background thread that reads every power source at a fixed rate.

Each tick reads the sources into the :class:`~carbon.tracking.ledger.Ledger`; about once a
second it closes the ledger's interval and hands the per-device energy to a callback (the
run, which turns it into a batch for the sink). A source that fails is reported once and
read no more; the others go on. The first and the last readings are taken by the caller, at
the window's edges, so the measured window is exactly the run.

A source may also say that some of its devices could not be read while the others were
(the NVML source does, GPU by GPU): after each read, its ``unread`` mapping (a device's
index in ``devices`` -> why) names the devices whose readings are placeholders, and its
``lost`` mapping those that will not come back. An unread device is paused in the ledger,
which records the gap; it resumes when it is read again. A lost device is also reported as
failed, like a failed source. Either way the other devices go on, and energy measured
before is kept.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from carbon.sources.base import DeviceInfo, PowerSource
from carbon.tracking.ledger import IntervalEnergy, Ledger

log = logging.getLogger(__name__)

PERSIST_INTERVAL_S = 1.0
"""Length of a stored sample: one per device per second, whatever the reading rate."""


@dataclass(frozen=True, slots=True)
class SourceFailure:
    """A source that stopped working during a run.

    Attributes:
        positions: Positions of the source's devices in the run.
        at_s: When it failed, seconds since the run started.
        message: What went wrong.
    """

    positions: tuple[int, ...]
    at_s: float
    message: str


class Sampler:
    """Reads sources on a schedule and reports closed intervals.

    Args:
        sources: The run's power sources; their devices take consecutive positions.
        hz: Readings per second.
        on_interval: Called from the sampler thread with each closed interval's energy.
        clock: Monotonic clock (replaceable in tests).
    """

    def __init__(
        self,
        sources: Sequence[PowerSource],
        *,
        hz: float,
        on_interval: Callable[[list[IntervalEnergy]], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sources = list(sources)
        self.period_s = 1.0 / hz
        self.on_interval = on_interval
        self.clock = clock
        self.failures: list[SourceFailure] = []
        starts, position = [], 0
        for source in self.sources:
            starts.append(position)
            position += len(source.devices)
        self._starts = starts
        self._active = [True] * len(self.sources)
        self._min_interval_s = [
            float(getattr(source, "min_read_interval_s", 0.0)) for source in self.sources
        ]
        self._last_read_s = [-math.inf] * len(self.sources)
        self._lost: set[int] = set()
        self._gapped: set[int] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.t0 = clock()
        self.ledger = Ledger(self.t0, position)

    def _settle(self) -> None:
        """Let sources that can (GPU energy counters) wait for a fresh value at an edge."""
        sleep = getattr(self.clock, "sleep", time.sleep)
        for i, source in enumerate(self.sources):
            settle = getattr(source, "settle", None)
            if settle is None or not self._active[i]:
                continue
            try:
                settle(self.clock, sleep)
            except Exception as exc:  # a failing source must not stop the run
                self._fail(i, self.clock(), exc)

    def start(self) -> None:
        """Take the first reading now (the window's start) and start the thread."""
        self._settle()
        self.t0 = self.clock()
        self.ledger = Ledger(self.t0, self.ledger.device_count)
        self._read_all(self.t0, edge=True)
        self._thread = threading.Thread(target=self._loop, name="carbon-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> float:
        """Stop the thread, take the last reading and close the last interval.

        Returns:
            The window's end on the monotonic clock.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self._settle()
            end = self.clock()
            self._read_all(end, edge=True)
            closed = self.ledger.close_interval(end)
        self.on_interval(closed)
        return end

    def read_now(self) -> tuple[float, list[float]]:
        """Read every source now, from any thread, for the edge of a measurement window.

        Returns:
            Seconds since the run started, and each device's energy since then.
        """
        with self._lock:
            self._settle()
            now = self.clock()
            self._read_all(now, edge=True)
            return now - self.t0, self.ledger.cumulative_j()

    def _loop(self) -> None:
        next_tick = self.t0 + self.period_s
        while not self._stop.wait(max(0.0, next_tick - self.clock())):
            now, closed = self.tick()
            if closed is not None:
                try:
                    self.on_interval(closed)
                except Exception:  # the thread must survive to measure the rest of the run
                    log.exception("carbon: could not record an interval")
            next_tick += self.period_s
            if next_tick < now:  # fell behind (suspended, overloaded): skip missed ticks
                next_tick = now + self.period_s

    def tick(self) -> tuple[float, list[IntervalEnergy] | None]:
        """Take one scheduled reading; close the interval when one is due.

        Returns:
            The time of the reading (monotonic seconds), and the closed interval's energy
            per device, or ``None`` when no interval was due.
        """
        with self._lock:
            now = self.clock()
            due = now - self.t0 - self.ledger.open_since_s >= PERSIST_INTERVAL_S - self.period_s / 2
            # Closing an interval reads every source, also those read less often (the CPU
            # and RAM models): otherwise their energy since their last read would land in
            # the next interval, and the last, short one would get up to a second of it (a
            # 7 ms interval read as 2.7 kW).
            self._read_all(now, edge=due)
            return now, (self.ledger.close_interval(now) if due else None)

    def _read_all(self, now: float, *, edge: bool = False) -> None:
        """Read the sources; between edges, skip those read less than their interval ago.

        A source may declare ``min_read_interval_s`` (a model evaluated from ``/proc``
        needs no 10 Hz); its cumulative energy simply advances at its next read. Edges of
        the run, of windows and of stored intervals read every source.
        """
        for i, source in enumerate(self.sources):
            if not self._active[i]:
                continue
            if not edge and now - self._last_read_s[i] < self._min_interval_s[i]:
                continue
            self._last_read_s[i] = now
            try:
                readings = source.read(now)
                if len(readings) != len(source.devices):
                    raise ValueError(
                        f"returned {len(readings)} readings for {len(source.devices)} devices"
                    )
                self._note_unread(i, now)
                self.ledger.observe(self._starts[i], readings, now)
            except Exception as exc:  # a failing source must not stop the run
                self._fail(i, now, exc)

    def _note_unread(self, index: int, now: float) -> None:
        """Pause the source's devices it could not read this time, resume those it read."""
        source = self.sources[index]
        unread, lost = _mapping(source, "unread"), _mapping(source, "lost")
        for offset, device in enumerate(source.devices):
            position = self._starts[index] + offset
            reason = unread.get(offset)
            if reason is None:
                if self.ledger.is_paused(position):
                    self.ledger.resume(position, now)
                    log.info("carbon: %s is read again at %.1f s", _label(device), now - self.t0)
                continue
            if offset in lost:
                if position not in self._lost:
                    self._lost.add(position)
                    self.ledger.pause(position, now, f"power source failed: {reason}")
                    self.failures.append(SourceFailure((position,), now - self.t0, reason))
                    log.warning(
                        "carbon: %s failed at %.1f s and is no longer read: %s; energy measured "
                        "before that is kept",
                        _label(device),
                        now - self.t0,
                        reason,
                    )
            elif self.ledger.pause(position, now, f"no reading: {reason}"):
                # Warn of a device's first gap; a flapping one would flood the log.
                level = logging.INFO if position in self._gapped else logging.WARNING
                self._gapped.add(position)
                log.log(
                    level,
                    "carbon: %s could not be read at %.1f s (%s); trying again, the gap is "
                    "recorded",
                    _label(device),
                    now - self.t0,
                    reason,
                )

    def _fail(self, index: int, now: float, exc: Exception) -> None:
        self._active[index] = False
        source = self.sources[index]
        positions = tuple(range(self._starts[index], self._starts[index] + len(source.devices)))
        names = ", ".join(device.name for device in source.devices)
        message = f"{type(exc).__name__}: {exc}"
        live = tuple(position for position in positions if position not in self._lost)
        for position in live:
            self.ledger.pause(position, now, f"power source failed: {message}")
        self._lost.update(live)
        if live:
            self.failures.append(SourceFailure(live, now - self.t0, message))
        log.warning(
            "carbon: power source for %s failed at %.1f s and is no longer read: %s; "
            "energy measured before that is kept",
            names,
            now - self.t0,
            message,
        )
        try:
            source.close()
        except Exception:  # closing a broken source may fail too; nothing more to do
            log.debug("closing the failed source raised", exc_info=True)


def _mapping(source: object, name: str) -> Mapping[int, str]:
    """A source's optional mapping of device indices to reasons (``unread``, ``lost``)."""
    value = getattr(source, name, None)
    return value if isinstance(value, Mapping) else {}


def _label(device: DeviceInfo) -> str:
    """A device for log lines: ``gpu 1 (NVIDIA H100 80GB HBM3)``."""
    index = "" if device.index is None else f" {device.index}"
    return f"{device.component}{index} ({device.name})"
