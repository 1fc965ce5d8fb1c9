"""Carbon's figures as metrics of the active MLflow or Weights & Biases run.

Energy belongs next to loss in the tracker a team already reads. A *metric logger* writes
two kinds of figures into one experiment-tracker run:

- per step (or per epoch): what ``run.delta()`` measured since the previous call, as
  ``carbon/energy_j``, ``carbon/co2e_g``, ``carbon/flops``, ``carbon/j_per_flop``,
  ``carbon/mfu``, ... (only the figures carbon knows: an unknown figure is left out, never
  logged as 0), against the trainer's global step;
- at the end: the stored run's totals as ``carbon/total/energy_j``, ``carbon/total/co2e_g``,
  ``carbon/total/j_per_flop``, ``carbon/total/mfu``, ..., with carbon's run id and, when
  runs go to a team server, a link to the run's page (an MLflow tag ``carbon.run_id`` /
  ``carbon.link``; W&B config ``carbon_run_id`` / ``carbon_link``).

The callbacks build their loggers with :func:`make_loggers` on the main process only (global
rank 0), feed them with :func:`log_delta` and close with :func:`log_run_totals`. A logger
that fails (a tracker run already finished, a server away) logs a warning and never stops
training. mlflow and wandb are imported only when asked for, or when the program has
imported them already (``"auto"``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from carbon._extras import MissingExtraError
from carbon.errors import ConfigError

if TYPE_CHECKING:
    from carbon.tracking.delta import Delta
    from carbon.tracking.run import Run

log = logging.getLogger(__name__)

PREFIX = "carbon/"
"""Prefix of every per-step metric name."""
TOTAL_PREFIX = "carbon/total/"
"""Prefix of the run's totals, logged once at the end."""
TOTAL_FIELDS = (
    "energy_j",
    "co2e_g",
    "flops",
    "j_per_flop",
    "mfu",
    "tokens",
    "samples",
    "steps",
    "duration_s",
)
"""Figures of ``run.summary()`` logged as totals (those that are known)."""
REPORT_TO = ("auto", "mlflow", "wandb", "none")


@runtime_checkable
class MetricLogger(Protocol):
    """Where carbon's figures go: one run of an experiment tracker."""

    name: str

    def log_step(self, metrics: Mapping[str, float], step: int) -> None:
        """Log figures measured since the previous call, at the trainer's ``step``."""
        ...

    def log_totals(
        self, metrics: Mapping[str, float], carbon_run_id: str, link: str | None
    ) -> None:
        """Log the run's totals and how to find carbon's run (its id, a link when known)."""
        ...


class MLflowLogger:
    """Logs into one MLflow run through a client, so it works after the run has ended too.

    Args:
        run_id: The MLflow run to log into; ``None`` means the active run
            (``mlflow.active_run()``), looked up now.
        client: An ``mlflow.tracking.MlflowClient`` (Lightning's ``MLFlowLogger.experiment``);
            ``None`` makes one for the current tracking URI.

    Raises:
        MissingExtraError: mlflow is not installed.
        ConfigError: ``run_id`` is ``None`` and no MLflow run is active.
    """

    name = "mlflow"

    def __init__(self, run_id: str | None = None, *, client: Any = None) -> None:
        mlflow = _import("mlflow")
        if run_id is None:
            active = mlflow.active_run()
            if active is None:
                raise ConfigError(
                    "no active MLflow run to log carbon's figures into: call "
                    "mlflow.start_run() first, or pass run_id="
                )
            run_id = active.info.run_id
        self.run_id: str = run_id
        self.client = client if client is not None else mlflow.tracking.MlflowClient()

    def log_step(self, metrics: Mapping[str, float], step: int) -> None:
        """Log each figure as an MLflow metric at ``step``."""
        self._log(metrics, step)

    def log_totals(
        self, metrics: Mapping[str, float], carbon_run_id: str, link: str | None
    ) -> None:
        """Log the totals as metrics and tag the run with carbon's run id (and link)."""
        self._log(metrics, 0)
        from mlflow.entities import RunTag

        tags = [RunTag("carbon.run_id", carbon_run_id)]
        if link is not None:
            tags.append(RunTag("carbon.link", link))
        self.client.log_batch(self.run_id, tags=tags)

    def _log(self, metrics: Mapping[str, float], step: int) -> None:
        if not metrics:
            return
        from mlflow.entities import Metric

        now_ms = int(time.time() * 1000)
        batch = [Metric(key, float(value), now_ms, step) for key, value in metrics.items()]
        self.client.log_batch(self.run_id, metrics=batch)


class WandbLogger:
    """Logs into one Weights & Biases run.

    Per-step figures are plotted against their own x-axis, ``carbon/step`` (the trainer's
    global step), so they never move W&B's own step counter that the trainer's logger uses.
    Totals go to the run's summary.

    Args:
        run: The W&B run (Lightning's ``WandbLogger.experiment``); ``None`` means
            ``wandb.run``, looked up now.

    Raises:
        MissingExtraError: wandb is not installed.
        ConfigError: ``run`` is ``None`` and no W&B run is active (no ``wandb.init()``).
    """

    name = "wandb"

    def __init__(self, run: Any = None) -> None:
        wandb = _import("wandb")
        if run is None:
            run = wandb.run
            if run is None:
                raise ConfigError(
                    "no active W&B run to log carbon's figures into: call wandb.init() "
                    "first, or pass run="
                )
        self.run = run
        self.run.define_metric(f"{PREFIX}step", hidden=True)
        self.run.define_metric(f"{PREFIX}*", step_metric=f"{PREFIX}step")

    def log_step(self, metrics: Mapping[str, float], step: int) -> None:
        """Log the figures as one history row with ``carbon/step`` = ``step``."""
        if metrics:
            self.run.log({**metrics, f"{PREFIX}step": step})

    def log_totals(
        self, metrics: Mapping[str, float], carbon_run_id: str, link: str | None
    ) -> None:
        """Put the totals in the run's summary and carbon's run id (and link) in its config."""
        self.run.summary.update(dict(metrics))
        config = {"carbon_run_id": carbon_run_id}
        if link is not None:
            config["carbon_link"] = link
        self.run.config.update(config, allow_val_change=True)


def make_loggers(
    report_to: str | Sequence[str | MetricLogger] | None = "auto",
) -> list[MetricLogger]:
    """The metric loggers ``report_to`` asks for.

    Args:
        report_to: ``"auto"``: an MLflow logger when the program has imported mlflow and an
            MLflow run is active, and a W&B logger when ``wandb.run`` is set; ``"mlflow"`` or
            ``"wandb"`` (or a list of them): that logger, which must be possible;
            ``"none"``, ``None`` or ``[]``: none. Ready :class:`MetricLogger` objects may
            stand in the list too.

    Raises:
        ValueError: An unknown name.
        MissingExtraError: ``"mlflow"`` or ``"wandb"`` is asked for and not installed.
        ConfigError: ``"mlflow"`` or ``"wandb"`` is asked for and has no active run.
    """
    if report_to is None:
        return []
    wanted = [report_to] if isinstance(report_to, str) else list(report_to)
    loggers: list[MetricLogger] = []
    for item in wanted:
        if not isinstance(item, str):
            if not isinstance(item, MetricLogger):
                raise ValueError(f"report_to takes names or metric loggers, not {item!r}")
            loggers.append(item)
        elif item == "auto":
            loggers.extend(_active_loggers())
        elif item == "mlflow":
            loggers.append(MLflowLogger())
        elif item == "wandb":
            loggers.append(WandbLogger())
        elif item != "none":
            raise ValueError(f"report_to must be one of {', '.join(REPORT_TO)}, not {item!r}")
    return _unique(loggers)


def log_delta(loggers: Sequence[MetricLogger], delta: Delta, step: int) -> None:
    """Log what ``run.delta()`` returned to every logger, at the trainer's ``step``."""
    if not loggers:
        return
    metrics = delta.as_metrics(PREFIX)
    for logger in loggers:
        _safely(logger, "log_step", metrics, step)


def log_run_totals(loggers: Sequence[MetricLogger], run: Run) -> None:
    """Log the stored run's totals, its id and its link to every logger.

    Call it after the run has ended, so the totals are the final ones. When the stored run
    cannot be read back (a team server that refuses the ingest key reads), the id and link
    are still logged.
    """
    if not loggers:
        return
    try:
        summary = run.summary()
    except Exception as exc:  # an unreadable store must not fail the training script
        log.warning("carbon: could not read run %s back for the trackers: %s", run.id, exc)
        summary = {}
    metrics = totals(summary)
    link = run_link(run)
    for logger in loggers:
        _safely(logger, "log_totals", metrics, run.id, link)


def totals(summary: Mapping[str, Any]) -> dict[str, float]:
    """The known totals of a run summary as ``{"carbon/total/<figure>": value}``."""
    return {
        TOTAL_PREFIX + key: float(value)
        for key in TOTAL_FIELDS
        if isinstance(value := summary.get(key), int | float) and not isinstance(value, bool)
    }


def run_link(run: Run) -> str | None:
    """The run's page on the team server, or ``None`` when runs are stored locally."""
    from carbon.settings import load_settings

    settings = run.config.settings or load_settings()
    if not settings.remote or settings.server_url is None:
        return None
    return f"{settings.server_url}/run/{run.id}"


def _active_loggers() -> list[MetricLogger]:
    loggers: list[MetricLogger] = []
    mlflow = sys.modules.get("mlflow")
    if mlflow is not None and mlflow.active_run() is not None:
        loggers.append(MLflowLogger())
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        loggers.append(WandbLogger())
    return loggers


def _unique(loggers: list[MetricLogger]) -> list[MetricLogger]:
    """Drop a second logger into the same tracker run ("auto" and "mlflow" together)."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for logger in loggers:
        key = (logger.name, _target(logger))
        if key not in seen:
            seen.add(key)
            kept.append(logger)
    return kept


def _target(logger: MetricLogger) -> str:
    if isinstance(logger, MLflowLogger):
        return logger.run_id
    if isinstance(logger, WandbLogger):
        return str(getattr(logger.run, "id", id(logger.run)))
    return str(id(logger))


def _safely(logger: MetricLogger, method: str, *args: Any) -> None:
    try:
        getattr(logger, method)(*args)
    except Exception as exc:  # a tracker's failure must never stop the training
        log.warning("carbon: logging to %s failed: %s", logger.name, exc)


def _import(package: str) -> Any:
    try:
        return __import__(package)
    except ImportError:
        raise MissingExtraError(
            f"logging to {package} needs {package}, which is not installed; "
            f"install the extra with: pip install 'carbon-ledger[{package}]'"
        ) from None
