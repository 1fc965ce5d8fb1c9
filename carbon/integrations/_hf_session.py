"""What one ``Trainer.train()`` call records into its run, whatever event asks for it.

:class:`TrainSession` holds the run of one ``train()`` and the bookkeeping between the
Trainer's counters and carbon's: the callback (:mod:`carbon.integrations.huggingface`) maps
the Trainer's events onto its methods.

**Work.** The Trainer publishes ``total_flos`` only at logging steps, checkpoints and the end
(``store_flos``), after the step's ``on_step_end``. So an optimizer step stays *pending*
until its FLOPs can be known: it is counted (one ``run.step``) when the next step ends, at a
log, before an evaluation, or at the end, with the samples, tokens and FLOPs that arrived
since the previous count. The totals are exact; per-second work rows get FLOPs in lumps.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from carbon.tracking.state import RunStatus

if TYPE_CHECKING:
    from carbon.integrations._hf_counting import BatchCounter
    from carbon.integrations.loggers import MetricLogger
    from carbon.tracking.measure import Window
    from carbon.tracking.run import Run

log = logging.getLogger(__name__)

FLOPS_METHOD = "hf_trainer_6nd"
"""``flops_method`` of runs whose FLOPs are the Trainer's ``total_flos`` (6 N D by default)."""


@dataclass
class TrainSession:
    """The run of one ``train()`` call and what has been counted into it.

    Attributes:
        run: The run.
        state: The Trainer's ``TrainerState``, which it updates in place during training.
        loggers: MLflow/W&B loggers (main process only).
        counter: Counts the training batches' samples and tokens, when there is a model.
        trainer_tokens: Tokens come from the Trainer's ``num_input_tokens_seen``.
        records_job_work: This process records the Trainer's job-wide counts (FLOPs, and
            tokens when the Trainer counts them): the main process, or the only one.
        world_size: Processes of the training job.
        flops_done: ``total_flos`` already counted into the run.
        tokens_done: ``num_input_tokens_seen`` already counted into the run.
    """

    run: Run
    state: Any
    loggers: list[MetricLogger]
    counter: BatchCounter | None
    trainer_tokens: bool
    records_job_work: bool
    world_size: int
    flops_done: float
    tokens_done: int
    window: Window | None = None
    phase: str | None = None
    pending_step: bool = False
    eval_after_log: bool = False
    _held_samples: int = 0
    _held_tokens: int = 0
    _held_flops: float = 0.0

    def flush(self, *, read_device: bool, final: bool = False, extra_flops: float = 0.0) -> None:
        """Count the work done since the last count: one ``run.step`` for the pending step.

        Args:
            read_device: Also read token counts kept on the device (waits for the GPU).
            final: The run ends: work without a pending step is counted as a step too
                (the work of a step that did not finish, such as one whose backward raised).
            extra_flops: FLOPs the Trainer has counted but not yet published (its
                ``current_flos``), when the caller knows them.
        """
        if self.counter is not None:
            samples, tokens = self.counter.take(read_device=read_device)
            self._held_samples += samples
            self._held_tokens += tokens
        if self.records_job_work:
            if self.trainer_tokens:
                seen = int(self.state.num_input_tokens_seen or 0)
                self._held_tokens += seen - self.tokens_done
                self.tokens_done = seen
            flos = float(self.state.total_flos or 0.0)
            self._held_flops += flos - self.flops_done + extra_flops
            self.flops_done = flos
        held = self._held_samples or self._held_tokens or self._held_flops > 0
        if not self.pending_step and not (final and held):
            return  # work without an open step waits for the next one
        counts_tokens = (self.trainer_tokens and self.records_job_work) or (
            self.counter is not None and self.counter.count_tokens
        )
        flops = self._held_flops if self._held_flops > 0 else None
        seen = self.counter is not None and self.counter.seen
        self.run.step(
            samples=self._held_samples if seen else None,
            tokens=self._held_tokens if counts_tokens else None,
            flops=flops,
            flops_method=FLOPS_METHOD,
        )
        self._held_samples = self._held_tokens = 0
        self._held_flops = 0.0
        self.pending_step = False

    def switch(self, phase: str | None) -> None:
        """Close the open phase's window and open ``phase``'s (``None``: open none)."""
        if self.phase == phase:
            return
        if self.window is not None:
            self.window.__exit__(None, None, None)
        self.window, self.phase = None, None
        if phase is not None:
            window = self.run.measure(phase)
            window.__enter__()
            self.window, self.phase = window, phase

    def log_metrics(self, logs: Mapping[str, Any]) -> None:
        """Keep the finite numbers of a Trainer log as the run's metrics (latest wins)."""
        numbers = {
            str(key): float(value)
            for key, value in logs.items()
            if isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
        }
        if numbers:
            self.run.log_metrics(**numbers)

    def log_delta(self, step: int) -> None:
        """Hand ``run.delta()`` to the loggers, at the Trainer's global ``step``.

        In a distributed job the delta covers this process's devices only, so the FLOP
        figures, which are the whole job's, are left out of it.
        """
        if not self.loggers:
            return
        from carbon.integrations.loggers import log_delta

        delta = self.run.delta()
        if self.world_size > 1:
            delta = replace(delta, flops=None, j_per_flop=None, mfu=None)
        log_delta(self.loggers, delta, step)

    def end(self, status: RunStatus, error: str | None, *, extra_flops: float = 0.0) -> None:
        """Count the last work, close the phase, end the run, log its totals.

        The run ends whatever fails on the way (a GPU context broken by the crash being
        recorded): the work counted on the host and the energy are kept.
        """
        try:
            try:
                self.flush(read_device=True, final=True, extra_flops=extra_flops)
            except Exception:  # a broken device must not lose the work counted on the host
                log.warning("carbon: could not read the last token counts", exc_info=True)
                self.flush(read_device=False, final=True, extra_flops=extra_flops)
            try:
                self.switch(None)
            except Exception:
                if status is RunStatus.COMPLETED:
                    raise
                log.warning("carbon: could not close the %s phase of a run that failed", self.phase)
        finally:
            if self.counter is not None:
                self.counter.close()
            if not self.run.status.is_final:
                self.run._finish(status, error)
        if self.loggers:
            from carbon.integrations.loggers import log_run_totals

            log_run_totals(self.loggers, self.run)
