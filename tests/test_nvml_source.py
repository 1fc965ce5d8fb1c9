"""NvmlSource on simulated GPUs: discovery, CUDA_VISIBLE_DEVICES, MIG, errors, readings."""

from __future__ import annotations

import sys

import pynvml
import pytest

from carbon.errors import SourceError, SourceUnavailable
from carbon.sources._nvml_errors import NvmlGpuLost, NvmlNotSupported, translate
from carbon.sources.base import Component, PowerSource, Provenance
from carbon.sources.nvml import METHOD_COUNTER, METHOD_POWER, NvmlSource, nvml_probe
from carbon.testing.clocks import VirtualClock
from carbon.testing.power_traces import ConstantTrace
from carbon.testing.simulated_gpu import SimulatedGpu, SimulatedNvml, simulated_nvml


def sim_of(
    *gpus: SimulatedGpu, clock: VirtualClock | None = None, **kwargs: object
) -> SimulatedNvml:
    clock = clock or VirtualClock(start_s=100.0)
    return simulated_nvml(gpus, clock=clock.now, origin_s=0.0, **kwargs)  # type: ignore[arg-type]


THREE = (
    SimulatedGpu(uuid="GPU-11111111-aaaa-4000-8000-000000000000"),
    SimulatedGpu(uuid="GPU-11112222-bbbb-4000-8000-000000000000", name="NVIDIA A100-SXM4-80GB"),
    SimulatedGpu(uuid="GPU-33333333-cccc-4000-8000-000000000000", counter_supported=False),
)


def uuids(source: NvmlSource) -> list[str | None]:
    return [device.uuid for device in source.devices]


# --- discovery -------------------------------------------------------------------------------


def test_discovers_every_gpu_with_its_facts() -> None:
    sim = sim_of(*THREE)
    source = NvmlSource.open(nvml=sim)
    assert isinstance(source, PowerSource)
    first, second, third = source.devices
    assert first.component is Component.GPU
    assert (first.name, first.index, first.uuid) == (
        "NVIDIA H100 80GB HBM3",
        0,
        THREE[0].uuid,
    )
    assert first.power_limit_w == 700.0
    assert first.memory_bytes == SimulatedGpu().memory_bytes
    assert (first.method, first.provenance) == (METHOD_COUNTER, Provenance.MEASURED)
    assert second.name == "NVIDIA A100-SXM4-80GB"
    assert (third.method, third.provenance) == (METHOD_POWER, Provenance.INTEGRATED)
    assert "1 s means" in third.detail
    assert source.driver_version == "550.54.15"
    assert sim.init_count == 1
    source.close()
    source.close()
    assert sim.init_count == 0
    assert sim.calls["nvmlShutdown"] == 1
    with pytest.raises(SourceError, match="after close"):
        source.read(1.0)


def test_instantaneous_power_gpu_leaves_integration_to_the_sampler() -> None:
    gpu = SimulatedGpu(trace=ConstantTrace(250.0), counter_supported=False, power_mode="instant")
    source = NvmlSource.open(nvml=sim_of(gpu))
    assert "trapezoids" in source.devices[0].detail
    reading = source.read(100.0)[0]
    assert reading.energy_j is None
    assert reading.power_w == 250.0


def test_ga100_reports_instantaneous_power() -> None:
    gpu = SimulatedGpu(
        name="NVIDIA A100-SXM4-80GB",
        counter_supported=False,
        architecture=pynvml.NVML_DEVICE_ARCH_AMPERE,
    )
    source = NvmlSource.open(nvml=sim_of(gpu))
    assert source.read(100.0)[0].energy_j is None
    forced = NvmlSource.open(nvml=sim_of(gpu), power_averaging="average_1s")
    assert forced.read(100.0)[0].energy_j == 0.0


def test_power_and_utilization_come_twice_a_second() -> None:
    clock = VirtualClock(start_s=100.03)  # readings between counter updates (every 0.1 s)
    sim = sim_of(SimulatedGpu(trace=ConstantTrace(385.0)), clock=clock)
    source = NvmlSource.open(nvml=sim)
    energies = []
    with_power = []
    for i in range(12):
        reading = source.read(clock.now())[0]
        if reading.power_w is not None:
            with_power.append(i)
            assert reading.power_w == pytest.approx(385.0)
            assert reading.utilization == pytest.approx(0.5)
        energies.append(reading.energy_j)
        clock.advance(0.1)
    # Power and utilization (for charts) come twice a second; energy at every reading.
    assert with_power == [0, 5, 10]
    assert energies[0] == 0.0
    assert energies == sorted(energies)
    # Between edges the counter's value at its last update is reported: never ahead of the
    # true 385 W x 1.1 s, and behind it by less than one update (0.1 s).
    assert 385.0 * 1.0 <= energies[-1] <= 385.0 * 1.1


def test_window_shorter_than_a_counter_update_is_not_zero() -> None:
    clock = VirtualClock(start_s=100.02)
    sim = sim_of(SimulatedGpu(trace=ConstantTrace(300.0)), clock=clock)
    source = NvmlSource.open(nvml=sim)
    source.settle(clock, clock.sleep)  # waits for the update at 100.1
    t0 = clock.now()
    start_j = source.read(t0)[0].energy_j
    clock.advance(0.04)  # a 40 ms window: no counter update inside it
    source.settle(clock, clock.sleep)  # waits for the update at 100.2
    t1 = clock.now()
    energy_j = source.read(t1)[0].energy_j
    assert start_j is not None
    assert energy_j is not None
    assert 0.1 - 0.003 <= t1 - t0 <= 0.1 + 0.003  # the window now spans one update
    assert energy_j - start_j == pytest.approx(300.0 * (t1 - t0), rel=0.01)


def test_missing_utilization_is_unknown_not_zero() -> None:
    sim = sim_of(SimulatedGpu())

    def unsupported(handle: object) -> object:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)

    sim.nvmlDeviceGetUtilizationRates = unsupported  # type: ignore[method-assign]
    source = NvmlSource.open(nvml=sim)
    assert source.read(100.0)[0].utilization is None
    assert source.read(100.1)[0].utilization is None


# --- CUDA_VISIBLE_DEVICES ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("visible", "expected"),
    [
        ("1", [1]),
        ("2,0", [2, 0]),
        (" 0 , 1 ", [0, 1]),
        ("GPU-33333333-cccc-4000-8000-000000000000", [2]),
        ("GPU-11112222", [1]),  # a unique prefix, as CUDA accepts
        ("gpu-33333333-CCCC", [2]),
        ("0,0", [0]),
    ],
)
def test_visible_devices_select_by_index_and_uuid(visible: str, expected: list[int]) -> None:
    source = NvmlSource.open(nvml=sim_of(*THREE), visible_devices=visible)
    assert [device.index for device in source.devices] == expected
    assert uuids(source) == [THREE[i].uuid for i in expected]


def test_visible_devices_stop_at_the_first_invalid_entry() -> None:
    source = NvmlSource.open(nvml=sim_of(*THREE), visible_devices="1,7,0")
    assert [device.index for device in source.devices] == [1]
    assert "index 7" in source.notes[0]
    assert "7,0" in source.notes[0]


@pytest.mark.parametrize(
    ("visible", "message"),
    [
        ("", "empty"),
        ("  ", "empty"),
        ("5", "index 5"),
        ("GPU-1111", "more than one"),
        ("GPU-99", "matches no"),
        ("banana", "neither an index nor a GPU UUID"),
    ],
)
def test_visible_devices_that_select_nothing(visible: str, message: str) -> None:
    sim = sim_of(*THREE)
    with pytest.raises(SourceUnavailable, match=message):
        NvmlSource.open(nvml=sim, visible_devices=visible)
    assert sim.init_count == 0  # NVML shut down again


def test_mig_slice_is_refused_with_a_clear_reason() -> None:
    sim = sim_of(*THREE)
    with pytest.raises(SourceUnavailable, match=r"MIG slice .*per-slice energy"):
        NvmlSource.open(nvml=sim, visible_devices="MIG-4f9c1c3e-3a6c-5b9a-9d4f-0a1b2c3d4e5f")
    assert sim.init_count == 0


def test_gpu_in_mig_mode_is_skipped_with_a_note() -> None:
    sim = sim_of(SimulatedGpu(mig_enabled=True), SimulatedGpu())
    source = NvmlSource.open(nvml=sim)
    assert [device.index for device in source.devices] == [1]
    assert "GPU 0" in source.notes[0]
    assert "MIG mode" in source.notes[0]
    with pytest.raises(SourceUnavailable, match="MIG mode"):
        NvmlSource.open(nvml=sim_of(SimulatedGpu(mig_enabled=True)))


def test_gpu_without_counter_or_power_is_skipped() -> None:
    bare = SimulatedGpu(counter_supported=False, power_supported=False)
    with pytest.raises(SourceUnavailable, match="neither an energy counter nor power"):
        NvmlSource.open(nvml=sim_of(bare))


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "library .* not found"),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "driver is not loaded"),
        (pynvml.NVML_ERROR_NO_PERMISSION, "denied"),
        (pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH, "different versions"),
        (pynvml.NVML_ERROR_UNKNOWN, "NVML error 999"),
    ],
)
def test_start_failures_mean_unavailable(code: int, reason: str) -> None:
    sim = sim_of(SimulatedGpu(), init_error=code)
    with pytest.raises(SourceUnavailable, match=reason):
        NvmlSource.open(nvml=sim)
    assert nvml_probe(nvml=sim_of(SimulatedGpu(), init_error=code))[0] is False


def test_no_gpu_means_unavailable() -> None:
    with pytest.raises(SourceUnavailable, match="sees no GPU"):
        NvmlSource.open(nvml=sim_of())


@pytest.mark.parametrize(
    ("code", "opening", "expected"),
    [
        (pynvml.NVML_ERROR_GPU_IS_LOST, False, NvmlGpuLost),
        (pynvml.NVML_ERROR_GPU_IS_LOST, True, SourceUnavailable),
        (pynvml.NVML_ERROR_UNKNOWN, False, SourceError),
        (pynvml.NVML_ERROR_NOT_SUPPORTED, False, NvmlNotSupported),
        (pynvml.NVML_ERROR_FUNCTION_NOT_FOUND, True, NvmlNotSupported),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, False, SourceUnavailable),
    ],
)
def test_error_translation(code: int, opening: bool, expected: type[SourceError]) -> None:
    error = translate(pynvml.NVMLError(code), "reading GPU 0", opening=opening)
    assert type(error) is expected
    assert str(error).startswith("reading GPU 0")


def test_lost_gpu_is_dropped_alone_and_the_others_are_still_read() -> None:
    clock = VirtualClock(start_s=100.0)
    trace = ConstantTrace(200.0)
    sim = sim_of(
        SimulatedGpu(trace=trace, lost_at_s=100.25),
        SimulatedGpu(trace=trace, counter_supported=False, power_mode="instant"),
        clock=clock,
    )
    source = NvmlSource.open(nvml=sim)
    source.read(clock.now())
    assert source.unread == source.lost == {}
    clock.advance(0.3)
    lost, other = source.read(clock.now())
    assert lost.energy_j is None
    assert lost.power_w is None
    assert other.power_w == 200.0
    assert list(source.lost) == list(source.unread) == [0]
    assert "GPU is lost" in source.lost[0]
    calls = sim.calls["nvmlDeviceGetTotalEnergyConsumption"]
    clock.advance(0.3)
    source.read(clock.now())
    assert list(source.unread) == [0]
    assert sim.calls["nvmlDeviceGetTotalEnergyConsumption"] == calls  # not asked again


def test_passing_nvml_error_is_tried_again_and_loses_no_counter_energy() -> None:
    clock = VirtualClock(start_s=100.0)
    trace = ConstantTrace(300.0)
    flaky, twin = SimulatedGpu(trace=trace, error_at_s=100.35), SimulatedGpu(trace=trace)
    source = NvmlSource.open(nvml=sim_of(flaky, twin, clock=clock))
    source.read(clock.now())
    clock.advance(0.4)
    failed, read = source.read(clock.now())
    assert failed.energy_j is None
    assert read.energy_j is not None
    assert "NVML error 999" in source.unread[0]
    assert source.lost == {}
    clock.advance(0.6)
    again, twin_reading = source.read(clock.now())
    assert source.unread == {}
    # The counter kept counting through the error: the GPU has what its twin has.
    assert again.energy_j == twin_reading.energy_j == 285.0  # 300 W x 0.95 s: the last step


def test_read_after_close_raises_source_error() -> None:
    source = NvmlSource.open(nvml=sim_of(SimulatedGpu()))
    source.close()
    with pytest.raises(SourceError, match="after close"):
        source.read(0.0)


def test_nvml_not_installed_means_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml now raises ImportError
    with pytest.raises(SourceUnavailable, match="nvidia-ml-py"):
        NvmlSource.open()
    available, detail = nvml_probe()
    assert not available
    assert "not installed" in detail


def test_real_pynvml_without_a_driver_is_unavailable() -> None:
    try:
        NvmlSource.open().close()
    except SourceUnavailable:
        pass
    else:
        pytest.skip("this machine has a working NVIDIA driver")
    with pytest.raises(SourceUnavailable, match=r"(NVML|driver).*\(.+\)") as caught:
        NvmlSource.open()
    print(f"\nreal pynvml here: {caught.value}")


# --- counter anomalies -----------------------------------------------------------------------


def read_until(source: NvmlSource, clock: VirtualClock, end_s: float) -> list[float]:
    energies = []
    while clock.now() < end_s:
        energy = source.read(clock.now())[0].energy_j
        assert energy is not None
        energies.append(energy)
        clock.advance(0.1)
    return energies


def test_readings_on_the_update_times_stay_within_one_update() -> None:
    # Readings exactly on the updates see them or not as rounding falls: the worst case for
    # placing the updates, still within the energy of one update period.
    clock = VirtualClock(start_s=100.0)
    sim = sim_of(SimulatedGpu(trace=ConstantTrace(385.0)), clock=clock)
    source = NvmlSource.open(nvml=sim)
    energies = read_until(source, clock, 101.15)
    # Behind by at most one update period, plus half a period for where the first reading
    # falls between the updates around it.
    assert 385.0 * (1.1 - 0.15) <= energies[-1] <= 385.0 * (1.1 + 0.05)


def test_counter_reset_is_rebased_and_noted() -> None:
    clock = VirtualClock(start_s=100.03)
    gpu = SimulatedGpu(trace=ConstantTrace(400.0), counter_reset_at_s=100.55)
    source = NvmlSource.open(nvml=sim_of(gpu, clock=clock))
    energies = read_until(source, clock, 101.48)
    assert energies == sorted(energies)
    assert abs(energies[-1] - 400.0 * 1.4) <= 400.0 * 0.1  # within one update period
    assert any("went back" in note for note in source.notes)


def test_counter_jump_is_ignored_and_noted() -> None:
    clock = VirtualClock(start_s=100.03)
    sim = sim_of(SimulatedGpu(trace=ConstantTrace(400.0)), clock=clock)
    source = NvmlSource.open(nvml=sim)
    read_until(source, clock, 100.48)
    real = sim.nvmlDeviceGetTotalEnergyConsumption
    sim.nvmlDeviceGetTotalEnergyConsumption = lambda h: real(h) + 10**12  # type: ignore[method-assign]
    energies = read_until(source, clock, 101.48)
    assert abs(energies[-1] - 400.0 * 1.4) <= 400.0 * 0.1  # within one update period
    assert any("jumped" in note for note in source.notes)


def test_frozen_counter_falls_back_to_power_and_is_noted() -> None:
    clock = VirtualClock(start_s=100.03)
    gpu = SimulatedGpu(trace=ConstantTrace(400.0), counter_frozen_after_s=100.3)
    source = NvmlSource.open(nvml=sim_of(gpu, clock=clock))
    energies = read_until(source, clock, 102.98)
    assert energies == sorted(energies)
    assert energies[-1] == pytest.approx(400.0 * 2.9, rel=0.01)
    assert any("frozen counter" in note for note in source.notes)


# --- probe -------------------------------------------------------------------------------------


def test_probe_describes_driver_devices_counter_and_mig() -> None:
    sim = sim_of(
        SimulatedGpu(), SimulatedGpu(counter_supported=False), SimulatedGpu(mig_enabled=True)
    )
    available, detail = nvml_probe(nvml=sim)
    assert available
    assert "driver 550.54.15" in detail
    assert "2 GPU(s)" in detail
    assert "0: NVIDIA H100 80GB HBM3 (energy counter)" in detail
    assert "1: NVIDIA H100 80GB HBM3 (no energy counter" in detail
    assert "GPU 2" in detail
    assert "MIG mode" in detail
    assert sim.init_count == 0
