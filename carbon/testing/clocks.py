"""Clocks for tests: time that moves only when the code under test looks at it.

A sampler reads its sources on a clock; a simulated device answers on a clock. Sharing one
:class:`VirtualClock` between them makes a whole run deterministic: the readings no longer
depend on how busy the machine is.
"""

from __future__ import annotations

import random
import threading

__all__ = ["VirtualClock"]


class VirtualClock:
    """A deterministic clock: each call moves time forward by ``step_s`` (plus jitter).

    Give the call itself to a sampler (``Sampler(..., clock=vclock)``) and :meth:`now` to the
    simulation (``simulated_nvml(..., clock=vclock.now)``): the simulated GPU then answers
    exactly at the time the sampler passes to ``read``, and a run's readings no longer depend
    on how busy the machine is. Once time reaches ``stop_at_s`` it stays there and
    :attr:`reached_stop` is set, so a test can wait for it and stop the sampler.

    Args:
        start_s: The first time.
        step_s: Advance per call.
        jitter_s: Extra advance per call, uniform in ``[0, jitter_s]`` (seeded).
        seed: Seed of the jitter.
        stop_at_s: Time at which the clock stops, if any.
    """

    def __init__(
        self,
        start_s: float = 1000.0,
        *,
        step_s: float = 0.0,
        jitter_s: float = 0.0,
        seed: int = 0,
        stop_at_s: float | None = None,
    ) -> None:
        self._now_s = start_s
        self.step_s, self.jitter_s, self.stop_at_s = step_s, jitter_s, stop_at_s
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.reached_stop = threading.Event()

    def __call__(self) -> float:
        """Advance by one step and return the new time."""
        with self._lock:
            step_s = self.step_s + (self._rng.uniform(0.0, self.jitter_s) if self.jitter_s else 0)
            return self._set(self._now_s + step_s)

    def now(self) -> float:
        """The current time, without advancing."""
        return self._now_s

    def advance(self, dt_s: float) -> float:
        """Move forward by ``dt_s`` and return the new time."""
        with self._lock:
            return self._set(self._now_s + dt_s)

    def sleep(self, dt_s: float) -> None:
        """Sleep on this clock: time moves on by ``dt_s`` at once."""
        self.advance(dt_s)

    def _set(self, t_s: float) -> float:
        if self.stop_at_s is not None and t_s >= self.stop_at_s:
            t_s = max(self._now_s, self.stop_at_s)
            self.reached_stop.set()
        self._now_s = t_s
        return t_s
