"""Hugging Face Trainer: one tracked run per ``trainer.train()``.

Three lines::

    from carbon.integrations.huggingface import CarbonCallback

    trainer = Trainer(model=model, args=args, train_dataset=train,
                      callbacks=[CarbonCallback(project="bert-ft")])
    trainer.train()

or, with the same arguments, ``carbon.integrations.huggingface.track(trainer, project=...)``
before ``trainer.train()``, which also catches an exception raised out of ``train()``
exactly (see "Crashes" below).

What the run holds:

- **phases**: windows ``train`` and ``eval`` that partition the run (a ``train`` window per
  stretch of training, an ``eval`` window per evaluation inside ``train()``);
- **FLOPs**: the Trainer's ``total_flos`` (its ``floating_point_ops``: 6 x non-embedding
  parameters x input tokens per training batch, by default), ``flops_method`` =
  ``"hf_trainer_6nd"``; counted from where the run starts, so a resumed training counts
  only what it trained. The Trainer publishes its count at logging steps, checkpoints and
  the end, so per-second work rows get FLOPs in lumps at those points;
- **tokens**: the Trainer's ``num_input_tokens_seen`` when it counts them
  (``include_num_input_tokens_seen``), else counted by carbon from each training batch (the
  attention mask's sum, else every input id); the run's tag ``tokens_method`` says which;
- **samples**: the training batches' first dimension, counted by a forward hook;
  **steps**: optimizer steps;
- **metrics**: every finite number the Trainer logs (``loss``, ``eval_loss``,
  ``train_loss``, ...), the latest value of each;
- **compression**: the model's precision and quantization, read from the model
  (:mod:`carbon.integrations.model_facts`), with the Trainer's ``bf16``/``fp16`` mixed
  precision as the arithmetic's precision; the callback's ``compression=`` wins key by key.

At each logging step the callback takes ``run.delta()`` and hands it to the MLflow or W&B
run in use (:mod:`carbon.integrations.loggers`), then the totals at the end.

**Crashes.** The Trainer has no exception event. An exception that reaches the top of the
program (or of the thread training ran in) ends the run ``failed`` with the exception as its
error (``sys.excepthook``, ``threading.excepthook``), and a run still open when the
interpreter exits ends ``interrupted`` (``atexit``); a run left open by an exception the
program caught is ended ``failed`` when the same callback's next ``train()`` begins.
:func:`track` wraps ``trainer.train`` and ends the run the moment the exception leaves
``train()``, with the FLOPs of the batches since the last logging step. Either way,
everything measured until then is kept.

**Distributed training.** Every rank tracks its own devices into one run (carbon derives one
run id per job from ``TORCHELASTIC_RUN_ID``, ``SLURM_JOB_ID`` or ``CARBON_JOB_ID``). The
Trainer's FLOPs and token counts are the job's, so the main process records them, and the
metrics; each rank records the samples (and tokens, when carbon counts them) of its own
batches. Only the main process logs to MLflow/W&B, with the FLOP figures left out of the
per-step deltas (they would set one rank's energy against the whole job's FLOPs; the totals
at the end are the job's). Without a job id, only the main process tracks, and the run's tag
``ranks_measured`` says so.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carbon._extras import MissingExtraError
from carbon.integrations import _hf_crash
from carbon.integrations._hf_counting import BatchCounter
from carbon.integrations._hf_session import FLOPS_METHOD, TrainSession
from carbon.tracking.api import Tracker, _outcome
from carbon.tracking.api import track as _track
from carbon.tracking.state import RunStatus

try:
    import transformers
    from transformers import TrainerCallback
except ImportError:  # pragma: no cover - exercised without the extra installed
    raise MissingExtraError(
        "the Hugging Face integration needs transformers, which is not installed; "
        "install the extra with: pip install 'carbon-ledger[hf]'"
    ) from None

if TYPE_CHECKING:
    from transformers import Trainer, TrainerControl, TrainerState, TrainingArguments

    from carbon.settings import Settings
    from carbon.sources.base import PowerSource
    from carbon.tracking.run import Run

__all__ = ["FLOPS_METHOD", "CarbonCallback", "track"]

log = logging.getLogger(__name__)

RESTART_MESSAGE = (
    "train() began again before this run ended: an exception inside train() was caught "
    "before it reached carbon (auto_find_batch_size retrying after running out of memory?)"
)


class CarbonCallback(TrainerCallback):
    """A ``TrainerCallback`` that tracks each ``train()`` as one carbon run.

    Args:
        project: Project the runs belong to.
        name: Name of the runs (default: ``args.run_name`` when set, else the model's
            name or class).
        compression: Compression settings; they win over those read from the model.
        tags: Free labels, added to ``framework``, ``model`` and ``tokens_method``.
        region: Where the training runs (overrides ``CARBON_REGION``).
        pue: PUE of the facility (overrides ``CARBON_PUE``).
        settings: Settings to use instead of those from the environment.
        sources: Power sources to read instead of the detected ones.
        simulated: Mark the runs as measured on simulated hardware.
        report_to: Where per-step deltas and totals go: ``"auto"`` (the MLflow run or W&B
            run in use, if any), ``"mlflow"``, ``"wandb"``, a list, or ``"none"``.
        detect_model: Read precision and quantization from the model.

    Raises:
        ValueError: An argument is invalid (as for :func:`carbon.track`).
    """

    def __init__(
        self,
        project: str = "default",
        name: str | None = None,
        *,
        compression: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        region: str | None = None,
        pue: float | None = None,
        settings: Settings | None = None,
        sources: Sequence[PowerSource] | None = None,
        simulated: bool = False,
        report_to: str | Sequence[Any] | None = "auto",
        detect_model: bool = True,
    ) -> None:
        self._tracker = _track(
            project,
            name,
            "training",
            compression=compression,
            tags=tags,
            region=region,
            pue=pue,
            settings=settings,
            sources=sources,
            simulated=simulated,
        )
        self.report_to = report_to
        self.detect_model = detect_model
        self.runs: list[Run] = []
        self._active: TrainSession | None = None
        self._trainer: Trainer | None = None

    @property
    def run(self) -> Run | None:
        """The run of the current ``train()``, else of the last one; ``None`` before any."""
        return self.runs[-1] if self.runs else None

    # -- the Trainer's events -----------------------------------------------------------

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: Any = None,
        **kwargs: Any,
    ) -> None:
        """Start the run (on every rank of a distributed job carbon knows)."""
        if self._active is not None:
            self._end(RunStatus.FAILED, RESTART_MESSAGE)
        from carbon.settings import load_settings

        config = self._tracker.config
        settings = config.settings or load_settings()
        world_size = int(getattr(args, "world_size", 1) or 1)
        main = bool(state.is_world_process_zero)
        tags: dict[str, Any] = {"framework": "transformers"}
        if world_size > 1 and not settings.distributed:
            if not main:
                return
            log.warning(
                "carbon: distributed training without a job id carbon can see; only the main "
                "process is measured (set CARBON_JOB_ID to the same value on every rank)"
            )
            tags["ranks_measured"] = "main process only (no job id)"
        from carbon.integrations.loggers import make_loggers

        loggers = make_loggers(self.report_to) if main else []
        trainer_tokens = str(getattr(args, "include_num_input_tokens_seen", "no")) in (
            "True",
            "all",
            "non_padding",
        )
        records_job_work = main or world_size == 1
        compression: dict[str, Any] = {}
        if model is not None and self.detect_model:
            from carbon.integrations.model_facts import model_facts

            autocast = "bf16" if getattr(args, "bf16", False) else None
            autocast = "fp16" if getattr(args, "fp16", False) else autocast
            facts = model_facts(model, autocast=autocast)
            compression = facts.compression()
            if facts.adapter is not None:
                tags["adapter"] = facts.adapter
        tags.update(
            transformers_version=transformers.__version__,
            model=type(model).__name__ if model is not None else "unknown",
            tokens_method=_tokens_method(args) if trainer_tokens else "counted_from_batches",
        )
        name = self._run_name(args, model)
        run_config = dataclasses.replace(
            config,
            name=name,
            compression={**compression, **config.compression},
            tags={**tags, **config.tags},
        )
        run = Tracker(run_config).start(name)
        self.runs.append(run)
        try:
            counter = None
            if model is not None:
                counter = BatchCounter(model, count_tokens=not trainer_tokens)
        except BaseException as exc:
            run._finish(*_outcome(exc))
            raise
        self._active = TrainSession(
            run=run,
            state=state,
            loggers=loggers,
            counter=counter,
            trainer_tokens=trainer_tokens,
            records_job_work=records_job_work,
            world_size=world_size,
            flops_done=float(state.total_flos or 0.0),
            tokens_done=int(state.num_input_tokens_seen or 0),
        )
        _hf_crash.register(self)
        try:
            self._active.switch("eval" if getattr(args, "eval_on_start", False) else "train")
        except BaseException as exc:
            self._end_after(exc)
            raise

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Count the previous optimizer step; this one is counted once its FLOPs are known.

        The Trainer publishes its FLOPs at logging steps, after this event: a step stays
        open until the next step ends, a log, an evaluation or the end, whichever is first.
        """
        if (active := self._active) is None:
            return
        if active.pending_step:
            active.flush(read_device=False)
        active.pending_step = True
        self._before_evaluation(active, control)

    def on_epoch_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Prepare for an evaluation at the epoch's end."""
        if (active := self._active) is not None:
            self._before_evaluation(active, control)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Count the work so far, keep the logged metrics, hand a delta to the loggers."""
        if (active := self._active) is None:
            return
        active.flush(read_device=True)
        if state.is_world_process_zero and logs:
            active.log_metrics(logs)
        active.log_delta(state.global_step)
        if active.eval_after_log:
            active.eval_after_log = False
            active.switch("eval")

    def on_prediction_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """An evaluation batch: make sure the ``eval`` phase is open."""
        if (active := self._active) is not None and active.phase != "eval":
            active.flush(read_device=True)
            active.switch("eval")

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """The evaluation is over: back to the ``train`` phase, unless training is over too."""
        if (active := self._active) is None:
            return
        if state.is_world_process_zero and metrics:
            active.log_metrics(metrics)
        if state.global_step >= state.max_steps or control.should_training_stop:
            active.switch(None)  # the last evaluation: no training follows
        else:
            active.switch("train")

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Count the last work, end the run as completed, log its totals."""
        if self._active is not None:
            self._end(RunStatus.COMPLETED, None)

    # -- ending ---------------------------------------------------------------------------

    def _end_after(
        self, exc: BaseException | None, message: str | None = None, *, extra_flops: float = 0.0
    ) -> None:
        """End the open run after ``exc`` (failed, or interrupted for Ctrl-C), or ``message``.

        Without an exception the run ends ``interrupted`` with ``message``.
        """
        if self._active is None:
            return
        status, error = _outcome(exc) if exc is not None else (RunStatus.INTERRUPTED, message)
        self._end(status, error, extra_flops=extra_flops)

    def _end(self, status: RunStatus, error: str | None, *, extra_flops: float = 0.0) -> None:
        active, self._active = self._active, None
        if active is not None:
            _hf_crash.unregister(self)
            active.end(status, error, extra_flops=extra_flops)

    # -- helpers --------------------------------------------------------------------------

    def _before_evaluation(self, active: TrainSession, control: TrainerControl) -> None:
        """An evaluation follows (after the log, if there is one): plan the phase switch."""
        if not control.should_evaluate:
            return
        if control.should_log:
            active.eval_after_log = True
        else:
            active.flush(read_device=True)
            active.switch("eval")

    def _run_name(self, args: TrainingArguments, model: Any) -> str:
        if self._tracker.config.name:
            return self._tracker.config.name
        run_name = getattr(args, "run_name", None)
        if run_name and str(run_name) != str(getattr(args, "output_dir", None)):
            return str(run_name)[:200]
        path = str(getattr(model, "name_or_path", "") or "")
        if path.strip():
            return (Path(path).name or path)[:200]
        return type(model).__name__ if model is not None else "train"


def _tokens_method(args: TrainingArguments) -> str:
    value = str(getattr(args, "include_num_input_tokens_seen", "all"))
    return "trainer_non_padding" if value == "non_padding" else "trainer_all"


def track(trainer: Trainer, **kwargs: Any) -> CarbonCallback:
    """Track each ``trainer.train()`` as a run, ending it exactly when ``train()`` raises.

    Adds a :class:`CarbonCallback` made with ``kwargs`` to the trainer (or uses the one it
    has) and wraps the trainer's ``train`` so that an exception leaving it ends the run
    ``failed`` (``interrupted`` for Ctrl-C) with the exception as its error and the FLOPs
    of the batches since the last logging step, then propagates.

    Args:
        trainer: A ``transformers.Trainer``.
        **kwargs: Arguments of :class:`CarbonCallback`.

    Returns:
        The callback (``callback.run`` is the run of the latest ``train()``).

    Raises:
        ValueError: The trainer already has a CarbonCallback and ``kwargs`` were given.
    """
    existing = [cb for cb in trainer.callback_handler.callbacks if isinstance(cb, CarbonCallback)]
    if existing and kwargs:
        raise ValueError(
            "the trainer already has a CarbonCallback: give its arguments there, or none here"
        )
    callback = existing[0] if existing else CarbonCallback(**kwargs)
    if not existing:
        trainer.add_callback(callback)
    callback._trainer = trainer
    train: Callable[..., Any] = trainer.train
    if getattr(train, "__carbon_tracked__", False):
        return callback

    @functools.wraps(train)
    def tracked_train(*args: Any, **train_kwargs: Any) -> Any:
        try:
            return train(*args, **train_kwargs)
        except BaseException as exc:
            world_size = int(getattr(trainer.args, "world_size", 1) or 1)
            pending = float(getattr(trainer, "current_flos", 0.0) or 0.0)
            callback._end_after(exc, extra_flops=pending if world_size == 1 else 0.0)
            raise

    tracked_train.__carbon_tracked__ = True  # type: ignore[attr-defined]
    trainer.train = tracked_train  # type: ignore[method-assign]
    return callback
