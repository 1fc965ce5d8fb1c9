"""Measurement windows: energy at the window's edges, nesting, and storage with the run."""

import time

import pytest
from sqlalchemy import select

import carbon
from carbon.errors import RunStateError
from carbon.settings import Settings
from carbon.sources.base import Component
from carbon.store import open_store
from carbon.store.models import Window
from carbon.testing import ConstantPowerSource


def test_nested_windows_measure_power_times_their_duration(settings: Settings) -> None:
    sources = [
        ConstantPowerSource(120.0, component=Component.GPU, name="gpu", count=2),
        ConstantPowerSource(30.0, component=Component.CPU, name="cpu", counter=False),
    ]
    with carbon.track(settings=settings, sources=sources, kind="inference") as run:
        with run.measure("serve") as outer:
            run.step(samples=8, tokens=80)
            with run.measure("batch-1") as inner:
                run.step(samples=4)
                time.sleep(0.3)
            time.sleep(0.4)
        run.step(samples=1)
        time.sleep(0.1)

    for window, samples in ((outer, 12), (inner, 4)):
        m = window.result
        assert m.energy_by_component_j["gpu"] == pytest.approx(240.0 * m.duration_s, rel=1e-9)
        assert m.energy_by_component_j["cpu"] == pytest.approx(30.0 * m.duration_s, rel=1e-9)
        assert m.energy_by_component_j["ram"] is None
        assert m.energy_j == pytest.approx(270.0 * m.duration_s, rel=1e-9)
        assert m.method == {"gpu": "constant_test", "cpu": "constant_test_power", "ram": None}
        assert m.samples == samples
    assert outer.tokens == 80
    assert inner.tokens == 0
    assert inner.flops is None
    assert outer.duration_s > inner.duration_s >= 0.3
    assert outer.start_s <= inner.start_s
    assert inner.start_s + inner.duration_s <= outer.start_s + outer.duration_s

    store = open_store(settings.resolved_database_url)
    with store.session() as session:
        stored = {w.name: w for w in session.scalars(select(Window).where(Window.run_id == run.id))}
    assert set(stored) == {"serve", "batch-1"}
    assert stored["serve"].energy_j == pytest.approx(outer.energy_j)
    assert stored["batch-1"].energy_gpu_j == pytest.approx(inner.energy_by_component_j["gpu"])
    assert stored["batch-1"].samples == 4


def test_open_window_has_no_result_and_windows_need_a_running_run(settings: Settings) -> None:
    sources = [ConstantPowerSource(10.0)]
    with carbon.track(settings=settings, sources=sources) as run:
        window = run.measure("w")
        with pytest.raises(RunStateError, match="still open"):
            _ = window.result
        with pytest.raises(ValueError, match="non-empty name"):
            run.measure("")
    with pytest.raises(RunStateError, match="while the run is running"), run.measure("late"):
        pass
