"""A PyTorch Lightning ``Callback``: one tracked run per fit, validate, test or predict call.

Three lines in a training script::

    from carbon.integrations.lightning import CarbonCallback

    trainer = L.Trainer(callbacks=[CarbonCallback(project="mnist")])
    trainer.fit(model, datamodule)

What the run holds:

- **phases** as measurement windows: ``train`` (the whole training loop, its validations
  inside it), one ``validation`` window per validation loop (not the sanity check), and
  ``test`` / ``predict`` for those calls; a ``validate`` call gets one ``validation`` window;
- **work**: one ``run.step`` per training batch in ``fit`` (validation batches of a fit are
  not training steps), one per batch in the other calls; samples from the batch's size and
  tokens from its ``attention_mask`` / ``input_ids``, or from the functions given;
- **FLOPs** counted once per run (``flops_method`` ``counted``): the first training step
  runs under torch's FLOP counter (forward, backward and optimizer step, as Lightning runs
  them: the module's ``optimizer_step`` hook, or ``training_step`` with manual
  optimization), or the first ``validation_step`` / ``test_step`` / ``predict_step``;
  every step then counts that many;
- **precision** from the Trainer's ``precision`` (``bf16-mixed`` computes in bf16) and the
  model's dtype and quantization from :func:`carbon.integrations.model_facts.model_facts`;
- **metrics**: ``trainer.callback_metrics`` at the end;
- **an exception** inside the call (``on_exception``) ends the run ``failed`` with its error,
  Ctrl-C ``interrupted``; everything measured until then is stored.

Per-step figures (``run.delta()``) go, every ``log_every_n_steps`` batches, to the Trainer's
own loggers (an ``MLFlowLogger`` or ``WandbLogger`` gets them in its run) and to an active
MLflow or W&B run (see :mod:`carbon.integrations.loggers`), from global rank 0 only. In a
distributed job every rank tracks its own devices and work into the one run carbon derives
for the job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from carbon._extras import MissingExtraError

try:
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - exercised without the extra installed
    raise MissingExtraError(
        "the PyTorch Lightning integration needs lightning, which is not installed; "
        "install the extra with: pip install 'carbon-ledger[lightning]'"
    ) from None

from carbon.integrations._lightning_parts import (
    batch_size,
    batch_tokens,
    count_flops_once,
    run_compression,
    scalar_metrics,
    trainer_loggers,
)
from carbon.integrations.loggers import (
    MetricLogger,
    log_delta,
    log_run_totals,
    make_loggers,
)
from carbon.tracking.api import Tracker, track

if TYPE_CHECKING:
    from carbon.tracking.measure import Window
    from carbon.tracking.run import Run

__all__ = ["CarbonCallback"]

log = logging.getLogger(__name__)

BatchCount = Callable[[Any], int | None]
"""A function from a batch to a count (its samples or tokens), or None when unknown."""

_PHASES = {"validate": "validation", "test": "test", "predict": "predict"}
_STEP_HOOKS = {"validate": "validation_step", "test": "test_step", "predict": "predict_step"}


@dataclass
class _Session:
    """The state of one tracked call (``fit``, ``validate``, ``test`` or ``predict``)."""

    stage: str
    tracker: Tracker
    run: Run
    loggers: list[MetricLogger]
    windows: dict[str, Window] = field(default_factory=dict)
    batches: int = 0
    flops_hook: str | None = None
    restore: Callable[[], None] | None = None


class CarbonCallback(pl.Callback):
    """Track each ``fit``, ``validate``, ``test`` and ``predict`` of a Trainer as a carbon run.

    Args:
        project: Project the runs belong to.
        name: Name of the runs (default: the LightningModule's class name).
        samples: Function from a batch to its samples (default: the length of its first
            tensor).
        tokens: Function from a batch to its tokens (default: the ones of its
            ``attention_mask``, else the size of its ``input_ids``, else none).
        count_flops: Count the FLOPs of the first step with torch's FLOP counter.
        report_to: Where per-step figures and totals go besides carbon's store: ``"auto"``
            (the Trainer's loggers, and an active MLflow or W&B run), ``"mlflow"``,
            ``"wandb"``, a list of those or of metric loggers, or ``"none"``.
        log_every_n_steps: Log per-step figures every this many batches (default: the
            Trainer's ``log_every_n_steps``).
        **track_options: Passed to :func:`carbon.track`: ``compression``, ``tags``,
            ``region``, ``pue``, ``settings``, ``sources``, ``simulated``. A ``precision``
            in ``compression`` wins over the Trainer's.

    Attributes:
        run: The run of the latest call, once it has started (``callback.run.summary()``).

    Raises:
        ValueError: An option is invalid (checked here, before any training starts).
        TypeError: An option :func:`carbon.track` does not take.
    """

    def __init__(
        self,
        project: str = "default",
        name: str | None = None,
        *,
        samples: BatchCount | None = None,
        tokens: BatchCount | None = None,
        count_flops: bool = True,
        report_to: str | Sequence[str | MetricLogger] | None = "auto",
        log_every_n_steps: int | None = None,
        **track_options: Any,
    ) -> None:
        if "kind" in track_options:
            raise TypeError("the kind of each run follows the Trainer call; do not pass kind=")
        if log_every_n_steps is not None and log_every_n_steps < 1:
            raise ValueError(f"log_every_n_steps must be >= 1, not {log_every_n_steps}")
        self.config = track(project, name, **track_options).config
        self.samples = samples or batch_size
        self.tokens = tokens or batch_tokens
        self.count_flops = count_flops
        self.report_to = report_to
        self.log_every_n_steps = log_every_n_steps
        self.run: Run | None = None
        self._session: _Session | None = None

    # -- one run per Trainer call --------------------------------------------------------

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Start the call's run, with the model's precision, on every rank."""
        stage = str(getattr(stage, "value", stage))  # Lightning passes its TrainerFn enum
        try:
            found = run_compression(pl_module, trainer.precision)
        except Exception as exc:  # reading the model must never stop the training
            log.warning("carbon: could not read the model's precision: %s", exc)
            found = {"lightning_precision": str(trainer.precision)}
        compression = {**found, **self.config.compression}
        config = replace(
            self.config,
            kind="training" if stage == "fit" else "inference",
            name=self.config.name or type(pl_module).__name__,
            compression=compression,
            tags={**self.config.tags, "lightning_stage": stage},
        )
        tracker = Tracker(config)
        loggers = self._loggers(trainer) if trainer.is_global_zero else []
        run = tracker.__enter__()
        self.run = run
        self._session = _Session(stage, tracker, run, loggers)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """End the call's run as completed."""
        self._end(trainer, None)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """End the call's run as failed (interrupted for Ctrl-C), keeping what it measured."""
        self._end(trainer, exception)

    # -- phases --------------------------------------------------------------------------

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Open the ``train`` window."""
        self._open("train")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Close the ``train`` window."""
        self._close("train")

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Open a ``validation`` window (not for the sanity check)."""
        if not trainer.sanity_checking:
            self._open("validation")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Close the ``validation`` window."""
        self._close("validation")

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Open the ``test`` window."""
        self._open("test")

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Close the ``test`` window."""
        self._close("test")

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Open the ``predict`` window."""
        self._open("predict")

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Close the ``predict`` window."""
        self._close("predict")

    # -- steps ---------------------------------------------------------------------------

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Count the FLOPs of the first training step as it runs."""
        hook = "optimizer_step" if pl_module.automatic_optimization else "training_step"
        self._count_flops_in(pl_module, hook)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Count the training step, and log the figures since the last logged step."""
        self._step(trainer, batch, trainer.global_step)

    def on_validation_batch_start(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """In ``validate``, count the FLOPs of the first step as it runs."""
        self._count_eval_flops("validate", pl_module)

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """In ``validate``, count the step (a fit's validation batches are no training steps)."""
        self._eval_step("validate", trainer, batch)

    def on_test_batch_start(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Count the FLOPs of the first test step as it runs."""
        self._count_eval_flops("test", pl_module)

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Count the test step."""
        self._eval_step("test", trainer, batch)

    def on_predict_batch_start(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Count the FLOPs of the first predict step as it runs."""
        self._count_eval_flops("predict", pl_module)

    def on_predict_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Count the predict step."""
        self._eval_step("predict", trainer, batch)

    # -- the machinery -------------------------------------------------------------------

    def _loggers(self, trainer: pl.Trainer) -> list[MetricLogger]:
        report_to = self.report_to
        if report_to is None or report_to == "none":
            return []
        wanted = [report_to] if isinstance(report_to, str) else list(report_to)
        from_trainer = trainer_loggers(trainer.loggers)
        names = {logger.name for logger in from_trainer}
        if "auto" in wanted:
            wanted = [*from_trainer, *wanted]
        else:  # a named tracker the Trainer already logs to is served by the Trainer's run
            wanted = [
                *(logger for logger in from_trainer if logger.name in wanted),
                *(item for item in wanted if not (isinstance(item, str) and item in names)),
            ]
        return make_loggers(wanted)

    def _open(self, phase: str) -> None:
        session = self._session
        if session is not None and phase not in session.windows:
            window = session.run.measure(phase)
            window.__enter__()
            session.windows[phase] = window

    def _close(self, phase: str) -> None:
        session = self._session
        if session is not None and phase in session.windows:
            session.windows.pop(phase).__exit__(None, None, None)

    def _count_flops_in(self, pl_module: pl.LightningModule, hook: str) -> None:
        """Run the module's ``hook`` under the FLOP counter the next time Lightning calls it."""
        session = self._session
        if session is None or not self.count_flops or session.flops_hook is not None:
            return
        session.flops_hook = hook
        session.restore = count_flops_once(session.run, pl_module, hook)

    def _count_eval_flops(self, stage: str, pl_module: pl.LightningModule) -> None:
        if self._session is not None and self._session.stage == stage:
            self._count_flops_in(pl_module, _STEP_HOOKS[stage])

    def _eval_step(self, stage: str, trainer: pl.Trainer, batch: Any) -> None:
        if self._session is not None and self._session.stage == stage:
            self._step(trainer, batch, self._session.batches + 1)

    def _step(self, trainer: pl.Trainer, batch: Any, step: int) -> None:
        session = self._session
        if session is None:
            return
        session.run.step(samples=self.samples(batch), tokens=self.tokens(batch))
        session.batches += 1
        every = self.log_every_n_steps
        if every is None:  # the Trainer's; 0 (a barebones Trainer) logs the end only
            every = getattr(trainer, "log_every_n_steps", 50)
        if session.loggers and every and session.batches % every == 0:
            log_delta(session.loggers, session.run.delta(), step)

    def _end(self, trainer: pl.Trainer, exception: BaseException | None) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        run, last = session.run, None
        try:
            if session.restore is not None:  # unwrap the hook if it was never called
                session.restore()
            for phase in list(session.windows)[::-1]:
                session.windows.pop(phase).__exit__(None, None, None)
            run.log_metrics(**scalar_metrics(trainer.callback_metrics))
            if session.loggers:
                last = run.delta()
        finally:
            if exception is None:
                session.tracker.__exit__(None, None, None)
            else:
                session.tracker.__exit__(type(exception), exception, exception.__traceback__)
        # The trackers are written to once the run has ended, so their time is not the run's.
        if last is not None:
            step = trainer.global_step if session.stage == "fit" else session.batches
            log_delta(session.loggers, last, step)
        log_run_totals(session.loggers, run)
