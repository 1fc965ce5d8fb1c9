"""``carbon demo``: a real, tracked workload that fills the store in about a minute.

It trains a small classifier on scikit-learn's bundled digits (no download) with torch on
the CPU, then serves it in fp32, with dynamic int8 quantization, pruned, and as a distilled
student; each training and each inference setting is its own tracked run, with its
compression settings and its accuracy, ready to compare on the dashboard.

torch and scikit-learn are the optional ``torch`` extra. This module imports neither:
:func:`run_demo` checks for them first and imports the job only then, so ``import carbon``
and the CLI's start-up stay light.

Modules: :mod:`~carbon.demo.data` (the dataset), :mod:`~carbon.demo.models` (teacher and
student), :mod:`~carbon.demo.training` (training, distillation, accuracy),
:mod:`~carbon.demo.compression` (quantization, pruning), :mod:`~carbon.demo.inference`
(the timed serving loop), :mod:`~carbon.demo.job` (the tracked runs) and
:mod:`~carbon.demo.table` (the closing table).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from carbon._extras import INSTALL_HINT, MissingExtraError, require_torch_extra
from carbon.demo.config import DEFAULT_EPOCHS, DEFAULT_INFERENCE_S, DemoConfig
from carbon.demo.table import format_runs_table

if TYPE_CHECKING:
    from carbon.settings import Settings

__all__ = [
    "DEFAULT_EPOCHS",
    "DEFAULT_INFERENCE_S",
    "INSTALL_HINT",
    "DemoConfig",
    "MissingExtraError",
    "format_runs_table",
    "run_demo",
]


def run_demo(
    settings: Settings,
    *,
    epochs: int = DEFAULT_EPOCHS,
    inference_s: float = DEFAULT_INFERENCE_S,
    echo: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Train, compress and serve the digits classifier, storing every step as a run.

    Makes, in order: the teacher's training run; inference runs of the teacher in fp32,
    dynamically quantized to int8, and pruned to 50 % and 80 % sparsity; the student's
    distillation (a training run); and the student's inference run. Prints progress, then
    a table of the runs and where they are stored.

    Args:
        settings: Store, region and PUE of the runs (``load_settings()``).
        epochs: Training epochs of the teacher (about 0.3 s each on one core); the
            much smaller student trains for twice as many.
        inference_s: Time budget of each of the five inference runs, in seconds.
        echo: Receives each line of output (``typer.echo`` in the CLI).

    Returns:
        The summaries of the runs (``Run.summary()`` shape), in the order they were made.

    Raises:
        MissingExtraError: torch or scikit-learn is not installed; the message says
            ``pip install 'carbon-ledger[torch]'``.
        ValueError: ``epochs`` or ``inference_s`` is out of range; nothing is run.
    """
    config = DemoConfig(epochs=epochs, inference_s=inference_s)
    require_torch_extra()
    from carbon.demo.job import run_job

    return run_job(settings, config, echo)
