"""Each stored interval gets its own energy, also from sources read less often than 10 Hz."""

from __future__ import annotations

import random

import pytest

from carbon.testing import ConstantPowerSource
from carbon.testing.clocks import VirtualClock
from carbon.tracking.ledger import IntervalEnergy
from carbon.tracking.sampler import Sampler


class _SlowModel(ConstantPowerSource):
    """A constant 20 W model that, like the CPU and RAM estimates, wants one read a second."""

    min_read_interval_s = 1.0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_intervals_of_a_slow_source_hold_their_own_energy(seed: int) -> None:
    clock = VirtualClock(start_s=100.0)
    closed: list[IntervalEnergy] = []
    sampler = Sampler([_SlowModel(20.0)], hz=10, on_interval=closed.extend, clock=clock)
    # The thread is not started: the test ticks on the virtual clock itself, with the few
    # milliseconds of lateness or earliness a real scheduler adds, after the first reading.
    sampler._read_all(clock.now(), edge=True)
    rng = random.Random(seed)
    for _ in range(83):
        clock.advance(0.1 + rng.uniform(-0.004, 0.004))
        _, interval = sampler.tick()
        closed.extend(interval or [])
    clock.advance(0.0137)
    sampler.stop()
    assert len(closed) >= 8
    for interval in closed:
        length_s = interval.end_s - interval.start_s
        # 20 W over every interval, the last (short) one included: none is left empty and
        # none takes its neighbour's energy.
        assert interval.energy_j == pytest.approx(20.0 * length_s, rel=1e-9, abs=1e-9)
    assert sum(i.energy_j for i in closed) == pytest.approx(20.0 * closed[-1].end_s, rel=1e-9)
