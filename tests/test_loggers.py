"""carbon's figures in MLflow (local file store) and Weights & Biases (offline): no network.

Each test tracks a real run on power sources of exactly known power, logs its deltas and
totals, then reads back what the tracker stored and compares it with carbon's own store.
"""

from __future__ import annotations

import json
import logging
import struct
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import carbon
from carbon._extras import MissingExtraError
from carbon.errors import ConfigError
from carbon.integrations.loggers import (
    MetricLogger,
    MLflowLogger,
    log_delta,
    log_run_totals,
    make_loggers,
    run_link,
    totals,
)
from carbon.settings import Settings, load_settings
from carbon.sources.base import Component
from carbon.testing import ConstantPowerSource
from tests.logger_helpers import RecordingLogger

mlflow = pytest.importorskip("mlflow")
wandb = pytest.importorskip("wandb")

STEP_FLOPS = 2.0e9


def _sources() -> list[ConstantPowerSource]:
    return [ConstantPowerSource(120.0, component=Component.CPU, name="test cpu")]


def _tracked_run(settings: Settings, loggers: list[MetricLogger], steps: int = 4) -> Any:
    """A run of ``steps`` steps of 0.15 s, a delta logged after each; returns run, deltas."""
    deltas = []
    with carbon.track(project="loggers", settings=settings, sources=_sources()) as run:
        for step in range(1, steps + 1):
            time.sleep(0.15)
            run.step(samples=8, tokens=64, flops=STEP_FLOPS)
            delta = run.delta()
            deltas.append(delta)
            log_delta(loggers, delta, step)
    log_run_totals(loggers, run)
    return run, deltas


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """MLflow on a local file store in the test's folder, with an experiment of its own."""
    # MLflow 3 keeps the file store but asks for this opt-in (it prefers a database).
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    mlflow.set_experiment("carbon-tests")
    yield mlflow.tracking.MlflowClient()
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


@pytest.fixture
def wandb_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """W&B in offline mode, writing under the test's folder; its service is stopped after."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    yield tmp_path
    if wandb.run is not None:
        wandb.finish()
    wandb.teardown()


def read_wandb_records(run_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """The history, summary and config records of an offline run's ``.wandb`` file.

    The file is a LevelDB-style log (32 KiB blocks of records with a 7-byte header: CRC,
    length, type) of wandb's own protobuf records; wandb ships no Python reader for it.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = run_dir.glob("run-*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    position, pending, records = 7, b"", []
    while position + 7 <= len(data):
        left = 32768 - position % 32768
        if left < 7:
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        if kind == 0 and length == 0:
            break
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            records.append(pending)
            pending = b""
    parsed = []
    for raw in records:
        record = pb.Record()
        record.ParseFromString(raw)
        which = record.WhichOneof("record_type")
        items = {
            "history": lambda r: r.history.item,
            "summary": lambda r: r.summary.update,
            "config": lambda r: r.config.update,
        }.get(which)
        if items is not None:
            parsed.append(
                (
                    which,
                    {
                        i.key or "/".join(i.nested_key): json.loads(i.value_json)
                        for i in items(record)
                    },
                )
            )
    return parsed


# -- MLflow ------------------------------------------------------------------------------


def test_mlflow_gets_each_delta_and_the_stored_totals(
    settings: Settings, mlflow_store: Any
) -> None:
    with mlflow.start_run() as active:
        loggers = make_loggers("auto")
        assert [logger.name for logger in loggers] == ["mlflow"]
        run, deltas = _tracked_run(settings, loggers)
    summary = run.summary()
    client = mlflow_store
    mlflow_id = active.info.run_id

    history = client.get_metric_history(mlflow_id, "carbon/energy_j")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
        (step, delta.energy_j) for step, delta in enumerate(deltas, start=1)
    ]
    co2e = client.get_metric_history(mlflow_id, "carbon/co2e_g")
    assert [m.value for m in sorted(co2e, key=lambda m: m.step)] == [d.co2e_g for d in deltas]
    flops = client.get_metric_history(mlflow_id, "carbon/flops")
    assert [m.value for m in flops] == [STEP_FLOPS] * 4
    j_per_flop = client.get_metric_history(mlflow_id, "carbon/j_per_flop")
    assert [m.value for m in sorted(j_per_flop, key=lambda m: m.step)] == pytest.approx(
        [d.energy_j / STEP_FLOPS for d in deltas]
    )
    # 120 W for about 0.15 s a step; the deltas add up to the run's energy but for the
    # moment between the last delta and the end of the run.
    assert all(delta.energy_j == pytest.approx(120.0 * delta.duration_s) for delta in deltas)
    assert 0 <= summary["energy_j"] - sum(m.value for m in history) <= 120.0 * 0.1

    data = client.get_run(mlflow_id).data
    assert data.metrics["carbon/total/energy_j"] == summary["energy_j"]
    assert data.metrics["carbon/total/co2e_g"] == summary["co2e_g"]
    assert data.metrics["carbon/total/flops"] == summary["flops"] == 4 * STEP_FLOPS
    assert data.metrics["carbon/total/j_per_flop"] == summary["j_per_flop"]
    assert data.metrics["carbon/total/samples"] == 32
    assert data.metrics["carbon/total/tokens"] == 256
    assert "carbon/total/mfu" not in data.metrics  # a CPU has no peak: MFU unknown, not 0
    assert data.tags["carbon.run_id"] == run.id
    assert "carbon.link" not in data.tags  # runs stored locally have no page to link


def test_mlflow_logs_into_a_given_run_after_it_ended(settings: Settings, mlflow_store: Any) -> None:
    with mlflow.start_run() as active:
        pass  # e.g. the Trainer's own MLflow callback ended its run before carbon's end
    logger = MLflowLogger(active.info.run_id, client=mlflow_store)
    run, _ = _tracked_run(settings, [logger], steps=1)
    metrics = mlflow_store.get_run(active.info.run_id).data.metrics
    assert metrics["carbon/total/energy_j"] == run.summary()["energy_j"]


def test_named_trackers_need_an_active_run(mlflow_store: Any, wandb_offline: Path) -> None:
    assert make_loggers("auto") == []
    assert make_loggers("none") == make_loggers(None) == make_loggers([]) == []
    with pytest.raises(ConfigError, match=r"mlflow\.start_run"):
        make_loggers("mlflow")
    with pytest.raises(ConfigError, match=r"wandb\.init"):
        make_loggers(["wandb"])
    with pytest.raises(ValueError, match="report_to must be one of"):
        make_loggers("tensorboard")
    with mlflow.start_run():
        # "auto" and "mlflow" find the same run: it is logged to once.
        assert [logger.name for logger in make_loggers(["auto", "mlflow"])] == ["mlflow"]


def test_a_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def without_mlflow(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "mlflow":
            raise ImportError("No module named 'mlflow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_mlflow)
    with pytest.raises(MissingExtraError, match=r"carbon-ledger\[mlflow\]"):
        make_loggers("mlflow")


# -- Weights & Biases --------------------------------------------------------------------


def test_wandb_gets_each_delta_and_the_stored_totals(
    settings: Settings, wandb_offline: Path
) -> None:
    active = wandb.init(project="carbon-tests")
    active.log({"loss": 1.0})  # the user's own step counter moves on independently
    loggers = make_loggers("auto")
    assert [logger.name for logger in loggers] == ["wandb"]
    run, deltas = _tracked_run(settings, loggers)
    summary = run.summary()

    assert active.summary["carbon/total/energy_j"] == summary["energy_j"]
    assert active.summary["carbon/total/co2e_g"] == summary["co2e_g"]
    assert active.summary["carbon/total/flops"] == 4 * STEP_FLOPS
    assert active.config["carbon_run_id"] == run.id
    run_dir = Path(active.dir).parent
    active.finish()
    wandb.teardown()  # the service writes the run's file in the background until it stops

    records = read_wandb_records(run_dir)
    rows = [values for kind, values in records if kind == "history" and "carbon/step" in values]
    assert [row["carbon/step"] for row in rows] == [1, 2, 3, 4]
    assert [row["carbon/energy_j"] for row in rows] == pytest.approx(
        [delta.energy_j for delta in deltas], rel=1e-12
    )
    assert [row["carbon/co2e_g"] for row in rows] == pytest.approx(
        [delta.co2e_g for delta in deltas], rel=1e-12
    )
    assert 0 <= summary["energy_j"] - sum(row["carbon/energy_j"] for row in rows) <= 120.0 * 0.1
    (config,) = [
        values for kind, values in records if kind == "config" and "carbon_run_id" in values
    ]
    assert config["carbon_run_id"] == run.id


# -- what every logger shares ------------------------------------------------------------


class _Broken:
    name = "broken"

    def log_step(self, metrics: Mapping[str, float], step: int) -> None:
        raise ConnectionError("tracker away")

    def log_totals(
        self, metrics: Mapping[str, float], carbon_run_id: str, link: str | None
    ) -> None:
        raise ConnectionError("tracker away")


def test_a_failing_logger_only_warns(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    recorder = RecordingLogger()
    with caplog.at_level(logging.WARNING, logger="carbon.integrations.loggers"):
        run, _ = _tracked_run(settings, make_loggers([_Broken(), recorder]), steps=2)
    assert run.status == "completed"
    assert [step for step, _ in recorder.steps] == [1, 2]
    assert recorder.totals[0][1] == run.id
    assert "logging to broken failed: tracker away" in caplog.text


def test_totals_keep_known_figures_only() -> None:
    summary = {"energy_j": 12.5, "co2e_g": None, "flops": 4e9, "mfu": None, "steps": 3, "x": 1}
    assert totals(summary) == {
        "carbon/total/energy_j": 12.5,
        "carbon/total/flops": 4e9,
        "carbon/total/steps": 3.0,
    }


def test_the_link_points_at_the_team_server(tmp_path: Path) -> None:
    remote = load_settings(home=tmp_path, server_url="https://carbon.example.org/", api_key="k")
    local = load_settings(home=tmp_path)

    class _Run:
        id = "ab" * 16

        def __init__(self, settings: Settings) -> None:
            self.config = carbon.track(settings=settings).config

    assert run_link(_Run(remote)) == f"https://carbon.example.org/run/{'ab' * 16}"  # type: ignore[arg-type]
    assert run_link(_Run(local)) is None  # type: ignore[arg-type]
