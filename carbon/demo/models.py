"""The demo's models: a teacher MLP and a smaller student for distillation.

Multi-layer perceptrons keep the demo fast on two CPU cores while still being made of the
``nn.Linear`` layers that dynamic quantization and magnitude pruning act on, so every
compression setting the demo compares applies to the same kind of network.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from carbon.demo.data import N_CLASSES, N_FEATURES

TEACHER_HIDDEN = (1024, 512)
STUDENT_HIDDEN = (64,)


class MLP(nn.Module):
    """A classifier of linear layers with ReLU activations between them.

    Attributes:
        layers: The network, a sequence of ``Linear`` and ``ReLU`` modules.
    """

    def __init__(
        self,
        hidden: Sequence[int],
        *,
        n_inputs: int = N_FEATURES,
        n_classes: int = N_CLASSES,
    ) -> None:
        super().__init__()
        if any(width <= 0 for width in hidden):
            raise ValueError(f"hidden layer widths must be positive, got {list(hidden)}")
        widths = [n_inputs, *hidden, n_classes]
        modules: list[nn.Module] = []
        for index, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
            if index > 0:
                modules.append(nn.ReLU())
            modules.append(nn.Linear(fan_in, fan_out))
        self.layers = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the class logits of a batch of flattened images."""
        out: torch.Tensor = self.layers(x)
        return out


def build_teacher(*, seed: int = 0) -> MLP:
    """Build the full-size model with seeded initial weights."""
    torch.manual_seed(seed)
    return MLP(TEACHER_HIDDEN)


def build_student(*, seed: int = 0) -> MLP:
    """Build the small model that learns from the teacher, with seeded initial weights."""
    torch.manual_seed(seed)
    return MLP(STUDENT_HIDDEN)


def count_parameters(model: nn.Module) -> int:
    """Count the parameters of a model (weights and biases of every layer)."""
    return sum(parameter.numel() for parameter in model.parameters())


def forward_flops_per_sample(model: nn.Module) -> int:
    """Count the floating-point operations of one forward pass for one example.

    Each ``Linear`` layer costs one multiply and one add per weight (``2 * in * out``)
    plus one add per bias; activations are left out, as is usual for model FLOPs. Zero
    weights left by unstructured pruning are still multiplied by dense kernels, so they
    count too.

    Args:
        model: A network whose arithmetic is in ``nn.Linear`` layers.

    Returns:
        FLOPs of a single-example forward pass.
    """
    flops = 0
    for module in model.modules():
        if isinstance(module, nn.Linear):
            flops += 2 * module.in_features * module.out_features
            if module.bias is not None:
                flops += module.out_features
    return flops
