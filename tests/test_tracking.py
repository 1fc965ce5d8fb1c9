"""The tracking core against a real store, with power sources of exactly known energy."""

import math
import time

import pytest
from sqlalchemy import func, select

import carbon
from carbon.settings import Settings
from carbon.sources.base import Component
from carbon.store import open_store
from carbon.store.models import Device, Run, Sample, Work
from carbon.store.queries import sample_energy_by_device
from carbon.testing import ConstantPowerSource, FailingPowerSource

SUMMARY_FIELDS = {
    "id", "project", "name", "kind", "status", "started_at", "ended_at", "duration_s",
    "energy_j", "energy_by_component_j", "energy_method", "samples", "tokens", "flops",
    "flops_method", "j_per_flop", "mfu", "region", "intensity_g_per_kwh", "intensity_source",
    "pue", "co2e_g", "hardware", "compression", "metrics", "tags",
}  # fmt: skip


def _sources() -> list[ConstantPowerSource]:
    return [
        ConstantPowerSource(45.0, component=Component.CPU, name="test cpu"),
        ConstantPowerSource(7.5, component=Component.RAM, name="test ram", counter=False),
    ]


def test_energy_equals_power_times_duration_and_samples_sum_to_total(settings: Settings) -> None:
    with carbon.track(
        project="digits",
        name="mlp-fp32",
        kind="training",
        compression={"precision": "fp32"},
        tags={"team": "vision", "seed": 3},
        settings=settings,
        sources=_sources(),
    ) as run:
        deadline = time.monotonic() + 2.3
        while time.monotonic() < deadline:
            run.step(samples=32, tokens=100)
            time.sleep(0.01)
        run.log_metrics(accuracy=0.97)
    summary = run.summary()

    duration_s = summary["duration_s"]
    assert 2.3 <= duration_s < 3.0
    assert summary["energy_by_component_j"]["cpu"] == pytest.approx(45.0 * duration_s, rel=0.01)
    assert summary["energy_by_component_j"]["ram"] == pytest.approx(7.5 * duration_s, rel=0.01)
    assert summary["energy_by_component_j"]["gpu"] is None
    assert summary["energy_j"] == pytest.approx(52.5 * duration_s, rel=0.01)
    assert summary["energy_method"] == {
        "gpu": None,
        "cpu": "constant_test",
        "ram": "constant_test_power",
    }

    store = open_store(settings.resolved_database_url)
    with store.session() as session:
        devices = {d.component: d for d in session.scalars(select(Device))}
        by_device = sample_energy_by_device(session, run.id)
        n_samples = session.scalar(select(func.count()).select_from(Sample))
        work = session.execute(
            select(func.sum(Work.steps), func.sum(Work.samples), func.sum(Work.tokens))
        ).one()
    # Samples carry each interval's energy, so they add up to the stored totals exactly.
    for device in devices.values():
        assert by_device[device.id] == pytest.approx(device.energy_j, rel=1e-12)
    assert sum(by_device.values()) == pytest.approx(summary["energy_j"], rel=1e-12)
    # One sample per device per second, the last one partial.
    assert n_samples == 2 * math.ceil(duration_s)
    assert tuple(work) == (summary["steps"], summary["samples"], summary["tokens"])
    assert summary["samples"] == 32 * summary["steps"]

    assert set(summary) >= SUMMARY_FIELDS
    assert summary["status"] == "completed"
    assert summary["project"] == "digits"
    assert summary["name"] == "mlp-fp32"
    assert summary["compression"] == {"precision": "fp32"}
    assert summary["tags"] == {"team": "vision", "seed": "3"}
    assert summary["metrics"] == {"accuracy": 0.97}
    assert summary["flops"] is None
    assert summary["j_per_flop"] is None
    assert summary["mfu"] is None


def test_co2e_is_energy_times_pue_times_intensity(settings: Settings) -> None:
    with carbon.track(settings=settings, sources=_sources(), pue=1.2) as run:
        time.sleep(0.3)
    s = run.summary()
    assert s["region"] == "FRA"
    assert s["pue"] == 1.2
    assert s["intensity_g_per_kwh"] > 0
    assert "codecarbon" in s["intensity_source"].lower()
    assert s["co2e_g"] == pytest.approx(s["energy_j"] / 3.6e6 * 1.2 * s["intensity_g_per_kwh"])


def test_reported_flops_give_joules_per_flop(settings: Settings) -> None:
    with carbon.track(settings=settings, sources=_sources()) as run:
        for _ in range(10):
            run.step(samples=1, flops=2.5e9)
        time.sleep(0.2)
    s = run.summary()
    assert s["flops"] == 2.5e10
    assert s["flops_method"] == "reported"
    assert s["j_per_flop"] == pytest.approx(s["energy_j"] / 2.5e10)


def test_flops_say_how_they_were_obtained_and_the_first_method_stays(
    settings: Settings,
) -> None:
    with carbon.track(settings=settings, sources=_sources()) as run:
        run.step(samples=1, flops_method="ignored")  # no FLOPs: no method either
        run.step(flops=3e9, flops_method="trainer_estimate")
        run.step(flops=1e9)
        run.step(flops=2e9, flops_method="other")
        with pytest.raises(ValueError, match="flops_method must be 1 to 32 characters"):
            run.step(flops=5e9, flops_method="x" * 33)
    s = run.summary()
    assert s["flops"] == 6e9  # the refused step counted nothing
    assert s["steps"] == 4
    assert s["flops_method"] == "trainer_estimate"


def test_exception_ends_run_as_failed_and_keeps_energy(settings: Settings) -> None:
    runs = []

    def train() -> None:
        with carbon.track(settings=settings, sources=_sources()) as run:
            runs.append(run)
            run.step(samples=4)
            time.sleep(0.3)
            raise RuntimeError("loss diverged")

    with pytest.raises(RuntimeError, match="diverged"):
        train()
    s = runs[0].summary()
    assert s["status"] == "failed"
    assert s["energy_j"] == pytest.approx(52.5 * s["duration_s"], rel=0.01)
    assert s["samples"] == 4
    assert s["error"] == "RuntimeError: loss diverged"


def test_keyboard_interrupt_ends_run_as_interrupted(settings: Settings) -> None:
    runs = []

    def train() -> None:
        with carbon.track(settings=settings, sources=_sources()) as run:
            runs.append(run)
            time.sleep(0.2)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train()
    s = runs[0].summary()
    assert s["status"] == "interrupted"
    assert s["energy_j"] > 0


def test_decorator_tracks_each_call_and_exposes_current_run(settings: Settings) -> None:
    seen = []

    @carbon.track(project="serve", kind="inference", settings=settings, sources=_sources())
    def predict(batch: list[int]) -> int:
        run = carbon.current_run()
        assert run is not None
        run.step(samples=len(batch))
        seen.append(run.id)
        return sum(batch)

    assert predict([1, 2, 3]) == 6
    assert predict([4]) == 4
    assert carbon.current_run() is None
    store = open_store(settings.resolved_database_url)
    with store.session() as session:
        runs = {r.id: r for r in session.scalars(select(Run))}
    assert set(runs) == set(seen)
    assert sorted(r.samples for r in runs.values()) == [1, 3]
    assert {r.name for r in runs.values()} == {"predict"}
    assert {r.kind for r in runs.values()} == {"inference"}
    assert {r.status for r in runs.values()} == {"completed"}


def test_failing_source_is_marked_and_others_go_on(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    lost = FailingPowerSource(300.0, fail_after_s=0.5, component=Component.GPU, name="gpu0")
    steady = ConstantPowerSource(40.0, component=Component.CPU)
    with carbon.track(settings=settings, sources=[lost, steady]) as run:
        time.sleep(1.6)
    s = run.summary()
    gpu = next(d for d in s["devices"] if d["component"] == "gpu")
    # Energy up to the last good reading (one period of 50 ms at 20 Hz) is kept.
    assert 300.0 * 0.45 <= gpu["energy_j"] <= 300.0 * 0.5 + 1e-6
    assert "simulated device lost" in gpu["error"]
    assert s["energy_by_component_j"]["cpu"] == pytest.approx(40.0 * s["duration_s"], rel=0.01)
    assert any("power source failed" in w for w in s["warnings"])
    assert s["status"] == "completed"
    assert lost.closed
    assert sum("gpu0 failed" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "pretraining"}, "kind must be one of training, inference"),
        ({"project": ""}, "project must be a non-empty string"),
        ({"pue": 0.9}, "pue must be a finite number >= 1.0"),
        ({"compression": {"f": object()}}, "compression must be JSON-serialisable"),
        ({"tags": {"k": [1]}}, "tags map strings to scalar values"),
    ],
)
def test_invalid_arguments_raise_value_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        carbon.track(**kwargs)  # type: ignore[arg-type]


def test_bad_step_and_metrics_raise_and_store_nothing(settings: Settings) -> None:
    with carbon.track(settings=settings, sources=_sources()) as run:
        run.step(samples=2, tokens=5)
        with pytest.raises(ValueError, match="samples must be >= 0"):
            run.step(samples=-1, tokens=5)
        with pytest.raises(ValueError, match="tokens must be a whole number"):
            run.step(tokens=1.5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="flops must be a finite number"):
            run.step(flops=math.nan)
        with pytest.raises(ValueError, match="metric 'loss' must be finite"):
            run.log_metrics(accuracy=0.5, loss=math.nan)
    s = run.summary()
    assert (s["steps"], s["samples"], s["tokens"], s["flops"]) == (1, 2, 5, None)
    assert s["metrics"] == {}


def test_run_without_region_has_unknown_co2e(settings: Settings) -> None:
    no_region = settings.model_copy(update={"region": None})
    with carbon.track(settings=no_region, sources=_sources()) as run:
        time.sleep(0.1)
    s = run.summary()
    assert s["region"] is None
    assert s["co2e_g"] is None
    assert s["intensity_g_per_kwh"] is None
    assert any("no region set" in w for w in s["warnings"])


def test_unknown_region_fails_before_anything_is_stored(settings: Settings) -> None:
    with pytest.raises(ValueError, match="XX"):  # noqa: SIM117
        with carbon.track(settings=settings, sources=_sources(), region="XX"):
            pytest.fail("the block must not run")
    store = open_store(settings.resolved_database_url)
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Run)) == 0


def test_unreachable_database_names_the_masked_url(tmp_path: object) -> None:
    from carbon.settings import load_settings

    bad = load_settings(database_url="postgresql://alice:s3cret@127.0.0.1:1/nowhere")
    with (
        pytest.raises(carbon.StoreError) as info,
        carbon.track(settings=bad, sources=_sources()),
    ):
        pytest.fail("the block must not run")
    assert "alice:***@127.0.0.1:1/nowhere" in str(info.value)
    assert "s3cret" not in str(info.value)


def test_store_away_for_a_while_loses_nothing(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carbon.store.sink import LocalSink

    real_write = LocalSink.write
    refused = []

    def flaky_write(self: LocalSink, batch: object) -> None:
        if len(refused) < 2:  # the first two batches find the database away
            refused.append(batch)
            raise carbon.StoreError("database is locked")
        real_write(self, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(LocalSink, "write", flaky_write)
    with carbon.track(settings=settings, sources=_sources()) as run:
        time.sleep(2.4)
    s = run.summary()
    assert len(refused) == 2
    assert s["energy_j"] == pytest.approx(52.5 * s["duration_s"], rel=0.01)
    store = open_store(settings.resolved_database_url)
    with store.session() as session:
        n_samples = session.scalar(select(func.count()).select_from(Sample))
    assert n_samples == 2 * math.ceil(s["duration_s"])  # every second arrived, once
