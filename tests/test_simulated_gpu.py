"""The simulated GPU and its power traces: exact integrals, counter steps, faults."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pynvml
import pytest

from carbon.testing.clocks import VirtualClock
from carbon.testing.power_traces import (
    BurstTrace,
    ConstantTrace,
    CsvTrace,
    PowerTrace,
    SquareWaveTrace,
)
from carbon.testing.simulated_gpu import SimulatedGpu, SimulatedNvml, simulated_nvml


def riemann_j(trace: PowerTrace, t0_s: float, t1_s: float, steps: int = 200_000) -> float:
    """Midpoint-rule integral, independent of the traces' own bookkeeping."""
    dt_s = (t1_s - t0_s) / steps
    return sum(trace.power_w(t0_s + (i + 0.5) * dt_s) for i in range(steps)) * dt_s


# --- traces ------------------------------------------------------------------------------


def test_constant_trace() -> None:
    trace = ConstantTrace(250.0)
    assert trace.power_w(-3.0) == 250.0
    assert trace.energy_j(1.0, 3.5) == pytest.approx(625.0)
    assert isinstance(trace, PowerTrace)
    with pytest.raises(ValueError, match="ends before"):
        trace.energy_j(2.0, 1.0)
    with pytest.raises(ValueError, match="power_w"):
        ConstantTrace(-1.0)


def test_square_wave_by_hand() -> None:
    trace = SquareWaveTrace(100.0, 300.0, period_s=1.0, duty=0.25)
    assert trace.power_w(0.0) == 300.0  # edges are right-continuous
    assert trace.power_w(0.25) == 100.0
    assert trace.energy_j(0.0, 1.0) == pytest.approx(150.0)
    # 0.1-0.25 high (45) + rest of period 0 (75) + period 1 (150) + 2-2.25 high (75) + 35
    assert trace.energy_j(0.1, 2.6) == pytest.approx(380.0)
    assert trace.energy_j(-1.0, 0.0) == pytest.approx(150.0)  # periodic before zero too
    shifted = SquareWaveTrace(100.0, 300.0, period_s=1.0, duty=0.25, phase_s=0.5)
    assert shifted.energy_j(0.5, 0.75) == pytest.approx(75.0)


def test_burst_trace_is_seeded_and_exact() -> None:
    first, again = BurstTrace(seed=3), BurstTrace(seed=3)
    assert first.energy_j(0.0, 5.0) == again.energy_j(0.0, 5.0)
    assert BurstTrace(seed=4).energy_j(0.0, 5.0) != first.energy_j(0.0, 5.0)
    assert first.energy_j(0.3, 4.7) == pytest.approx(riemann_j(first, 0.3, 4.7), rel=1e-4)
    assert first.energy_j(0.0, 2.0) + first.energy_j(2.0, 5.0) == pytest.approx(
        first.energy_j(0.0, 5.0)
    )


def test_burst_lengths_and_levels() -> None:
    trace = BurstTrace(idle_w=80.0, burst_w=600.0, seed=9, start_s=1.0, end_s=11.0)
    trace.energy_j(0.0, 20.0)
    edges = list(zip(trace._times, trace._powers, strict=True))
    bursts = [(t, edges[i + 1][0]) for i, (t, p) in enumerate(edges[:-1]) if p == 600.0]
    assert len(bursts) > 10
    assert all(0.1 - 1e-9 <= end - start <= 0.3 + 1e-9 for start, end in bursts[:-1])
    assert trace.power_w(0.5) == 80.0  # idle before start_s
    assert trace.energy_j(11.0, 20.0) == pytest.approx(80.0 * 9.0)  # and after end_s


def test_csv_trace_linear_and_step(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text("time_s,power_w\n0,100\n1,300\n3,300\n4,0\n", encoding="utf-8")
    linear = CsvTrace(path)
    assert linear.power_w(0.5) == pytest.approx(200.0)
    assert linear.energy_j(0.0, 4.0) == pytest.approx(200.0 + 600.0 + 150.0)
    assert linear.energy_j(0.5, 1.5) == pytest.approx(125.0 + 150.0)
    assert linear.energy_j(-1.0, 0.0) == pytest.approx(100.0)  # held before the first row
    assert linear.energy_j(4.0, 9.0) == 0.0  # and after the last
    step = CsvTrace(path, interpolation="step")
    assert step.power_w(0.99) == 100.0
    assert step.energy_j(0.0, 4.0) == pytest.approx(100.0 + 600.0 + 300.0)
    offset = CsvTrace(path, time_offset_s=10.0)
    assert offset.energy_j(10.0, 14.0) == pytest.approx(950.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("t,p\n0,1\n", "header"),
        ("time_s,power_w\n", "no rows"),
        ("time_s,power_w\n1,5\n0,5\n", "line 3"),
        ("time_s,power_w\n0,abc\n", "line 2"),
    ],
)
def test_csv_trace_rejects_bad_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        CsvTrace(path)


# --- the simulated module ------------------------------------------------------------------


def started(*gpus: SimulatedGpu, clock: VirtualClock) -> SimulatedNvml:
    sim = simulated_nvml(gpus, clock=clock.now, origin_s=0.0)
    sim.nvmlInit()
    return sim


def test_counter_steps_every_update_period() -> None:
    clock = VirtualClock(start_s=0.0)
    sim = started(SimulatedGpu(trace=ConstantTrace(500.0)), clock=clock)
    handle = sim.nvmlDeviceGetHandleByIndex(0)
    start_mj = SimulatedGpu().counter_start_mj
    values = []
    for i in range(30):  # 0.005, 0.015, ... 0.295 s: never on a tick
        clock.advance((i + 0.5) * 0.01 - clock.now())
        values.append(sim.nvmlDeviceGetTotalEnergyConsumption(handle))
    # The value is the exact integral up to the last 0.1 s tick, in whole millijoules.
    for i, value in enumerate(values):
        ticks = i // 10
        assert value == start_mj + math.floor(500.0 * ticks * 0.1 * 1000)
    assert sorted(set(values)) == [start_mj + 50_000 * k for k in range(3)]


def test_counter_phase_and_period() -> None:
    clock = VirtualClock(start_s=1.0)
    gpu = SimulatedGpu(trace=ConstantTrace(100.0), counter_period_s=0.05, counter_phase_s=0.02)
    sim = started(gpu, clock=clock)
    handle = sim.nvmlDeviceGetHandleByIndex(0)
    base = sim.nvmlDeviceGetTotalEnergyConsumption(handle)  # tick at 0.97
    clock.advance(0.019)  # 1.019: still the tick at 0.97
    assert sim.nvmlDeviceGetTotalEnergyConsumption(handle) == base
    clock.advance(0.002)  # 1.021: tick at 1.02
    assert sim.nvmlDeviceGetTotalEnergyConsumption(handle) == base + 5_000


def test_power_readings() -> None:
    clock = VirtualClock(start_s=2.0)
    square = SquareWaveTrace(100.0, 300.0, period_s=1.0, duty=0.25)
    sim = started(
        SimulatedGpu(trace=square),
        SimulatedGpu(trace=square, power_mode="instant"),
        SimulatedGpu(trace=square, power_update_period_s=0.5),
        clock=clock,
    )
    average, instant, stepped = (sim.nvmlDeviceGetHandleByIndex(i) for i in range(3))
    assert sim.nvmlDeviceGetPowerUsage(average) == 150_000  # mean over [1, 2], mW
    assert sim.nvmlDeviceGetPowerUsage(instant) == 300_000
    clock.advance(0.4)  # 2.4: mean over [1.4, 2.4] = (0.25 x 300 + 0.75 x 100)
    assert sim.nvmlDeviceGetPowerUsage(average) == 150_000
    assert sim.nvmlDeviceGetPowerUsage(instant) == 100_000
    assert sim.nvmlDeviceGetPowerUsage(stepped) == 150_000  # last update at 2.0
    clock.advance(0.2)  # 2.6: stepped reading updated at 2.5
    assert sim.nvmlDeviceGetPowerUsage(stepped) == 150_000
    assert sim.nvmlDeviceGetUtilizationRates(average).gpu == round(100 * 80 / 630)


def test_device_facts_and_lifecycle() -> None:
    clock = VirtualClock()
    sim = simulated_nvml([SimulatedGpu(), SimulatedGpu(name="NVIDIA L4")], clock=clock.now)
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        sim.nvmlDeviceGetCount()
    sim.nvmlInit()
    assert sim.nvmlDeviceGetCount() == 2
    assert sim.nvmlSystemGetDriverVersion() == "550.54.15"
    h0, h1 = sim.nvmlDeviceGetHandleByIndex(0), sim.nvmlDeviceGetHandleByIndex(1)
    assert sim.nvmlDeviceGetName(h1) == "NVIDIA L4"
    uuid = sim.nvmlDeviceGetUUID(h0)
    assert uuid.startswith("GPU-")
    assert uuid != sim.nvmlDeviceGetUUID(h1)
    assert sim.nvmlDeviceGetHandleByUUID(uuid) == h0
    assert sim.nvmlDeviceGetEnforcedPowerLimit(h0) == 700_000
    assert sim.nvmlDeviceGetMemoryInfo(h0).total == SimulatedGpu().memory_bytes
    assert sim.nvmlDeviceGetMigMode(h0) == [0, 0]
    assert sim.nvmlDeviceGetArchitecture(h0) == pynvml.NVML_DEVICE_ARCH_HOPPER
    with pytest.raises(pynvml.NVMLError_NotFound):
        sim.nvmlDeviceGetHandleByUUID("GPU-nope")
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        sim.nvmlDeviceGetHandleByIndex(2)
    sim.nvmlShutdown()
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        sim.nvmlShutdown()
    assert sim.calls["nvmlInit"] == 1


def test_faults() -> None:
    clock = VirtualClock(start_s=0.0)
    sim = started(
        SimulatedGpu(trace=ConstantTrace(100.0), counter_frozen_after_s=1.05),
        SimulatedGpu(trace=ConstantTrace(100.0), counter_reset_at_s=1.0),
        SimulatedGpu(lost_at_s=1.0),
        SimulatedGpu(counter_supported=False, power_supported=False, mig_enabled=True),
        clock=clock,
    )
    frozen, reset, lost, bare = (sim.nvmlDeviceGetHandleByIndex(i) for i in range(4))
    clock.advance(2.0)
    assert sim.nvmlDeviceGetTotalEnergyConsumption(frozen) == (
        SimulatedGpu().counter_start_mj + 100_000  # energy up to the tick at 1.0
    )
    assert sim.nvmlDeviceGetTotalEnergyConsumption(reset) == 100_000  # restarted at 1.0
    with pytest.raises(pynvml.NVMLError_GpuIsLost):
        sim.nvmlDeviceGetPowerUsage(lost)
    with pytest.raises(pynvml.NVMLError_NotSupported):
        sim.nvmlDeviceGetTotalEnergyConsumption(bare)
    with pytest.raises(pynvml.NVMLError_NotSupported):
        sim.nvmlDeviceGetPowerUsage(bare)
    assert sim.nvmlDeviceGetMigMode(bare) == [1, 1]


def test_a_passing_error_raises_pynvml_class_for_its_calls_then_answers() -> None:
    clock = VirtualClock(start_s=0.0)
    sim = started(
        SimulatedGpu(trace=ConstantTrace(100.0), error_at_s=1.0, error_calls=2), clock=clock
    )
    handle = sim.nvmlDeviceGetHandleByIndex(0)
    assert sim.nvmlDeviceGetPowerUsage(handle) == 100_000  # before its time: no error
    clock.advance(1.0)
    with pytest.raises(pynvml.NVMLError_Unknown):
        sim.nvmlDeviceGetPowerUsage(handle)
    with pytest.raises(pynvml.NVMLError_Unknown):
        sim.nvmlDeviceGetTotalEnergyConsumption(handle)
    assert sim.nvmlDeviceGetPowerUsage(handle) == 100_000
    assert sim.errors_raised[0] == 2


def test_init_error_and_real_error_classes() -> None:
    sim = simulated_nvml([], init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    with pytest.raises(pynvml.NVMLError_DriverNotLoaded):
        sim.nvmlInit()
    assert sim.NVMLError is pynvml.NVMLError
    assert sim.NVML_DEVICE_MIG_ENABLE == pynvml.NVML_DEVICE_MIG_ENABLE


def test_energy_helper_uses_clock_times() -> None:
    clock = VirtualClock(start_s=10.0)
    sim = simulated_nvml([SimulatedGpu(trace=ConstantTrace(200.0))], clock=clock.now)
    assert sim.origin_s == 10.0
    assert sim.energy_j(0, 11.0, 12.5) == pytest.approx(300.0)


def test_virtual_clock() -> None:
    clock = VirtualClock(start_s=5.0, step_s=0.1, stop_at_s=5.25)
    assert clock() == pytest.approx(5.1)
    assert clock.now() == pytest.approx(5.1)
    assert clock() == pytest.approx(5.2)
    assert not clock.reached_stop.is_set()
    assert clock() == 5.25
    assert clock() == 5.25
    assert clock.reached_stop.is_set()
    jittery = [VirtualClock(step_s=0.1, jitter_s=0.01, seed=1) for _ in range(2)]
    first = [jittery[0]() for _ in range(5)]
    assert first == [jittery[1]() for _ in range(5)]
    assert all(0.1 <= b - a <= 0.11 for a, b in itertools.pairwise(first))
    assert VirtualClock(start_s=1.0).advance(0.5) == 1.5
