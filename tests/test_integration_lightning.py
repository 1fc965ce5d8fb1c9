"""The PyTorch Lightning callback on tiny models, a few steps on the CPU, into a real store.

FLOPs are checked against the products of the model's layers worked out by hand (a
``Linear(i, o)`` on ``b`` rows is ``2 b i o`` FLOPs forward; backward computes the weight
gradient, ``2 b i o``, and the input gradient, ``2 b i o``, where the input needs one).
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from carbon.errors import ConfigError
from carbon.settings import Settings, load_settings
from carbon.sources.base import Component
from carbon.store import open_store
from carbon.store.models import Run, Window
from carbon.testing import ConstantPowerSource

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning")

from carbon.integrations._lightning_parts import (  # noqa: E402
    batch_size,
    batch_tokens,
    scalar_metrics,
    trainer_precision,
)
from carbon.integrations.lightning import CarbonCallback  # noqa: E402
from tests.logger_helpers import RecordingLogger  # noqa: E402

pytestmark = [
    # Lightning 2.6 still asks torch's pytree for LeafSpec, which torch 2.13 deprecates.
    pytest.mark.filterwarnings(
        r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
    ),
    # Lightning suggests DataLoader workers for the tiny in-memory datasets of these tests.
    pytest.mark.filterwarnings("ignore:The '.*dataloader' does not have many workers"),
    pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no"),
]

ROOT = Path(__file__).resolve().parent.parent
BATCH = 8
ROWS = 48  # 6 training batches
IN, HIDDEN, OUT = 16, 32, 4
POWER_W = 50.0


def forward_flops(rows: int) -> float:
    return 2.0 * rows * (IN * HIDDEN + HIDDEN * OUT)


def training_flops(rows: int) -> float:
    """Forward, then backward: both weight gradients, and the hidden layer's input gradient."""
    backward = 2.0 * rows * (IN * HIDDEN + HIDDEN * OUT) + 2.0 * rows * HIDDEN * OUT
    return forward_flops(rows) + backward


class TinyClassifier(L.LightningModule):
    def __init__(self, fail_at_step: int | None = None, interrupt: bool = False) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(IN, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, OUT)
        )
        self.fail_at_step = fail_at_step
        self.interrupt = interrupt

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if batch_idx == self.fail_at_step:
            raise KeyboardInterrupt if self.interrupt else RuntimeError("loss went NaN")
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self.net(x), y))

    def test_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("test_loss", torch.nn.functional.cross_entropy(self.net(x), y))

    def predict_step(self, batch: Any, batch_idx: int) -> Any:
        return self.net(batch[0]).argmax(-1)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class ManualClassifier(TinyClassifier):
    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        optimizer = self.optimizers()
        optimizer.zero_grad()
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.manual_backward(loss)
        optimizer.step()
        return loss


def loader(rows: int = ROWS, batch: int = BATCH) -> Any:
    generator = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(
        torch.randn(rows, IN, generator=generator),
        torch.randint(0, OUT, (rows,), generator=generator),
    )
    return torch.utils.data.DataLoader(data, batch_size=batch)


def trainer(callback: CarbonCallback, **options: Any) -> Any:
    defaults: dict[str, Any] = {
        "max_epochs": 2,
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 1,
    }
    return L.Trainer(callbacks=[callback], **{**defaults, **options})


@pytest.fixture
def sqlite_settings(sqlite_template: Path, tmp_path: Path) -> Settings:
    """Settings for a store on SQLite (these tests exercise the callback, not the stores)."""
    path = tmp_path / "carbon.db"
    shutil.copy(sqlite_template, path)
    return load_settings(home=tmp_path, database_url=f"sqlite:///{path}", region="FR", sample_hz=20)


def callback(settings: Settings, **options: Any) -> CarbonCallback:
    sources = [ConstantPowerSource(POWER_W, component=Component.CPU, name="test cpu")]
    return CarbonCallback("lightning-tests", settings=settings, sources=sources, **options)


def windows(settings: Settings, run_id: str) -> list[Window]:
    with open_store(settings.resolved_database_url).session() as session:
        rows = session.query(Window).filter(Window.run_id == run_id).order_by(Window.start_s)
        return list(rows)


def assert_adds_up(logged_j: float, stored_j: float) -> None:
    """The logged deltas make the stored energy but for the moments the run's end takes.

    The last delta is read just before the run ends; ending it (waiting for the sampler
    thread, which may be writing a batch) adds a few milliseconds at the source's power.
    """
    assert 0 <= stored_j - logged_j <= POWER_W * 0.1


# -- fit ---------------------------------------------------------------------------------


def test_fit_stores_a_run_with_its_phases_work_flops_and_metrics(
    sqlite_settings: Settings,
) -> None:
    recorder = RecordingLogger()
    tracked = callback(sqlite_settings, report_to=[recorder], log_every_n_steps=2)
    fitting = trainer(tracked)
    fitting.fit(TinyClassifier(), loader(), loader(rows=32, batch=16))
    summary = tracked.run.summary()

    assert summary["status"] == "completed"
    assert summary["kind"] == "training"
    assert summary["name"] == "TinyClassifier"
    assert summary["tags"]["lightning_stage"] == "fit"
    # Two epochs of six batches: only the training batches are steps of a fit.
    assert summary["steps"] == 12
    assert summary["samples"] == 2 * ROWS
    assert summary["tokens"] is None  # Lightning knows no tokens; these batches name none
    assert summary["flops_method"] == "counted"
    assert summary["flops"] == pytest.approx(12 * training_flops(BATCH), rel=1e-12)
    assert summary["j_per_flop"] == pytest.approx(summary["energy_j"] / summary["flops"])
    assert summary["energy_j"] == pytest.approx(POWER_W * summary["duration_s"], rel=0.01)
    assert summary["compression"] == {"precision": "fp32", "lightning_precision": "32-true"}
    expected_metrics = scalar_metrics(fitting.callback_metrics)
    assert set(expected_metrics) == {"train_loss", "val_loss"}
    assert summary["metrics"] == pytest.approx(expected_metrics)

    phases = windows(sqlite_settings, tracked.run.id)
    # One train window around the training loop, one per validation loop inside it; the
    # sanity check is no phase.
    assert [w.name for w in phases] == ["train", "validation", "validation"]
    train, *validations = phases
    assert train.steps == 12
    assert train.samples == 2 * ROWS
    for validation in validations:
        assert validation.steps == 0
        assert train.start_s < validation.start_s < train.start_s + train.duration_s
        assert validation.energy_j == pytest.approx(POWER_W * validation.duration_s, rel=0.05)
    assert train.energy_j == pytest.approx(POWER_W * train.duration_s, rel=0.01)

    # Every second batch, then once at the end; the deltas add up to the run.
    assert [step for step, _ in recorder.steps] == [2, 4, 6, 8, 10, 12, 12]
    logged = [metrics for _, metrics in recorder.steps]
    assert [m["carbon/steps"] for m in logged] == [2, 2, 2, 2, 2, 2, 0]
    assert sum(m["carbon/flops"] for m in logged) == pytest.approx(summary["flops"])
    assert sum(m["carbon/samples"] for m in logged) == 2 * ROWS
    assert_adds_up(sum(m["carbon/energy_j"] for m in logged), summary["energy_j"])
    (totals, run_id, link) = recorder.totals[0]
    assert run_id == tracked.run.id
    assert link is None
    assert totals["carbon/total/energy_j"] == summary["energy_j"]
    assert totals["carbon/total/co2e_g"] == summary["co2e_g"]


def test_an_exception_in_training_keeps_a_failed_run_with_its_data(
    sqlite_settings: Settings,
) -> None:
    recorder = RecordingLogger()
    tracked = callback(sqlite_settings, report_to=[recorder], log_every_n_steps=1)
    model = TinyClassifier(fail_at_step=3)
    with pytest.raises(RuntimeError, match="loss went NaN"):
        trainer(tracked, max_epochs=1).fit(model, loader())
    summary = tracked.run.summary()

    assert summary["status"] == "failed"
    assert summary["error"] == "RuntimeError: loss went NaN"
    assert summary["steps"] == 3
    assert summary["samples"] == 3 * BATCH
    assert summary["flops"] == pytest.approx(3 * training_flops(BATCH), rel=1e-12)
    assert summary["energy_j"] > 0
    assert summary["energy_j"] == pytest.approx(POWER_W * summary["duration_s"], rel=0.01)
    (train,) = windows(sqlite_settings, tracked.run.id)
    assert (train.name, train.steps) == ("train", 3)
    assert train.energy_j > 0
    # The trackers get the last delta and the failed run's totals too.
    assert [step for step, _ in recorder.steps] == [1, 2, 3, 3]
    assert recorder.totals[0][0]["carbon/total/energy_j"] == summary["energy_j"]
    # The module is left as it was: no FLOP-counting wrapper stays on it.
    assert "optimizer_step" not in vars(model)


def test_ctrl_c_leaves_an_interrupted_run(sqlite_settings: Settings) -> None:
    tracked = callback(sqlite_settings, report_to="none")
    handler = signal.getsignal(signal.SIGINT)
    try:
        # Lightning shuts down gracefully on Ctrl-C and exits with status 1.
        with pytest.raises(SystemExit):
            trainer(tracked, max_epochs=1).fit(TinyClassifier(2, interrupt=True), loader())
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores further Ctrl-C
    summary = tracked.run.summary()
    assert summary["status"] == "interrupted"
    assert summary["steps"] == 2
    assert summary["energy_j"] > 0


def test_manual_optimization_counts_the_whole_training_step(sqlite_settings: Settings) -> None:
    tracked = callback(sqlite_settings, report_to="none")
    trainer(tracked, max_epochs=1).fit(ManualClassifier(), loader())
    summary = tracked.run.summary()
    assert summary["flops_method"] == "counted"
    assert summary["flops"] == pytest.approx(6 * training_flops(BATCH), rel=1e-12)


def test_a_step_failing_while_counted_leaves_the_module_unwrapped(
    sqlite_settings: Settings,
) -> None:
    tracked = callback(sqlite_settings, report_to="none")
    model = TinyClassifier(fail_at_step=0)  # the step under the FLOP counter raises
    with pytest.raises(RuntimeError):
        trainer(tracked, max_epochs=1).fit(model, loader())
    assert "optimizer_step" not in vars(model)
    assert tracked.run.summary()["flops"] is None


def test_gradient_accumulation_counts_every_batch(sqlite_settings: Settings) -> None:
    tracked = callback(sqlite_settings, report_to="none")
    trainer(tracked, max_epochs=1, accumulate_grad_batches=3).fit(TinyClassifier(), loader())
    summary = tracked.run.summary()
    assert summary["steps"] == 6
    assert summary["flops"] == pytest.approx(6 * training_flops(BATCH), rel=1e-12)


# -- validate, test, predict -------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "phase", "metric"),
    [
        ("validate", "validation", "val_loss"),
        ("test", "test", "test_loss"),
        ("predict", "predict", None),
    ],
)
def test_each_evaluation_call_is_an_inference_run(
    sqlite_settings: Settings, call: str, phase: str, metric: str | None
) -> None:
    tracked = callback(sqlite_settings, report_to="none")
    evaluating = trainer(tracked)
    getattr(evaluating, call)(TinyClassifier(), loader(rows=40, batch=16))
    summary = tracked.run.summary()

    assert summary["status"] == "completed"
    assert summary["kind"] == "inference"
    assert summary["tags"]["lightning_stage"] == call
    assert summary["steps"] == 3  # 16 + 16 + 8 rows
    assert summary["samples"] == 40
    # The FLOPs of the first step (16 rows), counted once, for every step.
    assert summary["flops_method"] == "counted"
    assert summary["flops"] == pytest.approx(3 * forward_flops(16), rel=1e-12)
    assert [(w.name, w.steps, w.samples) for w in windows(sqlite_settings, tracked.run.id)] == [
        (phase, 3, 40)
    ]
    if metric is not None:
        assert summary["metrics"][metric] == pytest.approx(
            float(evaluating.callback_metrics[metric])
        )


def test_one_callback_tracks_each_call_as_its_own_run(sqlite_settings: Settings) -> None:
    tracked = callback(sqlite_settings, report_to="none")
    model = TinyClassifier()
    calling = trainer(tracked, max_epochs=1)
    calling.fit(model, loader())
    fit_run = tracked.run
    calling.test(model, loader())
    assert tracked.run.id != fit_run.id
    assert fit_run.summary()["kind"] == "training"
    assert tracked.run.summary()["kind"] == "inference"


# -- tokens, precision, the GPU path -----------------------------------------------------


class TinyTokenModel(L.LightningModule):
    """An embedding bag over Hugging Face-style batches (``input_ids``, ``attention_mask``)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.EmbeddingBag(100, 8, mode="sum")
        self.head = torch.nn.Linear(8, 2)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        weights = batch["attention_mask"].float()
        hidden = self.embed(batch["input_ids"], per_sample_weights=weights)
        return torch.nn.functional.cross_entropy(self.head(hidden), batch["labels"])

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def token_batches() -> Any:
    """Three batches of four rows of 12 tokens, padded by 0, 3 and 5 tokens."""
    generator = torch.Generator().manual_seed(1)
    rows = []
    for padded in (0, 3, 5):
        for _ in range(4):
            mask = torch.ones(12, dtype=torch.long)
            mask[12 - padded :] = 0
            rows.append(
                {
                    "input_ids": torch.randint(0, 100, (12,), generator=generator),
                    "attention_mask": mask,
                    "labels": torch.randint(0, 2, (), generator=generator),
                }
            )
    return torch.utils.data.DataLoader(rows, batch_size=4)


def test_tokens_come_from_the_attention_mask_or_a_given_function(
    sqlite_settings: Settings,
) -> None:
    batches = token_batches()
    tracked = callback(sqlite_settings, report_to="none")
    trainer(tracked, max_epochs=1).fit(TinyTokenModel(), batches)
    summary = tracked.run.summary()
    assert summary["samples"] == 12
    assert summary["tokens"] == 4 * (12 + 9 + 7)  # the padding is no work
    assert summary["flops_method"] == "counted"
    assert summary["flops"] > 0

    given = callback(sqlite_settings, report_to="none", tokens=lambda b: b["input_ids"].numel())
    trainer(given, max_epochs=1).fit(TinyTokenModel(), batches)
    assert given.run.summary()["tokens"] == 3 * 4 * 12


def test_the_simulated_gpu_gives_mfu_at_the_trainers_precision(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, region="FR", sample_hz=20, simulate_gpus=1)
    recorder = RecordingLogger()
    tracked = CarbonCallback("lightning-tests", settings=settings, report_to=[recorder])
    trainer(tracked, max_epochs=1, precision="bf16-mixed").fit(TinyClassifier(), loader())
    summary = tracked.run.summary()

    assert summary["simulated"] is True
    assert summary["energy_by_component_j"]["gpu"] > 0
    assert summary["compression"]["precision"] == "bf16"
    assert summary["compression"]["lightning_precision"] == "bf16-mixed"
    assert summary["precision"] == "bf16"
    peak = summary["peak_flops_per_s"]
    assert peak == pytest.approx(989.4e12)  # a simulated H100 SXM, dense BF16
    assert summary["mfu"] == pytest.approx(summary["flops"] / summary["duration_s"] / peak)
    assert all(metrics["carbon/mfu"] > 0 for _, metrics in recorder.steps[:-1])


def test_a_quantization_or_precision_the_user_gives_wins(sqlite_settings: Settings) -> None:
    tracked = callback(sqlite_settings, report_to="none", compression={"precision": "fp16"})
    trainer(tracked, max_epochs=1).fit(TinyClassifier(), loader())
    assert tracked.run.summary()["compression"]["precision"] == "fp16"


# -- distributed, and the trackers a Trainer logs to --------------------------------------


def test_only_global_rank_zero_logs_to_trackers(
    sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = RecordingLogger()
    tracked = callback(sqlite_settings, report_to=[recorder], log_every_n_steps=1)
    monkeypatch.setattr(L.Trainer, "is_global_zero", property(lambda self: False))
    trainer(tracked, max_epochs=1).fit(TinyClassifier(), loader())
    assert recorder.steps == recorder.totals == []
    assert tracked.run.summary()["steps"] == 6  # the rank still tracks its own work


def test_the_trainers_mlflow_logger_gets_carbons_figures(
    sqlite_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow = pytest.importorskip("mlflow")
    from lightning.pytorch.loggers import MLFlowLogger

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    tracking_uri = (tmp_path / "mlruns").as_uri()
    logger = MLFlowLogger(experiment_name="carbon", tracking_uri=tracking_uri)
    # Asking for MLflow by name is served by the Trainer's MLflow run (no active run needed).
    tracked = callback(sqlite_settings, report_to="mlflow", log_every_n_steps=2)
    trainer(tracked, max_epochs=1, logger=logger, log_every_n_steps=2).fit(
        TinyClassifier(), loader()
    )
    summary = tracked.run.summary()

    client = mlflow.tracking.MlflowClient(tracking_uri)
    data = client.get_run(logger.run_id).data
    assert data.tags["carbon.run_id"] == tracked.run.id
    assert data.metrics["carbon/total/energy_j"] == summary["energy_j"]
    assert data.metrics["carbon/total/co2e_g"] == summary["co2e_g"]
    assert data.metrics["carbon/total/flops"] == summary["flops"]
    assert "train_loss" in data.metrics  # next to the Trainer's own metrics
    history = client.get_metric_history(logger.run_id, "carbon/energy_j")
    # Steps 2, 4, 6, then the tail at 6 (MLflow keeps both values at that step).
    assert sorted(m.step for m in history) == [2, 4, 6, 6]
    assert_adds_up(sum(m.value for m in history), summary["energy_j"])
    flops = client.get_metric_history(logger.run_id, "carbon/flops")
    assert sum(m.value for m in flops) == pytest.approx(summary["flops"])


def test_the_trainers_wandb_logger_gets_carbons_figures(
    sqlite_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wandb = pytest.importorskip("wandb")
    from lightning.pytorch.loggers import WandbLogger

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    try:
        logger = WandbLogger(project="carbon", save_dir=str(tmp_path))
        tracked = callback(sqlite_settings, log_every_n_steps=2)
        trainer(tracked, max_epochs=1, logger=logger, log_every_n_steps=2).fit(
            TinyClassifier(), loader()
        )
        summary = tracked.run.summary()
        experiment = logger.experiment
        assert experiment.summary["carbon/total/energy_j"] == summary["energy_j"]
        assert experiment.summary["carbon/total/co2e_g"] == summary["co2e_g"]
        assert experiment.config["carbon_run_id"] == tracked.run.id
        assert experiment.summary["carbon/step"] == 6
    finally:
        wandb.finish()
        wandb.teardown()


def test_any_other_lightning_logger_gets_the_figures_through_log_metrics(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    import csv

    from lightning.pytorch.loggers import CSVLogger

    logger = CSVLogger(tmp_path, name="csv", version=0)
    tracked = callback(sqlite_settings, log_every_n_steps=3)
    trainer(tracked, max_epochs=1, logger=logger, log_every_n_steps=3).fit(
        TinyClassifier(), loader()
    )
    summary = tracked.run.summary()
    with open(Path(logger.log_dir) / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    steps = [row for row in rows if row.get("carbon/energy_j")]
    assert [int(row["step"]) for row in steps] == [3, 6, 6]
    assert_adds_up(sum(float(row["carbon/energy_j"]) for row in steps), summary["energy_j"])
    (total,) = [row for row in rows if row.get("carbon/total/energy_j")]
    assert float(total["carbon/total/energy_j"]) == pytest.approx(summary["energy_j"])
    hparams = (Path(logger.log_dir) / "hparams.yaml").read_text()
    assert f"carbon_run_id: {tracked.run.id}" in hparams


def test_a_named_tracker_without_a_run_fails_before_training(sqlite_settings: Settings) -> None:
    pytest.importorskip("wandb")
    tracked = callback(sqlite_settings, report_to="wandb")
    with pytest.raises(ConfigError, match=r"wandb\.init"):
        trainer(tracked).fit(TinyClassifier(), loader())
    assert tracked.run is None


# -- the pieces --------------------------------------------------------------------------


def test_batch_sizes_and_tokens() -> None:
    ids = torch.ones(3, 7, dtype=torch.long)
    assert batch_size(torch.zeros(5, 2)) == 5
    assert batch_size((torch.zeros(4, 2), torch.zeros(4))) == 4
    assert batch_size({"labels": torch.zeros(2), "input_ids": ids}) == 3
    assert batch_size([{"x": torch.zeros(6, 1)}]) == 6
    assert batch_size(["a photo", "another"]) == 2
    assert batch_size(torch.tensor(1.0)) is None
    assert batch_size(object()) is None
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert batch_tokens({"input_ids": ids, "attention_mask": mask}) == 3
    assert batch_tokens({"input_ids": ids}) == 21
    assert batch_tokens((ids,)) is None


def test_trainer_precisions() -> None:
    assert trainer_precision("bf16-mixed") == "bf16"
    assert trainer_precision("16-mixed") == "fp16"
    assert trainer_precision("32-true") == "fp32"
    assert trainer_precision("64-true") == "fp64"
    assert trainer_precision("transformer-engine") == "fp8"
    assert trainer_precision(32) == "fp32"
    assert trainer_precision(None) is None


def test_scalar_metrics_keep_finite_scalars() -> None:
    metrics = {"loss": torch.tensor(0.5), "acc": 0.9, "vec": torch.ones(3), "nan": math.nan}
    assert scalar_metrics(metrics) == {"loss": 0.5, "acc": 0.9}


def test_without_lightning_the_import_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from carbon._extras import MissingExtraError

    monkeypatch.setitem(sys.modules, "lightning", None)
    monkeypatch.setitem(sys.modules, "lightning.pytorch", None)
    monkeypatch.delitem(sys.modules, "carbon.integrations.lightning")
    with pytest.raises(MissingExtraError, match=r"carbon-ledger\[lightning\]"):
        importlib.import_module("carbon.integrations.lightning")


def test_bad_options_fail_before_training() -> None:
    with pytest.raises(TypeError, match="do not pass kind"):
        CarbonCallback(kind="training")
    with pytest.raises(ValueError, match="pue"):
        CarbonCallback(pue=0.5)
    with pytest.raises(TypeError):
        CarbonCallback(regoin="FR")
    with pytest.raises(ValueError, match="log_every_n_steps"):
        CarbonCallback(log_every_n_steps=0)


# -- the example -------------------------------------------------------------------------


@pytest.mark.slow
def test_the_lightning_example_stores_a_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARBON_", "WANDB_"))}
    env["CARBON_HOME"] = str(tmp_path / "home")
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "lightning_module.py")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "home" / "carbon.db").exists()
    out = done.stdout
    for label in ("samples", "tokens", "FLOPs (counted)", "J/FLOP"):
        assert label in out, out
    store = open_store(f"sqlite:///{tmp_path / 'home' / 'carbon.db'}")
    with store.session() as session:
        (run,) = session.query(Run).all()
        assert run.status == "completed"
        assert run.kind == "training"
        assert run.samples
        assert run.tokens
        assert run.flops
        assert run.flops_method == "counted"
        assert f"{run.samples:,}" in out
        assert f"{run.tokens:,}" in out
