"""A GPU lost or failing mid-run: the run goes on with the other devices and records the gap.

The simulated GPU raises pynvml's own errors (``NVMLError_GpuIsLost`` from a given time, or
``NVMLError_Unknown`` for a few calls), so the NVML source meets them as on real hardware.
A lost GPU is dropped alone: the other GPUs of its source, and the other sources, are still
read. Its energy up to its last reading is kept exactly (a constant trace integrates to
power x time) and its samples stop there instead of going on at zero. A passing error is
tried again at the next read, and the energy counter's advance over the gap is not lost.
"""

from __future__ import annotations

import time

import pytest

import carbon
from carbon.settings import Settings
from carbon.sources.base import Component
from carbon.sources.nvml import NvmlSource
from carbon.testing import ConstantPowerSource, FailingPowerSource
from carbon.testing.clocks import VirtualClock
from carbon.testing.power_traces import ConstantTrace
from carbon.testing.simulated_gpu import SimulatedGpu, simulated_nvml
from carbon.tracking.ledger import IntervalEnergy
from carbon.tracking.sampler import Sampler

GPU_W = 300.0
TWIN_W = 200.0
CPU_W = 50.0


def _power_gpu(power_w: float, lost_at_s: float | None = None) -> SimulatedGpu:
    """A GPU without energy counter reporting instantaneous power: trapezoids are exact."""
    return SimulatedGpu(
        trace=ConstantTrace(power_w),
        counter_supported=False,
        power_mode="instant",
        lost_at_s=lost_at_s,
    )


def _ignore(_: list[IntervalEnergy]) -> None:
    """Stands in until :func:`_ticks` collects the intervals."""


def _ticks(sampler: Sampler, clock: VirtualClock, count: int) -> list[IntervalEnergy]:
    """Read at the start, tick ``count`` times 0.1 s apart, stop 0.05 s later."""
    closed: list[IntervalEnergy] = []
    sampler.on_interval = closed.extend
    sampler._read_all(clock.now(), edge=True)  # the run's first reading, without the thread
    for _ in range(count):
        clock.advance(0.1)
        _, interval = sampler.tick()
        closed.extend(interval or [])
    clock.advance(0.05)
    sampler.stop()
    return closed


def _samples_of(closed: list[IntervalEnergy], position: int) -> list[IntervalEnergy]:
    return [interval for interval in closed if interval.position == position]


def test_a_lost_gpu_stops_alone_and_keeps_its_energy_up_to_its_last_reading() -> None:
    clock = VirtualClock(start_s=100.0)
    sim = simulated_nvml(
        [_power_gpu(GPU_W, lost_at_s=101.25), _power_gpu(TWIN_W)], clock=clock.now, origin_s=0.0
    )
    sampler = Sampler(
        [NvmlSource.open(nvml=sim), ConstantPowerSource(CPU_W)],
        hz=10,
        on_interval=_ignore,
        clock=clock,
    )
    closed = _ticks(sampler, clock, 30)

    [failure] = sampler.failures
    assert failure.positions == (0,)
    assert "GPU is lost" in failure.message
    [gap] = sampler.ledger.gaps
    assert (gap.position, gap.end_s) == (0, None)
    assert gap.reason.startswith("power source failed: ")
    assert "GPU is lost" in gap.reason
    # The last reading before the loss at 1.25 s was at 1.2 s; the loss was seen at 1.3 s.
    assert gap.start_s == pytest.approx(1.2, abs=1e-9)
    assert failure.at_s == pytest.approx(1.3, abs=1e-9)

    end_s = closed[-1].end_s
    assert end_s == pytest.approx(3.05, abs=1e-9)
    lost_j, twin_j, cpu_j = sampler.ledger.totals_j
    assert lost_j == pytest.approx(GPU_W * gap.start_s, rel=1e-12)
    assert twin_j == pytest.approx(TWIN_W * end_s, rel=1e-12)  # same source, still read
    assert cpu_j == pytest.approx(CPU_W * end_s, rel=1e-12)  # another source, still read
    lost_samples = _samples_of(closed, 0)
    assert lost_samples[-1].end_s == gap.start_s  # no samples at zero after the loss
    assert sum(i.energy_j for i in lost_samples) == pytest.approx(lost_j, rel=1e-12)
    assert _samples_of(closed, 1)[-1].end_s == end_s


def test_a_passing_nvml_error_is_read_again_and_loses_no_energy() -> None:
    clock = VirtualClock(start_s=100.0)
    trace = ConstantTrace(GPU_W)
    flaky = SimulatedGpu(trace=trace, error_at_s=101.25, error_calls=8)
    sim = simulated_nvml([flaky, SimulatedGpu(trace=trace)], clock=clock.now, origin_s=0.0)
    sampler = Sampler([NvmlSource.open(nvml=sim)], hz=10, on_interval=_ignore, clock=clock)
    closed = _ticks(sampler, clock, 30)

    assert sampler.failures == []  # not dropped
    assert sim.errors_raised[0] == 8
    [gap] = sampler.ledger.gaps
    assert gap.position == 0
    assert "NVML error 999" in gap.reason
    assert gap.reason.startswith("no reading: ")
    # Readings from 1.3 s to 2.0 s failed (across the close at 2 s): none from 1.2 s to 2.1 s.
    assert gap.start_s == pytest.approx(1.2, abs=1e-9)
    gap_end_s = gap.end_s
    assert gap_end_s is not None
    assert gap_end_s == pytest.approx(2.1, abs=1e-9)
    flaky_j, twin_j = sampler.ledger.totals_j
    assert flaky_j == twin_j  # the counter's advance over the gap is all there
    samples = _samples_of(closed, 0)
    assert sum(i.energy_j for i in samples) == pytest.approx(flaky_j, rel=1e-12)
    # The sample closed at 2 s ends at the last reading; the next one spans the gap.
    assert any(i.start_s == gap.start_s and i.end_s >= gap_end_s for i in samples)
    assert not [i for i in samples if gap.start_s < i.end_s < gap_end_s]


def test_a_failed_source_records_a_gap_for_each_of_its_devices() -> None:
    clock = VirtualClock(start_s=100.0)
    failing = FailingPowerSource(GPU_W, fail_after_s=0.95, count=2)
    sampler = Sampler(
        [failing, ConstantPowerSource(CPU_W)], hz=10, on_interval=_ignore, clock=clock
    )
    closed = _ticks(sampler, clock, 20)

    gaps = sampler.ledger.gaps
    assert [(g.position, g.end_s) for g in gaps] == [(0, None), (1, None)]
    assert {g.reason for g in gaps} == {"power source failed: SourceError: simulated device lost"}
    assert gaps[0].start_s == pytest.approx(0.9, abs=1e-9)
    first_j, second_j, cpu_j = sampler.ledger.totals_j
    assert first_j == second_j == pytest.approx(GPU_W * 0.9, rel=1e-12)
    assert cpu_j == pytest.approx(CPU_W * closed[-1].end_s, rel=1e-12)
    assert max(i.end_s for i in closed if i.position in (0, 1)) == gaps[0].start_s


def test_a_tracked_run_goes_on_past_a_lost_gpu_and_stores_its_gaps(settings: Settings) -> None:
    """Real time, real sampler thread and store: a GPU lost, one failing once, one fine."""
    sim = simulated_nvml(
        [
            _power_gpu(GPU_W, lost_at_s=0.8),
            SimulatedGpu(trace=ConstantTrace(TWIN_W), error_at_s=1.2),
            SimulatedGpu(trace=ConstantTrace(TWIN_W)),
        ]
    )
    gpus = NvmlSource.open(nvml=sim)
    cpu = ConstantPowerSource(CPU_W, component=Component.CPU)
    with carbon.track(project="p", name="gpu-lost", settings=settings, sources=[gpus, cpu]) as run:
        deadline = time.monotonic() + 30
        while sim.errors_raised[1] == 0 or not gpus.lost:
            assert time.monotonic() < deadline, "the simulated faults never happened"
            run.step(samples=1)
            time.sleep(0.05)
        time.sleep(0.5)  # readings after both faults
        run.step(samples=1)
    summary = run.summary()

    assert summary["status"] == "completed"
    lost, flaky, twin, cpu_device = summary["devices"]
    assert "GPU is lost" in (lost["error"] or "")
    assert flaky["error"] is None
    assert twin["error"] is None
    lost_gap, flaky_gap = summary["gaps"]
    assert (lost_gap["device"], lost_gap["end_s"]) == (0, None)  # until the end
    assert lost_gap["reason"].startswith("power source failed: ")
    assert flaky_gap["device"] == 1
    assert flaky_gap["end_s"] is not None
    assert flaky_gap["end_s"] > flaky_gap["start_s"]
    assert "NVML error 999" in flaky_gap["reason"]

    duration_s = summary["duration_s"]
    assert lost["energy_j"] == pytest.approx(GPU_W * lost_gap["start_s"], rel=1e-9)
    assert cpu_device["energy_j"] == pytest.approx(CPU_W * duration_s, rel=1e-9)
    # The flaky GPU lost nothing to its error: it has what its twin has, read at the same times.
    assert flaky["energy_j"] == pytest.approx(twin["energy_j"], rel=1e-6)
    assert summary["samples"] >= 2
