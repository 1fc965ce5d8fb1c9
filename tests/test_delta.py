"""``run.delta()``: energy, CO2e and work since the previous call, adding up to the run."""

import itertools
import math
import threading
import time

import pytest

import carbon
from carbon.accounting.catalog import match_gpu, peak_flops
from carbon.errors import RunStateError
from carbon.settings import Settings
from carbon.sources.base import Component
from carbon.testing import ConstantPowerSource
from carbon.tracking.delta import Delta

H100 = "NVIDIA H100 80GB HBM3"


def _sources() -> list[ConstantPowerSource]:
    return [
        ConstantPowerSource(120.0, component=Component.GPU, name=H100, count=2),
        ConstantPowerSource(30.0, component=Component.CPU, name="test cpu"),
        ConstantPowerSource(5.0, component=Component.RAM, name="test ram", counter=False),
    ]


def test_deltas_are_contiguous_exact_and_add_up_to_the_run(settings: Settings) -> None:
    deltas: list[Delta] = []
    with carbon.track(settings=settings, sources=_sources(), pue=1.2) as run:
        for i in range(4):
            run.step(samples=8, tokens=80, flops=1e12)
            time.sleep(0.15 + 0.1 * i)
            deltas.append(run.delta())
        time.sleep(0.2)
    summary = run.summary()

    assert deltas[0].start_s == 0.0
    for before, after in itertools.pairwise(deltas):
        assert after.start_s == before.end_s
    for d in deltas:
        # Constant power: each delta is exactly power x its duration, component by component.
        assert d.energy_gpu_j == pytest.approx(240.0 * d.duration_s, rel=1e-9)
        assert d.energy_cpu_j == pytest.approx(30.0 * d.duration_s, rel=1e-9)
        assert d.energy_ram_j == pytest.approx(5.0 * d.duration_s, rel=1e-9)
        assert d.energy_j == pytest.approx(275.0 * d.duration_s, rel=1e-9)
        assert (d.steps, d.samples, d.tokens, d.flops) == (1, 8, 80, 1e12)
        assert d.j_per_flop == pytest.approx(d.energy_j / 1e12)
        # CO2e of a delta = energy x intensity x PUE (g/kWh over 3.6 MJ).
        expected_g = d.energy_j / 3.6e6 * summary["intensity_g_per_kwh"] * 1.2
        assert d.co2e_g == pytest.approx(expected_g, rel=1e-12)

    summed_j = math.fsum(d.energy_j or 0.0 for d in deltas)
    assert summed_j == pytest.approx(275.0 * deltas[-1].end_s, rel=1e-9)
    # What the deltas leave out is exactly the tail after the last call.
    tail_j = 275.0 * (summary["duration_s"] - deltas[-1].end_s)
    assert summed_j + tail_j == pytest.approx(summary["energy_j"], rel=1e-9)
    assert sum(d.steps for d in deltas) == summary["steps"]
    assert sum(d.flops or 0.0 for d in deltas) == summary["flops"]
    assert math.fsum(d.co2e_g or 0.0 for d in deltas) == pytest.approx(
        summary["co2e_g"] * deltas[-1].end_s / summary["duration_s"], rel=1e-9
    )


def test_mfu_uses_the_gpus_peak_at_the_runs_precision(settings: Settings) -> None:
    with carbon.track(
        settings=settings, sources=_sources(), compression={"precision": "bf16"}
    ) as run:
        time.sleep(0.1)
        run.step(flops=5e13)
        d = run.delta()
    peak = peak_flops(match_gpu(H100), "bf16")
    assert peak is not None
    assert d.mfu == pytest.approx(5e13 / d.duration_s / (2 * peak), rel=1e-12)


def test_unknown_figures_stay_unknown(settings: Settings) -> None:
    no_region = settings.model_copy(update={"region": None})
    with carbon.track(settings=no_region, sources=[ConstantPowerSource(10.0)]) as run:
        time.sleep(0.05)
        d = run.delta()
        run.step()
        second = run.delta()
    assert d.co2e_g is None
    assert (d.steps, d.samples, d.tokens, d.flops) == (0, None, None, None)
    assert d.j_per_flop is None
    assert d.mfu is None  # no GPU, no FLOPs
    assert d.energy_gpu_j is None
    assert d.energy_cpu_j == pytest.approx(10.0 * d.duration_s, rel=1e-9)
    assert second.steps == 1
    metrics = d.as_metrics()
    assert set(metrics) == {
        "carbon/duration_s", "carbon/energy_j", "carbon/energy_cpu_j", "carbon/steps",
    }  # fmt: skip
    assert metrics["carbon/energy_j"] == d.energy_j
    assert set(second.as_metrics("x.")) == {f"x.{key.split('/')[1]}" for key in metrics}


def test_delta_needs_a_running_run(settings: Settings) -> None:
    tracker = carbon.track(settings=settings, sources=[ConstantPowerSource(10.0)])
    with tracker as run:
        run.delta()
    with pytest.raises(RunStateError, match="needs a running run; this one is completed"):
        run.delta()
    unstarted = carbon.Run(tracker.config, "never")
    with pytest.raises(RunStateError, match="has not started"):
        unstarted.delta()


def test_deltas_from_several_threads_count_every_interval_once(settings: Settings) -> None:
    deltas: list[Delta] = []
    lock = threading.Lock()
    with carbon.track(settings=settings, sources=[ConstantPowerSource(50.0)]) as run:

        def worker() -> None:
            for _ in range(5):
                run.step(samples=1)
                d = run.delta()
                with lock:
                    deltas.append(d)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        last = run.delta()
    ordered = sorted([*deltas, last], key=lambda d: d.start_s)
    for before, after in itertools.pairwise(ordered):
        assert after.start_s == before.end_s
    assert math.fsum(d.energy_j or 0.0 for d in ordered) == pytest.approx(
        50.0 * ordered[-1].end_s, rel=1e-9
    )
    assert sum(d.samples or 0 for d in ordered) == 20
