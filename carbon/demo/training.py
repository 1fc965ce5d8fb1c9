"""Training, knowledge distillation and evaluation of the demo's models.

Each training loop reports every batch through an ``on_batch`` callback with the number of
examples it processed, so the caller can count work (``run.step``) without this module
knowing about tracking.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812 - the name torch's own docs use
from torch import nn

from carbon.demo.data import DigitsSplit, iter_batches

BatchCallback = Callable[[int], None]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters shared by plain training and distillation.

    Attributes:
        epochs: Passes over the training set.
        batch_size: Examples per optimizer step.
        learning_rate: Adam learning rate.
        seed: Seed of the shuffle order.
    """

    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs <= 0:
            raise ValueError(f"epochs must be positive, got {self.epochs}")
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")


@dataclass(frozen=True)
class DistillConfig:
    """How the student mixes the teacher's soft targets with the true labels.

    Attributes:
        temperature: Softmax temperature applied to both models' logits; above 1 it
            exposes how the teacher ranks the wrong classes.
        alpha: Weight of the soft-target loss; ``1 - alpha`` goes to the hard labels.
    """

    temperature: float = 2.0
    alpha: float = 0.5

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be between 0 and 1, got {self.alpha}")


def train_classifier(
    model: nn.Module,
    data: DigitsSplit,
    config: TrainConfig,
    *,
    on_batch: BatchCallback | None = None,
) -> float:
    """Train a classifier on the training split with cross-entropy and Adam.

    Args:
        model: The network to train, in place.
        data: The dataset split; only the training part is used.
        config: Epochs, batch size, learning rate and shuffle seed.
        on_batch: Called after each optimizer step with the batch's example count.

    Returns:
        The mean loss of the last epoch.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)
    model.train()
    last_loss = float("nan")
    for _ in range(config.epochs):
        total, count = 0.0, 0
        for inputs, labels in iter_batches(
            data.x_train, data.y_train, batch_size=config.batch_size, generator=generator
        ):
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(inputs), labels)
            torch.autograd.backward(loss)
            optimizer.step()
            total += float(loss.detach()) * len(labels)
            count += len(labels)
            if on_batch is not None:
                on_batch(len(labels))
        last_loss = total / count
    model.eval()
    return last_loss


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    config: DistillConfig,
) -> torch.Tensor:
    """Combine the soft-target loss against the teacher with cross-entropy on labels.

    The soft part is the KL divergence between the temperature-softened distributions,
    scaled by ``T**2`` so its gradients keep the same size as the hard part whatever the
    temperature (Hinton et al., 2015).

    Args:
        student_logits: Logits of the student, shape ``(batch, classes)``.
        teacher_logits: Logits of the teacher for the same batch.
        labels: True classes, shape ``(batch,)``.
        config: Temperature and the weight of the soft part.

    Returns:
        The scalar loss.
    """
    t = config.temperature
    soft = F.kl_div(
        F.log_softmax(student_logits / t, dim=1),
        F.log_softmax(teacher_logits / t, dim=1),
        reduction="batchmean",
        log_target=True,
    ) * (t * t)
    hard = F.cross_entropy(student_logits, labels)
    return config.alpha * soft + (1.0 - config.alpha) * hard


def distill(
    teacher: nn.Module,
    student: nn.Module,
    data: DigitsSplit,
    config: TrainConfig,
    distill_config: DistillConfig,
    *,
    on_batch: BatchCallback | None = None,
) -> float:
    """Train the student on the teacher's soft targets and the true labels.

    Args:
        teacher: The trained model; it is only evaluated, never updated.
        student: The model to train, in place.
        data: The dataset split; only the training part is used.
        config: Epochs, batch size, learning rate and shuffle seed of the student.
        distill_config: Temperature and soft/hard weighting.
        on_batch: Called after each optimizer step with the batch's example count.

    Returns:
        The mean distillation loss of the last epoch.
    """
    optimizer = torch.optim.Adam(student.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)
    teacher.eval()
    student.train()
    last_loss = float("nan")
    for _ in range(config.epochs):
        total, count = 0.0, 0
        for inputs, labels in iter_batches(
            data.x_train, data.y_train, batch_size=config.batch_size, generator=generator
        ):
            with torch.no_grad():
                teacher_logits = teacher(inputs)
            optimizer.zero_grad(set_to_none=True)
            loss = distillation_loss(student(inputs), teacher_logits, labels, distill_config)
            torch.autograd.backward(loss)
            optimizer.step()
            total += float(loss.detach()) * len(labels)
            count += len(labels)
            if on_batch is not None:
                on_batch(len(labels))
        last_loss = total / count
    student.eval()
    return last_loss


def predict(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Return the predicted class of each input, without tracking gradients."""
    model.eval()
    with torch.inference_mode():
        logits: torch.Tensor = model(inputs)
    return logits.argmax(dim=1)


def accuracy(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of ``inputs`` the model classifies as ``labels``, in [0, 1]."""
    if int(labels.shape[0]) == 0:
        raise ValueError("accuracy needs at least one example")
    correct = int((predict(model, inputs) == labels).sum())
    return correct / int(labels.shape[0])
