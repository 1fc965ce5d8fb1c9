"""The demo job: train, compress and serve a digits classifier, each step a tracked run.

The job makes the runs a team would compare on the dashboard's compression page: the
teacher's training, its inference in fp32, with dynamic int8 quantization and after
magnitude pruning, the distillation of a small student and the student's inference. All
variants come from the same trained teacher and serve the same test set, so their energy
per inference and their accuracy can be set side by side.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

import carbon
from carbon._format import format_duration, format_energy
from carbon.demo.compression import (
    is_quantized_linear,
    prune_global_l1,
    quantize_dynamic_int8,
    weight_sparsity,
)
from carbon.demo.config import DemoConfig
from carbon.demo.data import DigitsSplit, load_digits_split
from carbon.demo.inference import InferenceResult, timed_inference
from carbon.demo.models import (
    build_student,
    build_teacher,
    count_parameters,
    forward_flops_per_sample,
)
from carbon.demo.table import format_runs_table
from carbon.demo.training import DistillConfig, TrainConfig, accuracy, distill, train_classifier
from carbon.settings import Settings
from carbon.store.engine import mask_url

Echo = Callable[[str], None]

_BACKWARD_FACTOR = 2
"""A backward pass costs about twice the forward pass, so a training step is ~3x forward."""
_STUDENT_EPOCH_FACTOR = 2
"""The student trains for twice the teacher's epochs: a small network converges slower."""


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators so the demo repeats exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def default_threads(cpu_count: int | None) -> int:
    """Choose torch's thread count: one core fewer than the machine has, from 1 to 4.

    The spare core keeps the sampler thread and the store's writes from preempting a
    torch worker: with every core busy, intra-op threads wait on each other at each
    barrier and a tiny model slows down several times (measured on 2 cores). Beyond 4
    threads, the demo's small matrices gain nothing.
    """
    return max(1, min((cpu_count or 1) - 1, 4))


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[int]:
    """Set torch's intra-op thread count for the block, then restore the previous one."""
    previous = torch.get_num_threads()
    count = threads if threads is not None else default_threads(os.cpu_count())
    torch.set_num_threads(count)
    try:
        yield count
    finally:
        torch.set_num_threads(previous)


class _Demo:
    """The demo's steps, sharing the settings, the data and the list of summaries."""

    def __init__(self, settings: Settings, config: DemoConfig, echo: Echo) -> None:
        self.settings = settings
        self.config = config
        self.echo = echo
        self.summaries: list[dict[str, Any]] = []
        self.data: DigitsSplit = load_digits_split(seed=config.seed)
        self.teacher_config = TrainConfig(epochs=config.epochs, seed=config.seed)
        self.student_config = TrainConfig(
            epochs=_STUDENT_EPOCH_FACTOR * config.epochs, seed=config.seed
        )

    def _tags(self, model: str) -> dict[str, str]:
        return {"demo": "true", "dataset": "sklearn-digits", "model": model}

    def _done(self, run: carbon.Run, detail: str) -> dict[str, Any]:
        summary = run.summary()
        self.summaries.append(summary)
        self.echo(
            f"  {summary['name']}: {format_duration(summary['duration_s'])}, "
            f"{format_energy(summary['energy_j'])}; {detail}"
        )
        return summary

    def train_teacher(self) -> nn.Module:
        """Train the teacher as one tracked training run."""
        teacher = build_teacher(seed=self.config.seed)
        params = count_parameters(teacher)
        step_flops = (1 + _BACKWARD_FACTOR) * forward_flops_per_sample(teacher)
        self.echo(
            f"training the teacher MLP ({params:,} parameters) for {self.config.epochs} "
            f"epochs on {self.data.n_train:,} digits"
        )
        with carbon.track(
            project=self.config.project,
            name="teacher-train",
            kind="training",
            compression={"precision": "fp32"},
            tags=self._tags("mlp-teacher"),
            settings=self.settings,
        ) as run:
            loss = train_classifier(
                teacher,
                self.data,
                self.teacher_config,
                on_batch=lambda n: run.step(samples=n, flops=n * step_flops),
            )
            test_accuracy = accuracy(teacher, self.data.x_test, self.data.y_test)
            run.log_metrics(accuracy=test_accuracy, loss=loss, params=params)
        self._done(run, f"test accuracy {test_accuracy:.1%}")
        return teacher

    def serve(
        self,
        model: nn.Module,
        *,
        name: str,
        model_tag: str,
        compression: Mapping[str, Any],
        flops_per_sample: int,
        metrics: Mapping[str, float] | None = None,
    ) -> InferenceResult:
        """Serve ``model`` for the time budget as one tracked inference run."""
        with carbon.track(
            project=self.config.project,
            name=name,
            kind="inference",
            compression=compression,
            tags=self._tags(model_tag),
            settings=self.settings,
        ) as run:
            result = timed_inference(
                model,
                self.data,
                batch_size=self.config.batch_size,
                budget_s=self.config.inference_s,
                on_batch=lambda n: run.step(samples=n, flops=n * flops_per_sample),
            )
            run.log_metrics(
                accuracy=result.accuracy,
                passes=result.passes,
                inferences_per_s=result.inferences_per_s,
                **(metrics or {}),
            )
        self._done(
            run,
            f"{result.inferences:,} inferences, accuracy {result.accuracy:.1%}",
        )
        return result

    def serve_variants(self, teacher: nn.Module) -> None:
        """Serve the teacher as it is, quantized to int8, and pruned at each sparsity."""
        params = count_parameters(teacher)
        flops = forward_flops_per_sample(teacher)
        self.echo(
            f"serving the test set ({self.data.n_test} digits, batches of "
            f"{self.config.batch_size}) for {self.config.inference_s:g} s per setting"
        )
        self.serve(
            teacher,
            name="teacher-fp32",
            model_tag="mlp-teacher",
            compression={"precision": "fp32"},
            flops_per_sample=flops,
            metrics={"params": params},
        )
        quantized = quantize_dynamic_int8(teacher)
        layers = sum(1 for module in quantized.modules() if is_quantized_linear(module))
        self.serve(
            quantized,
            name="teacher-int8",
            model_tag="mlp-teacher",
            compression={"precision": "int8", "quantization": "dynamic"},
            flops_per_sample=flops,
            metrics={"params": params, "quantized_layers": layers},
        )
        for sparsity in self.config.sparsities:
            pruned = prune_global_l1(teacher, sparsity)
            self.serve(
                pruned,
                name=f"teacher-pruned-{round(sparsity * 100)}",
                model_tag="mlp-teacher",
                compression={
                    "precision": "fp32",
                    "pruning": "l1_unstructured",
                    "sparsity": sparsity,
                },
                flops_per_sample=flops,
                metrics={"params": params, "sparsity": weight_sparsity(pruned)},
            )

    def distill_student(self, teacher: nn.Module) -> None:
        """Distill the student as a tracked training run, then serve it."""
        student = build_student(seed=self.config.seed)
        distill_config = DistillConfig()
        teacher_params = count_parameters(teacher)
        params = count_parameters(student)
        student_flops = forward_flops_per_sample(student)
        step_flops = (1 + _BACKWARD_FACTOR) * student_flops + forward_flops_per_sample(teacher)
        compression: dict[str, Any] = {
            "precision": "fp32",
            "distillation": "student",
            "teacher_params": teacher_params,
            "params": params,
        }
        self.echo(
            f"distilling a student MLP ({params:,} parameters, "
            f"{teacher_params / params:.0f}x fewer) for {self.student_config.epochs} epochs"
        )
        with carbon.track(
            project=self.config.project,
            name="student-distill",
            kind="training",
            compression={
                **compression,
                "temperature": distill_config.temperature,
                "alpha": distill_config.alpha,
            },
            tags=self._tags("mlp-student"),
            settings=self.settings,
        ) as run:
            loss = distill(
                teacher,
                student,
                self.data,
                self.student_config,
                distill_config,
                on_batch=lambda n: run.step(samples=n, flops=n * step_flops),
            )
            test_accuracy = accuracy(student, self.data.x_test, self.data.y_test)
            run.log_metrics(accuracy=test_accuracy, loss=loss, params=params)
        self._done(run, f"test accuracy {test_accuracy:.1%}")
        self.serve(
            student,
            name="student-fp32",
            model_tag="mlp-student",
            compression=compression,
            flops_per_sample=student_flops,
            metrics={"params": params},
        )


def run_job(settings: Settings, config: DemoConfig, echo: Echo) -> list[dict[str, Any]]:
    """Run the demo and return the summaries of the runs it stored.

    Args:
        settings: Where the runs are stored, their region and PUE.
        config: Epochs, inference budget, pruning levels, seed and threads.
        echo: Receives the progress lines and the final table.

    Returns:
        One summary per run, in the order the runs were made (``Run.summary()`` shape).
    """
    started = time.perf_counter()
    with _torch_threads(config.threads) as threads:
        seed_everything(config.seed)
        echo(
            f"carbon demo: digits classifier on {threads} CPU thread(s), project {config.project!r}"
        )
        demo = _Demo(settings, config, echo)
        teacher = demo.train_teacher()
        demo.serve_variants(teacher)
        demo.distill_student(teacher)
    echo("")
    echo(format_runs_table(demo.summaries))
    echo("")
    echo(
        f"{len(demo.summaries)} runs in {time.perf_counter() - started:.0f} s, stored in "
        f"{mask_url(settings.resolved_database_url)}; see them with `carbon runs list`"
    )
    echo("their sustainability report: `carbon report --output report.html` (or .pdf, .csv)")
    return demo.summaries
