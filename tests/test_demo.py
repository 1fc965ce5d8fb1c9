"""Tests of the demo: its table, its torch parts with real training, and the tracked job."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from carbon._format import MISSING, format_duration, format_energy
from carbon.demo import INSTALL_HINT, MissingExtraError, run_demo
from carbon.demo.config import DemoConfig
from carbon.demo.table import (
    energy_per_inference_j,
    format_accuracy,
    format_compression,
    format_methods,
    format_runs_table,
)
from carbon.settings import load_settings

HAS_TORCH = all(importlib.util.find_spec(name) is not None for name in ("torch", "sklearn"))
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason=f"needs the torch extra: {INSTALL_HINT}")

if HAS_TORCH:
    import torch
    from torch import nn

    from carbon.demo.compression import (
        is_quantized_linear,
        prune_global_l1,
        quantize_dynamic_int8,
        weight_sparsity,
    )
    from carbon.demo.data import DigitsSplit, iter_batches, load_digits_split
    from carbon.demo.inference import timed_inference
    from carbon.demo.job import default_threads
    from carbon.demo.models import (
        MLP,
        build_student,
        build_teacher,
        count_parameters,
        forward_flops_per_sample,
    )
    from carbon.demo.training import (
        DistillConfig,
        TrainConfig,
        accuracy,
        distill,
        distillation_loss,
        train_classifier,
    )

QUICK_EPOCHS = 5
N_TRAIN, N_TEST = 1257, 540


# -- the closing table (pure functions) ----------------------------------------------


@pytest.mark.parametrize(
    ("energy_j", "text"),
    [
        (None, MISSING),
        (0.0, "0 J"),
        (1.77e-4, "177 µJ"),
        (4.214e-3, "4.21 mJ"),
        (54.66, "54.7 J"),
        (393.2, "393 J"),
        (999.7, "1 kJ"),
        (1234.0, "1.23 kJ"),
        (2.5e6, "2.5 MJ"),
        (5e-7, "0.5 µJ"),
    ],
)
def test_format_energy_picks_an_si_prefix(energy_j: float | None, text: str) -> None:
    assert format_energy(energy_j) == text


def test_format_duration_and_accuracy_carry_units() -> None:
    assert format_duration(12.345) == "12.3 s"
    assert format_duration(None) == MISSING
    assert format_accuracy(0.9777) == "97.8 %"
    assert format_accuracy(None) == MISSING


def test_format_compression_puts_precision_first() -> None:
    assert format_compression({"precision": "fp32"}) == "fp32"
    assert (
        format_compression({"quantization": "dynamic", "precision": "int8"})
        == "int8 quantization=dynamic"
    )
    assert format_compression({"pruning": "l1_unstructured"}) == "pruning=l1_unstructured"
    assert format_compression({}) == MISSING
    assert format_compression(None) == MISSING


def test_format_methods_lists_known_components_only() -> None:
    methods = {"gpu": None, "cpu": "tdp_estimate", "ram": "ram_estimate"}
    assert format_methods(methods) == "cpu:tdp_estimate ram:ram_estimate"
    assert format_methods({"gpu": "nvml_counter", "cpu": None}) == "gpu:nvml_counter"
    assert format_methods({"gpu": None, "cpu": None, "ram": None}) == MISSING
    assert format_methods(None) == MISSING


def test_energy_per_inference_only_for_inference_runs_with_samples() -> None:
    assert energy_per_inference_j({"kind": "inference", "energy_j": 10.0, "samples": 4}) == 2.5
    assert energy_per_inference_j({"kind": "training", "energy_j": 10.0, "samples": 4}) is None
    assert energy_per_inference_j({"kind": "inference", "energy_j": 10.0, "samples": 0}) is None
    assert energy_per_inference_j({"kind": "inference", "energy_j": None, "samples": 4}) is None


def _summary(**overrides: Any) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "name": "teacher-int8",
        "kind": "inference",
        "compression": {"precision": "int8", "quantization": "dynamic"},
        "duration_s": 5.04,
        "energy_j": 116.0,
        "samples": 396_360,
        "metrics": {"accuracy": 0.978},
        "energy_method": {"gpu": None, "cpu": "tdp_estimate", "ram": "ram_estimate"},
        "j_per_flop": 3.5e-10,
        "mfu": 1.2e-5,
    }
    summary.update(overrides)
    return summary


def test_format_runs_table_lays_out_one_aligned_row_per_run() -> None:
    table = format_runs_table(
        [
            _summary(),
            _summary(
                name="teacher-train",
                kind="training",
                compression={"precision": "fp32"},
                energy_j=None,
                metrics={},
                energy_method=None,
                j_per_flop=None,
                mfu=None,
            ),
        ]
    )
    header, rule, int8_row, train_row = table.split("\n")
    assert header.split() == [
        "run",
        "kind",
        "compression",
        "duration",
        "energy",
        "J/inference",
        "J/FLOP",
        "MFU",
        "accuracy",
        "energy",
        "method",
    ]
    assert set(rule.replace(" ", "")) == {"-"}
    assert "int8 quantization=dynamic" in int8_row
    assert "5.0 s" in int8_row
    assert "116 J" in int8_row
    assert "293 µJ" in int8_row
    assert "97.8 %" in int8_row
    assert int8_row.endswith("cpu:tdp_estimate ram:ram_estimate")
    assert "350 pJ" in int8_row
    assert "0.0012 %" in int8_row
    assert train_row.count(MISSING) == 6
    energy_end = header.index("J/inference") - 2
    assert int8_row[energy_end - 5 : energy_end] == "116 J"
    assert train_row[energy_end - 1] == MISSING


def test_format_runs_table_without_runs_is_just_the_header() -> None:
    assert len(format_runs_table([]).split("\n")) == 2


# -- light imports and bad input -------------------------------------------------------


def test_importing_carbon_and_the_demo_entry_point_does_not_import_torch() -> None:
    code = (
        "import sys, carbon, carbon.demo; "
        "assert 'torch' not in sys.modules and 'sklearn' not in sys.modules, 'heavy import'"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_run_demo_without_the_extra_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "torch" else real_find_spec(name, *args)

    monkeypatch.setattr("carbon._extras.importlib.util.find_spec", find_spec)
    with pytest.raises(MissingExtraError, match=r"pip install 'carbon-ledger\[torch\]'") as info:
        run_demo(load_settings(home=tmp_path), echo=lambda _line: None)
    assert isinstance(info.value, ImportError)
    assert "torch" in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kwargs", [{"epochs": 0}, {"inference_s": -1.0}, {"inference_s": float("nan")}]
)
def test_run_demo_rejects_bad_parameters_before_any_run(
    tmp_path: Path, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match=r"epochs|inference_s"):
        run_demo(load_settings(home=tmp_path), echo=lambda _line: None, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_demo_config_rejects_out_of_range_values() -> None:
    with pytest.raises(ValueError, match="sparsities"):
        DemoConfig(sparsities=(1.0,))
    with pytest.raises(ValueError, match="batch_size"):
        DemoConfig(batch_size=0)
    with pytest.raises(ValueError, match="threads"):
        DemoConfig(threads=0)


# -- data, models, training and compression with real torch ----------------------------


@pytest.fixture(scope="module")
def digits() -> DigitsSplit:
    return load_digits_split()


@pytest.fixture(scope="module")
def teacher(digits: DigitsSplit) -> nn.Module:
    model = build_teacher(seed=0)
    train_classifier(model, digits, TrainConfig(epochs=QUICK_EPOCHS))
    return model


@pytest.fixture(scope="module")
def teacher_accuracy(teacher: nn.Module, digits: DigitsSplit) -> float:
    return accuracy(teacher, digits.x_test, digits.y_test)


@needs_torch
def test_digits_split_is_stratified_scaled_and_repeatable(digits: DigitsSplit) -> None:
    assert (digits.n_train, digits.n_test) == (N_TRAIN, N_TEST)
    assert digits.x_train.dtype == torch.float32
    assert digits.y_test.dtype == torch.int64
    assert float(digits.x_train.min()) >= 0.0
    assert float(digits.x_train.max()) == 1.0
    assert torch.bincount(digits.y_test, minlength=10).min() >= 50
    again = load_digits_split()
    assert torch.equal(again.x_test, digits.x_test)
    assert not torch.equal(load_digits_split(seed=1).y_test, digits.y_test)
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits_split(test_fraction=1.0)


@needs_torch
def test_iter_batches_covers_every_example_once(digits: DigitsSplit) -> None:
    batches = list(iter_batches(digits.x_test, digits.y_test, batch_size=64))
    assert [len(labels) for _, labels in batches] == [64] * 8 + [28]
    assert torch.equal(torch.cat([labels for _, labels in batches]), digits.y_test)
    shuffled = list(
        iter_batches(
            digits.x_test,
            digits.y_test,
            batch_size=64,
            generator=torch.Generator().manual_seed(0),
        )
    )
    labels = torch.cat([labels for _, labels in shuffled])
    assert not torch.equal(labels, digits.y_test)
    assert torch.equal(labels.sort().values, digits.y_test.sort().values)
    with pytest.raises(ValueError, match="batch_size"):
        next(iter_batches(digits.x_test, digits.y_test, batch_size=0))


@needs_torch
def test_models_count_parameters_and_flops_from_their_layers() -> None:
    model = MLP((8,), n_inputs=4, n_classes=3)
    assert count_parameters(model) == (4 * 8 + 8) + (8 * 3 + 3)
    assert forward_flops_per_sample(model) == 2 * (4 * 8 + 8 * 3) + (8 + 3)
    assert model(torch.zeros(5, 4)).shape == (5, 3)
    with pytest.raises(ValueError, match="positive"):
        MLP((0,))


@needs_torch
def test_student_is_much_smaller_than_teacher() -> None:
    teacher_params = count_parameters(build_teacher())
    student_params = count_parameters(build_student())
    assert student_params * 50 < teacher_params


@needs_torch
def test_building_a_model_is_deterministic() -> None:
    first, second = build_teacher(seed=3), build_teacher(seed=3)
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)


@needs_torch
def test_trained_teacher_classifies_digits(teacher_accuracy: float) -> None:
    assert teacher_accuracy >= 0.93


@needs_torch
def test_training_is_deterministic(digits: DigitsSplit, teacher: nn.Module) -> None:
    again = build_teacher(seed=0)
    counted: list[int] = []
    train_classifier(again, digits, TrainConfig(epochs=QUICK_EPOCHS), on_batch=counted.append)
    assert sum(counted) == QUICK_EPOCHS * N_TRAIN
    for a, b in zip(teacher.parameters(), again.parameters(), strict=True):
        assert torch.allclose(a, b)


@needs_torch
def test_dynamic_int8_replaces_every_linear_and_keeps_accuracy(
    teacher: nn.Module, digits: DigitsSplit, teacher_accuracy: float
) -> None:
    quantized = quantize_dynamic_int8(teacher)
    n_linear = sum(isinstance(m, nn.Linear) for m in teacher.modules())
    assert sum(is_quantized_linear(m) for m in quantized.modules()) == n_linear == 3
    assert not any(isinstance(m, nn.Linear) for m in quantized.modules())
    assert all(isinstance(m, nn.Linear) for m in teacher.layers if not isinstance(m, nn.ReLU))
    quantized_accuracy = accuracy(quantized, digits.x_test, digits.y_test)
    assert abs(quantized_accuracy - teacher_accuracy) <= 0.02


@needs_torch
@pytest.mark.parametrize("sparsity", [0.5, 0.8])
def test_pruning_reaches_the_requested_sparsity_permanently(
    teacher: nn.Module, digits: DigitsSplit, teacher_accuracy: float, sparsity: float
) -> None:
    pruned = prune_global_l1(teacher, sparsity)
    n_weights = sum(m.weight.numel() for m in pruned.modules() if isinstance(m, nn.Linear))
    assert weight_sparsity(pruned) == pytest.approx(sparsity, abs=1 / n_weights)
    assert weight_sparsity(teacher) < 0.001
    for module in pruned.modules():
        assert not hasattr(module, "weight_mask")
        assert not getattr(module, "_forward_pre_hooks", {})
    names = {name for name, _ in pruned.named_parameters()}
    assert not any(name.endswith("_orig") for name in names)
    assert accuracy(pruned, digits.x_test, digits.y_test) >= teacher_accuracy - 0.05


@needs_torch
def test_pruning_rejects_out_of_range_sparsity(teacher: nn.Module) -> None:
    with pytest.raises(ValueError, match="sparsity"):
        prune_global_l1(teacher, 1.0)
    with pytest.raises(ValueError, match="Linear"):
        prune_global_l1(nn.Sequential(nn.ReLU()), 0.5)


@needs_torch
def test_distillation_loss_mixes_soft_and_hard_targets() -> None:
    generator = torch.Generator().manual_seed(0)
    student = torch.randn(6, 10, generator=generator)
    teacher = torch.randn(6, 10, generator=generator)
    labels = torch.arange(6)
    hard = torch.nn.functional.cross_entropy(student, labels)
    only_hard = distillation_loss(student, teacher, labels, DistillConfig(alpha=0.0))
    assert torch.allclose(only_hard, hard)
    same = distillation_loss(teacher, teacher, labels, DistillConfig(alpha=1.0))
    assert float(same) == pytest.approx(0.0, abs=1e-6)
    assert float(distillation_loss(student, teacher, labels, DistillConfig(alpha=1.0))) > 0
    with pytest.raises(ValueError, match="temperature"):
        DistillConfig(temperature=0.0)


@needs_torch
def test_distilled_student_learns_from_the_teacher(teacher: nn.Module, digits: DigitsSplit) -> None:
    student = build_student(seed=0)
    before = [p.detach().clone() for p in teacher.parameters()]
    distill(teacher, student, digits, TrainConfig(epochs=2 * QUICK_EPOCHS), DistillConfig())
    assert accuracy(student, digits.x_test, digits.y_test) >= 0.85
    for a, b in zip(before, teacher.parameters(), strict=True):
        assert torch.equal(a, b)


@needs_torch
def test_timed_inference_counts_whole_passes(teacher: nn.Module, digits: DigitsSplit) -> None:
    counted: list[int] = []
    once = timed_inference(teacher, digits, batch_size=64, budget_s=0.0, on_batch=counted.append)
    assert (once.passes, once.inferences, sum(counted)) == (1, N_TEST, N_TEST)
    assert once.accuracy == accuracy(teacher, digits.x_test, digits.y_test)
    # A budget of several passes' time, so a second pass starts however loaded the machine is.
    budget_s = max(0.2, 4 * once.elapsed_s)
    longer = timed_inference(teacher, digits, batch_size=64, budget_s=budget_s)
    assert longer.passes > 1
    assert longer.inferences == longer.passes * N_TEST
    assert longer.elapsed_s >= budget_s
    assert longer.accuracy == once.accuracy


@needs_torch
def test_default_threads_leave_a_core_for_the_sampler() -> None:
    assert [default_threads(n) for n in (None, 1, 2, 3, 8, 64)] == [1, 1, 1, 2, 4, 4]


# -- the tracked job, end to end ------------------------------------------------------


@needs_torch
@pytest.mark.slow
def test_run_demo_stores_a_run_per_training_and_compression_setting(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, region="FR")
    lines: list[str] = []
    summaries = run_demo(settings, epochs=3, inference_s=1.0, echo=lines.append)

    by_name = {summary["name"]: summary for summary in summaries}
    assert len(by_name) == len(summaries) == 7
    training = [s for s in summaries if s["kind"] == "training"]
    inference = [s for s in summaries if s["kind"] == "inference"]
    assert [s["name"] for s in training] == ["teacher-train", "student-distill"]
    assert by_name["teacher-train"]["compression"] == {"precision": "fp32"}
    assert by_name["teacher-train"]["samples"] == 3 * N_TRAIN
    distillation = by_name["student-distill"]
    assert distillation["compression"]["distillation"] == "student"
    assert distillation["samples"] == 2 * 3 * N_TRAIN

    compressions = {json.dumps(s["compression"], sort_keys=True) for s in inference}
    assert len(inference) >= 4
    assert len(compressions) == len(inference)
    for summary in summaries:
        assert summary["status"] == "completed"
        assert summary["project"] == "digits"
        assert summary["energy_j"] is not None
        assert summary["energy_j"] > 0
        assert summary["co2e_g"] is not None
        assert summary["co2e_g"] > 0
        assert summary["flops"] is not None
        assert summary["flops"] > 0
        assert 0.0 <= summary["metrics"]["accuracy"] <= 1.0
        assert summary["tags"]["demo"] == "true"
    for summary in inference:
        passes = summary["metrics"]["passes"]
        assert passes >= 1
        assert summary["samples"] == passes * N_TEST
        assert summary["duration_s"] >= 1.0

    fp32 = by_name["teacher-fp32"]
    int8 = by_name["teacher-int8"]
    assert int8["compression"] == {"precision": "int8", "quantization": "dynamic"}
    assert int8["metrics"]["quantized_layers"] == 3
    assert abs(int8["metrics"]["accuracy"] - fp32["metrics"]["accuracy"]) <= 0.03
    for percent in (50, 80):
        pruned = by_name[f"teacher-pruned-{percent}"]
        assert pruned["compression"]["sparsity"] == percent / 100
        assert pruned["metrics"]["sparsity"] == pytest.approx(percent / 100, abs=1e-5)
    student = by_name["student-fp32"]
    assert student["compression"]["params"] < student["compression"]["teacher_params"]
    assert fp32["metrics"]["accuracy"] >= 0.9

    output = "\n".join(lines)
    assert "J/inference" in output
    assert all(name in output for name in by_name)
    assert lines[-2].endswith("see them with `carbon runs list`")
    assert lines[-1].startswith("their sustainability report: `carbon report --output")
    assert str(tmp_path / "carbon.db") in lines[-2]
