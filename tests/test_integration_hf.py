"""The Hugging Face Trainer callback on a tiny randomly initialised GPT-2, on the CPU.

Every model is built from a config (two layers, width 32): nothing is downloaded. Each
training runs six optimizer steps of four sequences of 16 tokens (12 of them not padding).
"""

from __future__ import annotations

import collections
import itertools
import math
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

import carbon.tracking.api
from carbon.accounting.catalog import match_gpu, peak_flops
from carbon.settings import Settings, load_settings
from carbon.sources.base import Component
from carbon.store import open_store
from carbon.store.models import Run, Window
from carbon.store.summary import run_summary
from carbon.testing import ConstantPowerSource

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments  # noqa: E402

from carbon.integrations import _hf_crash  # noqa: E402
from carbon.integrations.huggingface import (  # noqa: E402
    FLOPS_METHOD,
    RESTART_MESSAGE,
    CarbonCallback,
    track,
)

SEQ, REAL, BATCH, STEPS = 16, 12, 4, 6
"""Sequence length, tokens that are not padding, batch size, optimizer steps."""
CPU_W = 40.0


def tiny_config() -> GPT2Config:
    return GPT2Config(
        n_layer=2, n_embd=32, n_head=2, vocab_size=128, n_positions=SEQ,
        bos_token_id=0, eos_token_id=0, pad_token_id=0,
    )  # fmt: skip


class ExplodingGPT2(GPT2LMHeadModel):
    """A GPT-2 whose forward raises on its ``explode_at``-th training batch."""

    explode_at = 3

    def forward(
        self, input_ids: Any = None, attention_mask: Any = None, labels: Any = None, **kwargs: Any
    ) -> Any:
        if self.training:
            self.training_calls = getattr(self, "training_calls", 0) + 1
            if self.training_calls == self.explode_at:
                raise RuntimeError(f"boom at training batch {self.explode_at}")
        return super().forward(
            input_ids=input_ids, attention_mask=attention_mask, labels=labels, **kwargs
        )


class TokenDataset(torch.utils.data.Dataset):  # type: ignore[misc]
    """Random token ids, the last ``SEQ - REAL`` of each sequence padding."""

    def __init__(self, n: int, seed: int = 1) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, 128, (n, SEQ), generator=generator)
        self.mask = torch.zeros(n, SEQ, dtype=torch.long)
        self.mask[:, :REAL] = 1

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        labels = self.ids[i].masked_fill(self.mask[i] == 0, -100)
        return {"input_ids": self.ids[i], "attention_mask": self.mask[i], "labels": labels}


def make_trainer(
    tmp_path: Path,
    callbacks: list[Any] | None = None,
    model_class: type[GPT2LMHeadModel] = GPT2LMHeadModel,
    **overrides: Any,
) -> Trainer:
    torch.manual_seed(0)
    options: dict[str, Any] = {
        "output_dir": str(tmp_path / "out"),
        "max_steps": STEPS,
        "per_device_train_batch_size": BATCH,
        "per_device_eval_batch_size": BATCH,
        "logging_steps": 2,
        "eval_strategy": "steps",
        "eval_steps": 3,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "disable_tqdm": True,
        "seed": 0,
    }
    options.update(overrides)
    return Trainer(
        model=model_class(tiny_config()),
        args=TrainingArguments(**options),
        train_dataset=TokenDataset(64),
        eval_dataset=TokenDataset(8, seed=2),
        callbacks=callbacks,
    )


def six_nd(trainer: Trainer, sequences: int) -> float:
    """The Trainer's FLOP estimate for ``sequences`` training sequences: 6 N x input ids."""
    return 6.0 * trainer.model.num_parameters(exclude_embeddings=True) * sequences * SEQ


def stored(settings: Settings, run_id: str) -> tuple[dict[str, Any], list[Window]]:
    store = open_store(settings.resolved_database_url)
    with store.session() as session:
        run = session.get(Run, run_id)
        assert run is not None
        summary = run_summary(run)
        windows = list(
            session.scalars(select(Window).where(Window.run_id == run_id).order_by(Window.start_s))
        )
        session.expunge_all()
    return summary, windows


def cpu() -> list[ConstantPowerSource]:
    return [ConstantPowerSource(CPU_W, component=Component.CPU, name="test cpu")]


@pytest.fixture
def local_settings(tmp_path: Path, sqlite_template: Path) -> Settings:
    """Settings on a SQLite store of the test's own, in France (the store is not the point)."""
    shutil.copy(sqlite_template, tmp_path / "carbon.db")
    return load_settings(home=tmp_path, region="FR", sample_hz=20)


@pytest.fixture(autouse=True)
def _no_open_runs() -> Iterator[None]:
    yield
    left = [owner for owner, _ in _hf_crash._open.values()]
    for owner in left:  # end them, so that the next test starts clean
        owner._end_after(None, "left open by a test")
    assert not left, "a test left a callback's run open"


def test_train_is_one_run_with_phases_work_and_metrics(settings: Settings, tmp_path: Path) -> None:
    callback = CarbonCallback(project="hf", settings=settings, sources=cpu())
    trainer = make_trainer(tmp_path, [callback])
    output = trainer.train()

    assert len(callback.runs) == 1
    summary, windows = stored(settings, callback.runs[0].id)
    assert summary["status"] == "completed"
    assert summary["name"] == "GPT2LMHeadModel"
    assert summary["steps"] == STEPS
    assert summary["samples"] == STEPS * BATCH
    # carbon counted the tokens itself (the Trainer was not asked to): the masks' sums.
    assert summary["tokens"] == STEPS * BATCH * REAL
    assert summary["tags"]["tokens_method"] == "counted_from_batches"
    # FLOPs are the Trainer's own total, its 6 N D over every input id.
    assert summary["flops"] == trainer.state.total_flos == six_nd(trainer, STEPS * BATCH)
    assert summary["flops_method"] == FLOPS_METHOD
    assert summary["j_per_flop"] == pytest.approx(summary["energy_j"] / summary["flops"])
    assert summary["energy_j"] == pytest.approx(CPU_W * summary["duration_s"], rel=1e-9)
    assert summary["compression"] == {"precision": "fp32"}
    assert summary["tags"]["framework"] == "transformers"
    assert summary["tags"]["model"] == "GPT2LMHeadModel"

    metrics = summary["metrics"]
    assert metrics["train_loss"] == pytest.approx(output.training_loss)
    evals = [entry["eval_loss"] for entry in trainer.state.log_history if "eval_loss" in entry]
    assert metrics["eval_loss"] == pytest.approx(evals[-1])
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert metrics["loss"] == pytest.approx(losses[-1])

    # Phases: training, the evaluation at step 3, training, the last evaluation.
    assert [w.name for w in windows] == ["train", "eval", "train", "eval"]
    for before, after in itertools.pairwise(windows):  # each edge its own reading
        assert 0 <= after.start_s - (before.start_s + before.duration_s) < 0.05
    for window in windows:
        assert window.energy_j == pytest.approx(CPU_W * window.duration_s, rel=1e-9)
    train = [w for w in windows if w.name == "train"]
    assert [w.steps for w in train] == [3, 3]
    assert sum(w.samples or 0 for w in train) == STEPS * BATCH
    assert math.fsum(w.flops or 0.0 for w in train) == summary["flops"]
    assert all(w.steps == 0 and not w.flops for w in windows if w.name == "eval")


@pytest.mark.parametrize(
    ("counting", "tokens", "method"),
    [
        ("all", STEPS * BATCH * SEQ, "trainer_all"),
        ("non_padding", STEPS * BATCH * REAL, "trainer_non_padding"),
    ],
)
def test_tokens_are_the_trainers_when_it_counts_them(
    local_settings: Settings, tmp_path: Path, counting: str, tokens: int, method: str
) -> None:
    callback = CarbonCallback(settings=local_settings, sources=cpu(), name="counted")
    trainer = make_trainer(
        tmp_path, [callback], include_num_input_tokens_seen=counting, eval_strategy="no"
    )
    trainer.train()
    summary, windows = stored(local_settings, callback.runs[0].id)
    assert summary["tokens"] == trainer.state.num_input_tokens_seen == tokens
    assert summary["tags"]["tokens_method"] == method
    assert summary["name"] == "counted"
    assert [w.name for w in windows] == ["train"]


def test_exception_in_training_leaves_a_failed_run_with_its_data(
    settings: Settings, tmp_path: Path
) -> None:
    """``track(trainer)``: the forward of the third batch raises, before any logging step."""
    trainer = make_trainer(tmp_path, model_class=ExplodingGPT2, logging_steps=5)
    callback = track(trainer, project="hf", settings=settings, sources=cpu())
    with pytest.raises(RuntimeError, match="boom at training batch 3"):
        trainer.train()

    summary, windows = stored(settings, callback.runs[0].id)
    assert summary["status"] == "failed"
    assert summary["error"] == "RuntimeError: boom at training batch 3"
    assert summary["steps"] == 2
    assert summary["samples"] == 2 * BATCH
    assert summary["tokens"] == 2 * BATCH * REAL
    # No logging step came, so the Trainer never published its count: track() took the
    # FLOPs of the two batches from the trainer's pending count.
    assert trainer.state.total_flos == 0
    assert summary["flops"] == six_nd(trainer, 2 * BATCH)
    assert summary["energy_j"] == pytest.approx(CPU_W * summary["duration_s"], rel=1e-9)
    assert summary["energy_j"] > 0
    assert [(w.name, w.steps) for w in windows] == [("train", 2)]

    # The wrapper stays in place and does not wrap twice; the next train() is a new run.
    assert track(trainer) is callback
    with pytest.raises(ValueError, match="already has a CarbonCallback"):
        track(trainer, project="other")


def test_run_left_open_by_a_caught_exception_ends_at_the_next_train(
    local_settings: Settings, tmp_path: Path
) -> None:
    callback = CarbonCallback(settings=local_settings, sources=cpu())
    trainer = make_trainer(tmp_path, [callback], model_class=ExplodingGPT2, eval_strategy="no")
    with pytest.raises(RuntimeError, match="boom"):
        trainer.train()
    first = callback.runs[0]
    assert first.status == "running"  # no exception event: the callback could not know

    trainer.train()  # the model explodes only once
    assert len(callback.runs) == 2
    summary, _ = stored(local_settings, first.id)
    assert summary["status"] == "failed"
    assert summary["error"] == RESTART_MESSAGE
    assert summary["steps"] == 2  # what the first train() did before the exception
    assert stored(local_settings, callback.runs[1].id)[0]["status"] == "completed"


def test_run_still_open_at_exit_ends_interrupted(local_settings: Settings, tmp_path: Path) -> None:
    callback = CarbonCallback(settings=local_settings, sources=cpu())
    trainer = make_trainer(tmp_path, [callback], model_class=ExplodingGPT2, eval_strategy="no")
    with pytest.raises(RuntimeError):
        trainer.train()
    _hf_crash._at_exit()  # what the interpreter runs at exit
    summary, _ = stored(local_settings, callback.runs[0].id)
    assert summary["status"] == "interrupted"
    assert summary["error"] == _hf_crash.EXIT_MESSAGE
    assert summary["samples"] == 2 * BATCH


CRASHING_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from test_integration_hf import ExplodingGPT2, make_trainer, cpu
from carbon.integrations.huggingface import CarbonCallback
from carbon.settings import load_settings

callback = CarbonCallback(project="crash", settings=load_settings(), sources=cpu())
print(callback.__class__.__name__, flush=True)
trainer = make_trainer(Path({tmp!r}), [callback], model_class=ExplodingGPT2, eval_strategy="no")
Path({id_file!r}).write_text("")
try:
    trainer.train()
finally:
    Path({id_file!r}).write_text(callback.runs[0].id)
"""


@pytest.mark.slow
def test_uncaught_exception_in_a_script_ends_the_run_failed(
    local_settings: Settings, tmp_path: Path
) -> None:
    """The callback alone, in a script that dies of the exception: ``sys.excepthook``."""
    script, id_file = tmp_path / "crash.py", tmp_path / "run_id"
    tests = str(Path(__file__).parent)
    script.write_text(CRASHING_SCRIPT.format(tests=tests, tmp=str(tmp_path), id_file=str(id_file)))
    env = {**os.environ, "CARBON_HOME": str(local_settings.home), "CARBON_REGION": "FR"}
    result = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 1, result.stderr
    assert "RuntimeError: boom at training batch 3" in result.stderr  # the traceback still shows
    summary, _ = stored(local_settings, id_file.read_text())
    assert summary["status"] == "failed"
    assert summary["error"] == "RuntimeError: boom at training batch 3"
    assert (summary["steps"], summary["samples"]) == (2, 2 * BATCH)
    assert summary["energy_j"] == pytest.approx(CPU_W * summary["duration_s"], rel=1e-9)


def test_simulated_gpu_run_gets_mfu_at_the_mixed_precision(
    local_settings: Settings, tmp_path: Path
) -> None:
    """bf16 autocast on a (simulated) H100: precision bf16, MFU against its bf16 peak."""
    gpu_settings = local_settings.model_copy(update={"simulate_gpus": 1})
    callback = CarbonCallback(settings=gpu_settings)
    trainer = make_trainer(tmp_path, [callback], bf16=True, eval_strategy="no")
    trainer.train()
    summary, _ = stored(local_settings, callback.runs[0].id)
    assert summary["simulated"] is True
    assert summary["compression"] == {
        "precision": "bf16", "weights_dtype": "fp32", "autocast": "bf16",
    }  # fmt: skip
    assert summary["energy_by_component_j"]["gpu"] > 0
    (gpu,) = [d["name"] for d in summary["devices"] if d["component"] == "gpu"]
    peak = peak_flops(match_gpu(gpu), "bf16")
    assert peak is not None
    assert summary["mfu"] == pytest.approx(
        summary["flops"] / summary["duration_s"] / peak, rel=1e-9
    )


def test_per_step_deltas_and_totals_go_to_the_active_mlflow_run(
    local_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    try:
        with mlflow.start_run() as active:
            callback = CarbonCallback(settings=local_settings, sources=cpu())
            trainer = make_trainer(tmp_path, [callback], eval_strategy="no")
            trainer.train()
        client = mlflow.tracking.MlflowClient()
        run_id = active.info.run_id
        history = client.get_metric_history(run_id, "carbon/energy_j")
        # A delta at each logging step (2, 4, 6) and at the final log of train metrics.
        assert sorted({m.step for m in history}) == [2, 4, 6]
        summary, _ = stored(local_settings, callback.runs[0].id)
        assert math.fsum(m.value for m in history) <= summary["energy_j"]
        assert math.fsum(m.value for m in history) == pytest.approx(summary["energy_j"], rel=0.05)
        flops = client.get_metric_history(run_id, "carbon/flops")
        assert math.fsum(m.value for m in flops) == summary["flops"]
        data = client.get_run(run_id).data
        assert data.tags["carbon.run_id"] == callback.runs[0].id
        assert data.metrics["carbon/total/energy_j"] == pytest.approx(summary["energy_j"])
        assert data.metrics["carbon/total/flops"] == summary["flops"]
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(None)


def _state(*, main: bool, max_steps: int) -> SimpleNamespace:
    return SimpleNamespace(
        is_world_process_zero=main, total_flos=0.0, num_input_tokens_seen=0,
        global_step=0, max_steps=max_steps,
    )  # fmt: skip


def _control() -> SimpleNamespace:
    return SimpleNamespace(should_evaluate=False, should_log=False, should_training_stop=False)


def _event_args(world_size: int) -> SimpleNamespace:
    return SimpleNamespace(
        world_size=world_size, include_num_input_tokens_seen="no", bf16=False, fp16=False,
        eval_on_start=False, run_name="ddp", output_dir="out",
    )  # fmt: skip


def _train_as_rank(
    rank: int, settings: Settings, model: GPT2LMHeadModel, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Drive the callback as the Trainer drives it on one rank of a 2-rank job."""
    monkeypatch.setattr(carbon.tracking.api, "_job_runs", collections.Counter())
    rank_settings = settings.model_copy(update={"rank": rank, "local_rank": rank})
    callback = CarbonCallback(project="ddp", settings=rank_settings, sources=cpu())
    args, state, control = (
        _event_args(world_size=2),
        _state(main=rank == 0, max_steps=2),
        _control(),
    )
    callback.on_train_begin(args, state, control, model=model)
    batch = TokenDataset(BATCH * (rank + 1))[:]
    for _ in range(2):
        callback.on_step_begin(args, state, control)
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        state.global_step += 1
        state.total_flos += 1e9  # the job's total, the same on every rank
        callback.on_step_end(args, state, control)
    callback.on_log(args, state, control, logs={"loss": 1.5 + rank})
    callback.on_train_end(args, state, control)
    return callback.runs[0].id


def test_distributed_ranks_share_a_run_and_the_main_process_records_the_jobs_work(
    local_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = local_settings.model_copy(update={"world_size": 2, "job_id": "job-7"})
    model = GPT2LMHeadModel(tiny_config()).train()
    ids = {_train_as_rank(rank, settings, model, monkeypatch) for rank in (1, 0)}
    assert len(ids) == 1  # one run for the job
    summary, _ = stored(local_settings, ids.pop())
    assert summary["status"] == "completed"
    assert summary["flops"] == 2e9  # the Trainer's job total, recorded once (rank 0)
    assert summary["flops_method"] == FLOPS_METHOD
    assert summary["samples"] == 2 * BATCH * 1 + 2 * BATCH * 2  # each rank its own batches
    assert summary["tokens"] == 2 * BATCH * 3 * REAL
    assert summary["metrics"] == {"loss": 1.5}  # the main process's
    assert summary["steps"] == 4  # each rank's optimizer steps
    assert summary["tags"]["world_size"] == "2"


def test_distributed_without_a_job_id_measures_the_main_process_only(
    local_settings: Settings,
) -> None:
    model = GPT2LMHeadModel(tiny_config()).train()
    control = _control()
    runs = []
    for main in (False, True):
        callback = CarbonCallback(settings=local_settings, sources=cpu())
        state, args = _state(main=main, max_steps=1), _event_args(world_size=2)
        callback.on_train_begin(args, state, control, model=model)
        callback.on_train_end(args, state, control)
        runs.append(callback.runs)
    assert runs[0] == []
    summary, _ = stored(local_settings, runs[1][0].id)
    assert summary["tags"]["ranks_measured"] == "main process only (no job id)"


def test_exception_ending_a_thread_ends_only_the_runs_that_thread_started(
    local_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = GPT2LMHeadModel(tiny_config())
    args, control = _event_args(world_size=1), _control()
    callbacks = [CarbonCallback(settings=local_settings, sources=cpu()) for _ in range(2)]
    states = [_state(main=True, max_steps=1) for _ in callbacks]
    callbacks[0].on_train_begin(args, states[0], control, model=model)
    worker = threading.Thread(
        target=callbacks[1].on_train_begin, args=(args, states[1], control), kwargs={"model": model}
    )
    worker.start()
    worker.join()
    monkeypatch.setattr(_hf_crash, "_previous_thread_hook", lambda hook_args: None)
    error = RuntimeError("worker died")
    _hf_crash._thread_excepthook(
        SimpleNamespace(exc_type=RuntimeError, exc_value=error, exc_traceback=None, thread=worker)
    )
    assert callbacks[1].runs[0].status == "failed"
    assert callbacks[0].runs[0].status == "running"
    callbacks[0].on_train_end(args, states[0], control)
    summary, _ = stored(local_settings, callbacks[1].runs[0].id)
    assert summary["error"] == "RuntimeError: worker died"


def test_bad_arguments_fail_when_the_callback_is_made() -> None:
    with pytest.raises(ValueError, match="pue must be"):
        CarbonCallback(pue=0.5)
    with pytest.raises(ValueError, match="project must be"):
        CarbonCallback(project="")


@pytest.mark.slow
def test_example_runs_on_the_cpu_and_prints_the_stored_run(tmp_path: Path) -> None:
    example = Path(__file__).parents[1] / "examples" / "hf_trainer.py"
    env = {**os.environ, "CARBON_HOME": str(tmp_path / "home")}
    env.pop("CARBON_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, str(example)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "tokens" in result.stdout
    assert "J/FLOP" in result.stdout
    store = open_store(f"sqlite:///{tmp_path / 'home' / 'carbon.db'}")
    with store.session() as session:
        (run,) = session.scalars(select(Run))
        summary = run_summary(run)
    assert summary["status"] == "completed"
    assert summary["tokens"] > 0
    assert summary["flops"] > 0
    assert summary["j_per_flop"] > 0
    assert summary["flops_method"] == FLOPS_METHOD
    assert summary["id"] in result.stdout
