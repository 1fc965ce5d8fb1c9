"""Serving a model over the held-out set for a fixed time, counting every inference.

A single pass over 540 test images takes milliseconds, far below the one-second resolution
of the energy sampler. Repeating whole passes until a time budget is spent gives every
compression setting a run long enough to measure, and dividing its energy by the
inferences served gives a per-inference figure the settings can be compared on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from torch import nn

from carbon.demo.data import DigitsSplit, iter_batches
from carbon.demo.training import BatchCallback, predict


@dataclass(frozen=True)
class InferenceResult:
    """What a timed inference loop did.

    Attributes:
        accuracy: Share of test examples classified correctly, in [0, 1].
        passes: Complete passes over the test set.
        inferences: Examples classified in all (``passes`` times the test set size).
        elapsed_s: Wall time of the loop.
    """

    accuracy: float
    passes: int
    inferences: int
    elapsed_s: float

    @property
    def inferences_per_s(self) -> float:
        """Throughput of the loop."""
        return self.inferences / self.elapsed_s if self.elapsed_s > 0 else 0.0


def timed_inference(
    model: nn.Module,
    data: DigitsSplit,
    *,
    batch_size: int,
    budget_s: float,
    on_batch: BatchCallback | None = None,
) -> InferenceResult:
    """Classify the test set in batches, pass after pass, until ``budget_s`` has passed.

    Only whole passes are made (at least one), so every test example is served equally
    often and the accuracy is that of the full test set. The model is deterministic in
    eval mode, so the accuracy of the first pass holds for all of them.

    Args:
        model: The model to serve.
        data: The dataset split; only the test part is used.
        batch_size: Examples per forward call.
        budget_s: Wall time after which no new pass starts; 0 makes exactly one pass.
        on_batch: Called after each forward call with the batch's example count.

    Returns:
        Accuracy, passes, inference count and elapsed time.

    Raises:
        ValueError: ``budget_s`` is negative or the test set is empty.
    """
    if budget_s < 0:
        raise ValueError(f"budget_s must be >= 0, got {budget_s}")
    if data.n_test == 0:
        raise ValueError("the test set is empty")
    model.eval()
    start = time.perf_counter()
    deadline = start + budget_s
    passes, inferences, correct_first_pass = 0, 0, 0
    while passes == 0 or time.perf_counter() < deadline:
        for inputs, labels in iter_batches(data.x_test, data.y_test, batch_size=batch_size):
            predicted = predict(model, inputs)
            if passes == 0:
                correct_first_pass += int((predicted == labels).sum())
            inferences += len(labels)
            if on_batch is not None:
                on_batch(len(labels))
        passes += 1
    return InferenceResult(
        accuracy=correct_first_pass / data.n_test,
        passes=passes,
        inferences=inferences,
        elapsed_s=time.perf_counter() - start,
    )
