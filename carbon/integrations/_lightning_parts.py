"""What the Lightning callback reads from batches, trainers and Lightning's own loggers.

Kept apart from the callback so that each piece is a plain function with a test of its own.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from carbon.integrations.loggers import MetricLogger, MLflowLogger, WandbLogger

if TYPE_CHECKING:
    from carbon.tracking.run import Run

log = logging.getLogger(__name__)

_PRECISIONS = {"64": "fp64", "32": "fp32", "16": "fp16", "bf16": "bf16", "transformer": "fp8"}


def batch_size(batch: Any) -> int | None:
    """Rows in a batch: the length of its first tensor (in a tuple, list or dict), else None.

    A dict with ``input_ids`` counts the rows of ``input_ids``; a bare tensor, its first
    dimension; a list of plain items (strings for a predict step), its length.
    """
    if _is_tensor(batch):
        return int(batch.shape[0]) if batch.ndim > 0 else None
    if isinstance(batch, Mapping):
        if "input_ids" in batch and _is_tensor(batch["input_ids"]):
            return batch_size(batch["input_ids"])
        return _first(batch_size(value) for value in batch.values())
    if isinstance(batch, Sequence) and not isinstance(batch, str | bytes):
        found = _first(batch_size(item) for item in batch if _is_tensor(item) or _nested(item))
        return found if found is not None else len(batch)
    return None


def batch_tokens(batch: Any) -> int | None:
    """Tokens in a Hugging Face-style batch: the attention mask's ones, else ``input_ids``.

    Returns None for batches without those keys: Lightning itself knows no tokens, so a
    run counts them only when the batch names them or the user gives a function.
    """
    if not isinstance(batch, Mapping):
        return None
    mask: Any = batch.get("attention_mask")
    if _is_tensor(mask):
        return int(mask.sum().item())
    ids: Any = batch.get("input_ids")
    if _is_tensor(ids):
        return int(ids.numel())
    return None


def trainer_precision(precision: str | int | None) -> str | None:
    """The catalog precision of a Trainer's ``precision`` setting (``"bf16-mixed"`` -> bf16).

    Mixed precision computes the matrix products in the low precision, so that one counts
    for MFU; ``transformer-engine`` runs them in FP8.
    """
    if precision is None:
        return None
    return _PRECISIONS.get(str(precision).split("-")[0])


def run_compression(pl_module: Any, precision: str | int | None) -> dict[str, Any]:
    """A run's ``compression`` from the model and the Trainer's ``precision`` setting.

    Mixed precision is the autocast dtype of :func:`~carbon.integrations.model_facts.model_facts`;
    a ``-true`` precision (``bf16-true``, ``64-true``) is the dtype the Trainer converts the
    weights to, after this hook has seen them, so it is the run's precision unless the model
    is quantized (whose kernels decide).
    """
    from carbon.accounting.catalog import normalize_precision
    from carbon.integrations.model_facts import model_facts

    setting = str(precision)
    compute = trainer_precision(precision)
    mixed = "mixed" in setting
    facts = model_facts(pl_module, autocast=compute if mixed else None)
    compression = facts.compression()
    weights = normalize_precision(facts.dtype) if facts.dtype is not None else None
    if not mixed and compute is not None and facts.quantization is None and weights != compute:
        compression["precision"] = compute
        compression.pop("weights_dtype", None)
    compression["lightning_precision"] = setting
    return compression


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The finite scalar values of ``trainer.callback_metrics`` as floats."""
    kept = {}
    for key, value in metrics.items():
        if _is_tensor(value):
            if value.numel() != 1:
                continue
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            kept[str(key)] = float(value)
    return kept


def count_flops_once(run: Run, module: Any, hook: str) -> Callable[[], None]:
    """Wrap ``module.<hook>`` so that its next call runs under ``run.count_flops``.

    The wrapper is an attribute of the instance and removes itself when called, so the
    module's class is never touched and every later call is the module's own. Returns the
    function that removes it, for a call that ends before the hook runs.
    """
    original = getattr(module, hook)

    def restore() -> None:
        if hook in vars(module):
            delattr(module, hook)

    def counted(*args: Any, **kwargs: Any) -> Any:
        restore()
        from carbon.accounting.flop_counter import FlopCountError

        try:
            return run.count_flops(original, *args, **kwargs)
        except FlopCountError as exc:  # raised before the step runs: run it uncounted
            log.warning("carbon: FLOPs not counted: %s", exc)
            return original(*args, **kwargs)

    setattr(module, hook, counted)
    return restore


class LightningLoggerAdapter:
    """Carbon's figures through any Lightning logger's ``log_metrics`` (TensorBoard, CSV...).

    Args:
        logger: A ``lightning.pytorch.loggers.Logger``.
    """

    def __init__(self, logger: Any) -> None:
        self.logger = logger
        self.name = f"lightning:{type(logger).__name__}"

    def log_step(self, metrics: Mapping[str, float], step: int) -> None:
        """Log the figures at ``step``."""
        self.logger.log_metrics(dict(metrics), step=step)

    def log_totals(
        self, metrics: Mapping[str, float], carbon_run_id: str, link: str | None
    ) -> None:
        """Log the totals, and carbon's run id (and link) as hyperparameters."""
        self.logger.log_metrics(dict(metrics))
        params = {"carbon_run_id": carbon_run_id}
        if link is not None:
            params["carbon_link"] = link
        self.logger.log_hyperparams(params)
        self.logger.save()


def trainer_loggers(loggers: Sequence[Any]) -> list[MetricLogger]:
    """Metric loggers writing into the runs of a Trainer's own loggers.

    An ``MLFlowLogger`` gives an :class:`MLflowLogger` on its client and run id and a
    ``WandbLogger`` a :class:`WandbLogger` on its run, so the figures have the same names
    and places as outside Lightning; any other logger is used through ``log_metrics``.
    """
    from lightning.pytorch.loggers import MLFlowLogger as LightningMLflow
    from lightning.pytorch.loggers import WandbLogger as LightningWandb

    made: list[MetricLogger] = []
    for logger in loggers:
        if isinstance(logger, LightningMLflow):
            if logger.run_id is not None:
                made.append(MLflowLogger(logger.run_id, client=logger.experiment))
        elif isinstance(logger, LightningWandb):
            made.append(WandbLogger(logger.experiment))
        else:
            made.append(LightningLoggerAdapter(logger))
    return made


def _is_tensor(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "ndim") and hasattr(value, "numel")


def _nested(value: Any) -> bool:
    return isinstance(value, Mapping) or (
        isinstance(value, Sequence) and not isinstance(value, str | bytes)
    )


def _first(values: Any) -> int | None:
    for value in values:
        if value is not None:
            return int(value)
    return None
