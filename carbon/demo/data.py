"""The demo's dataset: scikit-learn's bundled 8x8 handwritten digits.

The digits ship inside scikit-learn (1,797 images, 10 classes), so the demo needs no
download and runs on an offline machine. Pixels are scaled to [0, 1] and the split is
stratified and seeded, so every run of the demo sees the same train and test sets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

N_FEATURES = 64
N_CLASSES = 10
_PIXEL_MAX = 16.0


@dataclass(frozen=True)
class DigitsSplit:
    """Train and test tensors of the digits dataset.

    Attributes:
        x_train: Training images, shape ``(n_train, 64)``, float32 in [0, 1].
        y_train: Training labels, shape ``(n_train,)``, int64 in 0..9.
        x_test: Held-out images, shape ``(n_test, 64)``.
        y_test: Held-out labels, shape ``(n_test,)``.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def n_train(self) -> int:
        """Number of training examples."""
        return int(self.y_train.shape[0])

    @property
    def n_test(self) -> int:
        """Number of held-out examples."""
        return int(self.y_test.shape[0])


def load_digits_split(*, test_fraction: float = 0.3, seed: int = 0) -> DigitsSplit:
    """Load the bundled digits and split them into stratified train and test sets.

    Args:
        test_fraction: Share of the examples held out for evaluation, in (0, 1).
        seed: Seed of the split, so the same examples are held out every time.

    Returns:
        The split as float32 image tensors and int64 label tensors.

    Raises:
        ValueError: ``test_fraction`` is not strictly between 0 and 1.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    bunch = load_digits()
    images = np.asarray(bunch.data, dtype=np.float32) / _PIXEL_MAX
    labels = np.asarray(bunch.target, dtype=np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    return DigitsSplit(
        x_train=torch.from_numpy(np.ascontiguousarray(x_train)),
        y_train=torch.from_numpy(np.ascontiguousarray(y_train)),
        x_test=torch.from_numpy(np.ascontiguousarray(x_test)),
        y_test=torch.from_numpy(np.ascontiguousarray(y_test)),
    )


def iter_batches(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(inputs, labels)`` batches, shuffled when a generator is given.

    A plain slicer rather than a ``DataLoader``: the data already sits in memory, and
    worker processes would only add start-up time to a demo that lasts seconds.

    Args:
        x: Inputs, first dimension the examples.
        y: Labels aligned with ``x``.
        batch_size: Examples per batch; the last batch may be smaller.
        generator: Seeded generator for the shuffle; ``None`` keeps the order.

    Yields:
        Consecutive batches covering every example once.

    Raises:
        ValueError: ``batch_size`` is not positive or ``x`` and ``y`` differ in length.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    n = int(x.shape[0])
    if int(y.shape[0]) != n:
        raise ValueError(f"inputs and labels differ in length: {n} != {int(y.shape[0])}")
    order = torch.randperm(n, generator=generator) if generator is not None else None
    for start in range(0, n, batch_size):
        if order is None:
            yield x[start : start + batch_size], y[start : start + batch_size]
        else:
            index = order[start : start + batch_size]
            yield x[index], y[index]
