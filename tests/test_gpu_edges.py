"""Window edges on the NVML energy counter: the sampler waits for the counter's next step.

The counter advances about every 100 ms, so a reading taken between two steps does not know
the energy drawn since the last one. At every edge (a run's start and end, and
``run.measure`` windows) the sampler lets the source wait for the next step, polling every
2 ms, and reads right after it. The energy of the window is then exact to within the power
times the poll interval, however bursty the load at the edges. Time here is a
:class:`VirtualClock` shared by the sampler and the simulated GPUs, moved by the test, so
every figure is repeatable.
"""

from __future__ import annotations

import pytest

from carbon.sources.nvml import NvmlSource
from carbon.testing.clocks import VirtualClock
from carbon.testing.power_traces import BurstTrace
from carbon.testing.simulated_gpu import SimulatedGpu, simulated_nvml
from carbon.tracking.sampler import Sampler

START_S = 100.0


def _window(duration_s: float, offset_s: float, seed: int, *, counter: bool = True) -> list[float]:
    """Relative error per GPU of one window's energy against the trace's exact integral."""
    clock = VirtualClock(START_S + offset_s)
    traces = [BurstTrace(seed=seed), BurstTrace(seed=seed + 100, idle_w=150.0, burst_w=700.0)]
    sim = simulated_nvml(
        [
            SimulatedGpu(trace=trace, counter_phase_s=0.037, counter_supported=counter)
            for trace in traces
        ],
        clock=clock.now,
        origin_s=0.0,
    )
    source = NvmlSource.open(nvml=sim)
    # A rate so low that the sampler thread stays asleep: the test takes the 10 Hz
    # readings itself, on the virtual clock, so every reading time is exact.
    sampler = Sampler([source], hz=0.01, on_interval=lambda _: None, clock=clock)
    sampler.start()
    t0 = sampler.t0
    while clock.now() < t0 + duration_s - 0.1:
        clock.advance(0.1)
        with sampler._lock:
            sampler._read_all(clock.now())
    end = sampler.stop()
    source.close()
    totals = sampler.ledger.totals_j
    return [(totals[i] - sim.energy_j(i, t0, end)) / sim.energy_j(i, t0, end) for i in range(2)]


@pytest.mark.parametrize("offset_s", [0.0, 0.013, 0.029, 0.051, 0.077, 0.093, 0.311, 0.58])
def test_run_totals_on_bursty_power_within_half_a_percent(offset_s: float) -> None:
    errors = _window(3.0, offset_s, seed=7)
    print(f"offset {offset_s:.3f} s: errors {[f'{e:+.4%}' for e in errors]}")
    assert all(abs(error) < 0.005 for error in errors)


@pytest.mark.parametrize(("duration_s", "offset_s"), [(0.5, 0.021), (0.5, 0.064), (0.8, 0.35)])
def test_windows_of_half_a_second_within_half_a_percent(duration_s: float, offset_s: float) -> None:
    errors = _window(duration_s, offset_s, seed=3)
    print(f"{duration_s} s window at {offset_s:.3f} s: errors {[f'{e:+.4%}' for e in errors]}")
    assert all(abs(error) < 0.005 for error in errors)


@pytest.mark.parametrize("offset_s", [0.0, 0.043, 0.37])
def test_power_means_end_on_a_whole_second_and_are_exact(offset_s: float) -> None:
    # No energy counter; readings are 1-second means (as Hopper reports power). The run ends
    # on a whole second after its first reading, over which the reconstruction is exact.
    errors = _window(3.3, offset_s, seed=11, counter=False)
    print(f"power path, offset {offset_s:.3f} s: errors {[f'{e:+.4%}' for e in errors]}")
    assert all(abs(error) < 0.005 for error in errors)
