"""What the demo can vary, checked before anything is trained or stored.

This module imports neither torch nor scikit-learn, so the CLI can build and validate a
configuration (and show the defaults in its help) without the optional extra.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_EPOCHS = 40
DEFAULT_INFERENCE_S = 5.0


@dataclass(frozen=True)
class DemoConfig:
    """The demo's parameters; the defaults make a run of about a minute on 2 CPU cores.

    Attributes:
        project: Project the runs are stored under.
        epochs: Training epochs of the teacher; the student trains for twice as many.
        inference_s: Time budget of each inference run, in seconds; 0 serves the test set
            exactly once.
        batch_size: Examples per forward call during inference.
        sparsities: Pruning levels to evaluate, each a share of weights in [0, 1).
        seed: Seed of the split, of the initial weights and of the shuffles.
        threads: Intra-op threads for torch; ``None`` leaves one core for the sampler
            and uses the others, up to 4 (the models are too small to gain from more).
    """

    project: str = "digits"
    epochs: int = DEFAULT_EPOCHS
    inference_s: float = DEFAULT_INFERENCE_S
    batch_size: int = 64
    sparsities: tuple[float, ...] = (0.5, 0.8)
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.epochs <= 0:
            raise ValueError(f"epochs must be positive, got {self.epochs}")
        if not 0.0 <= self.inference_s < float("inf"):
            raise ValueError(f"inference_s must be a finite number >= 0, got {self.inference_s}")
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        for sparsity in self.sparsities:
            if not 0.0 <= sparsity < 1.0:
                raise ValueError(f"sparsities must be in [0, 1), got {sparsity}")
        if self.threads is not None and self.threads <= 0:
            raise ValueError(f"threads must be positive, got {self.threads}")
