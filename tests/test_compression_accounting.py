"""Compression labels and techniques, the Pareto front, the baseline and the savings."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon.accounting.compression import (
    TECHNIQUES,
    Saving,
    TradeoffPoint,
    choose_baseline,
    compression_kinds,
    compression_label,
    is_baseline,
    pareto_front,
    savings_vs_baseline,
)

FP32 = {"precision": "fp32"}
INT8 = {"precision": "int8", "quantization": "dynamic"}
PRUNED = {"precision": "fp32", "pruning": "l1_unstructured", "sparsity": 0.5}
STUDENT = {
    "precision": "fp32",
    "distillation": "student",
    "teacher_params": 1000,
    "params": 100,
    "temperature": 4.0,
    "alpha": 0.5,
}
GPTQ = {"quantization": "gptq", "bits": 4}


def point(run_id: str, energy_j: float, accuracy: float) -> TradeoffPoint:
    return TradeoffPoint(run_id=run_id, label=run_id, energy_per_item_j=energy_j, accuracy=accuracy)


# -- labels ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("compression", "label"),
    [
        (FP32, "fp32"),
        (INT8, "int8 (dynamic)"),
        (PRUNED, "fp32, pruned 50% (l1_unstructured)"),
        (STUDENT, "fp32, distilled student"),
        ({"precision": "fp32", "distillation": "student"}, "fp32, distilled student"),
        ({}, "none"),
        (None, "none"),
        (GPTQ, "4-bit gptq"),
        ({"precision": "int4", "quantization": "gptq", "bits": 4}, "4-bit gptq"),
        ({"bits": 4}, "4-bit"),
        ({"precision": "bf16"}, "bf16"),
        ({"precision": " BF16 "}, "bf16"),
        ({"pruning": "2:4"}, "pruned (2:4)"),
        ({"pruning": True, "sparsity": 0.9}, "pruned 90%"),
        ({"sparsity": 0.125}, "pruned 12.5%"),
        ({"pruning": "magnitude", "sparsity": 30}, "pruned 30 (magnitude)"),
        ({"baseline": True}, "baseline"),
        ({"precision": "fp32", "baseline": True}, "fp32, baseline"),
        ({"quantization": "dynamic"}, "quantized (dynamic)"),
        ({"quantization": True}, "quantized"),
        ({"precision": "fp16", "quantization": True}, "fp16, quantized"),
        ({"precision": "int8", "quantization": True}, "int8"),
        ({"precision": "fp32", "pruning": "none", "distillation": False}, "fp32"),
        ({"distillation": True}, "distilled"),
        (
            {"precision": "int8", "quantization": "static", "pruning": "2:4", "distillation": "s"},
            "int8 (static), pruned (2:4), distilled s",
        ),
        ({"lora_rank": 8}, "other"),
    ],
)
def test_compression_label(compression: dict[str, Any] | None, label: str) -> None:
    assert compression_label(compression) == label


def test_label_does_not_depend_on_key_order() -> None:
    assert compression_label(dict(reversed(list(PRUNED.items())))) == compression_label(PRUNED)


# -- techniques and baselines -------------------------------------------------------------


@pytest.mark.parametrize(
    ("compression", "kinds"),
    [
        (FP32, set()),
        ({"precision": "fp16"}, set()),
        ({"precision": "bf16"}, set()),
        ({"precision": "tf32"}, set()),
        ({}, set()),
        (INT8, {"quantization"}),
        ({"precision": "int8"}, {"quantization"}),
        ({"precision": "int4"}, {"quantization"}),
        ({"precision": "uint8"}, {"quantization"}),
        ({"precision": "fp8"}, {"quantization"}),
        ({"precision": "FP8_E4M3"}, {"quantization"}),
        ({"precision": "e5m2"}, {"quantization"}),
        ({"precision": "nf4"}, {"quantization"}),
        ({"bits": 4}, {"quantization"}),
        ({"bits": 16}, set()),
        (GPTQ, {"quantization"}),
        (PRUNED, {"pruning"}),
        ({"pruning": "2:4"}, {"pruning"}),
        ({"sparsity": 0.3}, {"pruning"}),
        ({"sparsity": 0}, set()),
        (STUDENT, {"distillation"}),
        ({"quantization": "none", "pruning": "", "distillation": None}, set()),
        ({"precision": "int8", "pruning": "2:4", "distillation": True}, set(TECHNIQUES)),
        ({"baseline": True}, set()),
    ],
)
def test_compression_kinds(compression: dict[str, Any], kinds: set[str]) -> None:
    assert compression_kinds(compression) == frozenset(kinds)


@pytest.mark.parametrize(
    ("compression", "expected"),
    [
        (FP32, True),
        ({"precision": "fp16"}, True),
        ({"precision": "bf16"}, True),
        ({}, True),
        (None, True),
        (INT8, False),
        (PRUNED, False),
        (STUDENT, False),
        (GPTQ, False),
        ({"baseline": True}, True),
        ({"precision": "int8", "baseline": True}, True),  # the flag wins
        ({"precision": "fp32", "baseline": False}, False),  # and rules out too
        ({"precision": "fp32", "baseline": "yes"}, True),  # only True counts as a flag
    ],
)
def test_is_baseline(compression: dict[str, Any] | None, expected: bool) -> None:
    assert is_baseline(compression) is expected


def test_choose_baseline_prefers_the_marked_run() -> None:
    fp32 = point("a", 0.010, 0.97)
    marked = point("b", 0.008, 0.96)
    chosen = choose_baseline(
        [(fp32, FP32), (marked, {"precision": "int8", "baseline": True}), (point("c", 1, 0), INT8)]
    )
    assert chosen == marked


def test_choose_baseline_takes_the_most_expensive_uncompressed_run() -> None:
    fp16 = point("fp16", 0.006, 0.97)
    fp32 = point("fp32", 0.010, 0.97)
    int8 = point("int8", 0.020, 0.96)  # costs more, but is compressed
    candidates = [(fp16, {"precision": "fp16"}), (int8, INT8), (fp32, FP32)]
    assert choose_baseline(candidates) == fp32
    assert choose_baseline(list(reversed(candidates))) == fp32


def test_choose_baseline_breaks_energy_ties_by_run_id() -> None:
    b, a = point("b", 0.01, 0.9), point("a", 0.01, 0.8)
    assert choose_baseline([(b, FP32), (a, {})]) == a


def test_choose_baseline_is_none_without_an_uncompressed_run() -> None:
    assert choose_baseline([(point("q", 0.01, 0.9), INT8), (point("p", 0.02, 0.9), PRUNED)]) is None
    assert choose_baseline([]) is None


# -- the Pareto front ----------------------------------------------------------------------


def test_pareto_front_drops_dominated_points_and_sorts_by_energy() -> None:
    fp32 = point("fp32", 0.010, 0.978)
    int8 = point("int8", 0.006, 0.975)
    pruned = point("pruned", 0.007, 0.960)  # int8 uses less and is more accurate
    student = point("student", 0.002, 0.950)
    same_energy_worse = point("p90", 0.006, 0.900)  # int8's energy, lower accuracy
    same_accuracy_dearer = point("big", 0.012, 0.978)  # fp32's accuracy, more energy
    front = pareto_front([fp32, pruned, same_accuracy_dearer, int8, student, same_energy_worse])
    assert front == [student, int8, fp32]


def test_pareto_front_keeps_one_of_identical_points_the_smallest_run_id() -> None:
    first, second = point("run-a", 0.005, 0.9), point("run-b", 0.005, 0.9)
    assert pareto_front([second, first]) == [first]
    assert pareto_front([first, second]) == [first]


def test_pareto_front_of_one_point_and_of_none() -> None:
    only = point("only", 1.0, 0.5)
    assert pareto_front([only]) == [only]
    assert pareto_front([]) == []


def test_pareto_front_handles_negative_accuracies() -> None:
    # A score such as a negative loss: higher is still better.
    cheap, dear = point("cheap", 1.0, -2.0), point("dear", 2.0, -1.0)
    assert pareto_front([dear, cheap]) == [cheap, dear]


def _dominates(a: TradeoffPoint, b: TradeoffPoint) -> bool:
    return (
        a.energy_per_item_j <= b.energy_per_item_j
        and a.accuracy >= b.accuracy
        and (a.energy_per_item_j < b.energy_per_item_j or a.accuracy > b.accuracy)
    )


_points = st.lists(
    st.builds(
        point,
        run_id=st.text(alphabet="abcdef", min_size=1, max_size=3),
        # Few distinct values, so ties and equal coordinates are common.
        energy_j=st.sampled_from([0.001, 0.002, 0.005, 0.01, 0.02]),
        accuracy=st.sampled_from([0.5, 0.8, 0.9, 0.95, 0.99]),
    ),
    max_size=12,
)


@given(_points)
def test_pareto_front_property(points: list[TradeoffPoint]) -> None:
    front = pareto_front(points)
    assert all(p in points for p in front)
    for p in front:
        assert not any(_dominates(q, p) for q in points)
    for p in points:
        if p not in front:
            # Dominated by a front point, or the duplicate of one that was kept.
            assert any(
                _dominates(f, p)
                or (f.energy_per_item_j, f.accuracy) == (p.energy_per_item_j, p.accuracy)
                for f in front
            )
    energies = [p.energy_per_item_j for p in front]
    assert energies == sorted(energies)
    assert len({(p.energy_per_item_j, p.accuracy) for p in front}) == len(front)


# -- savings -------------------------------------------------------------------------------


def test_savings_against_the_baseline() -> None:
    baseline = point("fp32", 0.010, 0.978)
    cheaper = point("int8", 0.0075, 0.975)
    dearer = point("big", 0.012, 0.980)
    savings = savings_vs_baseline([cheaper, baseline, dearer], baseline)
    assert [s.run_id for s in savings] == ["int8", "fp32", "big"]
    int8, fp32, big = savings
    assert int8.energy_saving == pytest.approx(0.25)
    assert int8.accuracy_delta == pytest.approx(-0.003)
    assert not int8.is_baseline
    assert big.energy_saving == pytest.approx(-0.2)
    assert big.accuracy_delta == pytest.approx(0.002)
    assert fp32 == Saving(
        run_id="fp32",
        label="fp32",
        energy_per_item_j=0.010,
        accuracy=0.978,
        energy_saving=None,
        accuracy_delta=None,
        is_baseline=True,
    )


def test_savings_of_a_point_equal_to_the_baseline_are_zero() -> None:
    baseline = point("a", 0.01, 0.9)
    (twin,) = savings_vs_baseline([point("b", 0.01, 0.9)], baseline)
    assert twin.energy_saving == 0.0
    assert twin.accuracy_delta == 0.0
    assert not twin.is_baseline


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize("energy_j", [0.0, -0.01, math.nan, math.inf])
def test_a_point_needs_a_positive_finite_energy(energy_j: float) -> None:
    with pytest.raises(ValueError, match=r"run run-7: energy_per_item_j .* got") as info:
        point("run-7", energy_j, 0.9)
    assert repr(energy_j) in str(info.value)


@pytest.mark.parametrize("accuracy", [math.nan, math.inf, -math.inf])
def test_a_point_needs_a_finite_accuracy(accuracy: float) -> None:
    with pytest.raises(ValueError, match=r"run run-8: accuracy .* got") as info:
        point("run-8", 0.01, accuracy)
    assert repr(accuracy) in str(info.value)


def test_a_point_rejects_non_numbers_and_stores_floats() -> None:
    with pytest.raises(ValueError, match="run r: energy_per_item_j"):
        TradeoffPoint(run_id="r", label="r", energy_per_item_j=True, accuracy=0.5)
    with pytest.raises(ValueError, match="run r: accuracy"):
        TradeoffPoint(run_id="r", label="r", energy_per_item_j=1.0, accuracy="0.5")  # type: ignore[arg-type]
    integral = point("r", 2, 1)
    assert isinstance(integral.energy_per_item_j, float)
    assert isinstance(integral.accuracy, float)
