"""Compression settings of a run: a label, the techniques they name, and the trade-offs.

A run stores its compression as a free-form mapping the user wrote
(``{"precision": "int8", "quantization": "dynamic"}``). This module reads the keys it
knows, so runs can be labelled, grouped and compared, and turns runs into points of
energy per item against accuracy: the Pareto front of those points, the baseline they
are measured against, and what each setting saved.

Keys read, all optional; any other key is kept in the store but ignored here:

* ``precision``: the number format (``fp32``, ``bf16``, ``int8``, ``fp8``, ``nf4``).
* ``quantization``: the quantization method (``dynamic``, ``gptq``), or ``True``.
* ``bits``: the width of quantized weights (``4``).
* ``pruning``: the pruning method (``l1_unstructured``, ``2:4``), or ``True``.
* ``sparsity``: the fraction of weights pruned, in [0, 1].
* ``distillation``: the role or method of distillation (``student``), or ``True``.
* ``baseline``: ``True`` marks the run the others are compared with; ``False`` says it
  is not one.

A technique key whose value is ``None``, ``False``, ``""`` or ``"none"`` means the
technique was not applied. Pure functions, no I/O. Points that cannot be right (an
energy that is not positive, a NaN accuracy) raise :class:`ValueError`, as argument
checks do across carbon.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "TECHNIQUES",
    "Saving",
    "TradeoffPoint",
    "choose_baseline",
    "compression_kinds",
    "compression_label",
    "is_baseline",
    "pareto_front",
    "savings_vs_baseline",
]

TECHNIQUES = frozenset({"quantization", "pruning", "distillation"})
"""The techniques :func:`compression_kinds` recognises."""

_NOT_APPLIED = frozenset({"", "none"})
"""Technique values (lower-cased) that say the technique was not used."""

_MAX_QUANTIZED_BITS = 8
"""Number formats this narrow or narrower count as quantization (int8, fp8, nf4)."""

_PRECISION = re.compile(r"(u?int|fp|float|bf|tf|nf|mxfp|mxint)(\d+)")
"""A precision name: its family and its width in bits (``int8``, ``fp8_e4m3``, ``nf4``)."""

_FP8_VARIANT = re.compile(r"e\dm\d")
"""An fp8 layout written alone (``e4m3``, ``e5m2``)."""


def _text(value: Any) -> str:
    """A setting as text, with surrounding spaces removed."""
    return str(value).strip()


def _applied(value: Any) -> bool:
    """Whether a technique key's value says the technique was used."""
    if value is None or value is False:
        return False
    return not (isinstance(value, str) and value.strip().lower() in _NOT_APPLIED)


def _method(value: Any) -> str | None:
    """The method a technique key names, or None when it says only "applied" (``True``)."""
    if not _applied(value) or value is True:
        return None
    return _text(value)


def _number(value: Any) -> float | None:
    """A finite int or float as a float; None for anything else (bools included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _precision(compression: Mapping[str, Any]) -> str | None:
    """The precision, lower-cased so ``BF16`` and ``bf16`` group together, or None."""
    value = compression.get("precision")
    if value is None or value is False:
        return None
    text = _text(value).lower()
    return text or None


def _quantized_precision(precision: str | None) -> bool:
    """Whether a precision is a quantized format: any integer format, or 8 bits or fewer."""
    if precision is None:
        return False
    if _FP8_VARIANT.fullmatch(precision):
        return True
    match = _PRECISION.match(precision)
    if match is None:
        return False
    family, width = match.group(1), int(match.group(2))
    return family in {"int", "uint", "mxint"} or width <= _MAX_QUANTIZED_BITS


def _bits(compression: Mapping[str, Any]) -> str | None:
    """The ``bits`` setting as text (``4``, ``2.5``), or None when absent or empty."""
    value = compression.get("bits")
    if value is None or value is False:
        return None
    number = _number(value)
    if number is not None:
        return f"{number:g}"
    return _text(value) or None


def _sparsity_text(value: Any) -> str | None:
    """A sparsity as a percentage (``50%``) when it is a fraction, else as written."""
    if value is None:
        return None
    number = _number(value)
    if number is not None and 0 <= number <= 1:
        return f"{number * 100:.3g}%"
    return _text(value) or None


def compression_kinds(compression: Mapping[str, Any] | None) -> frozenset[str]:
    """Return the techniques a run's compression settings say were applied.

    Rules, so the answer does not depend on which keys a user happened to write:

    * quantization: ``quantization`` is applied; or ``bits`` is a number of 8 or fewer;
      or ``precision`` is an integer format (``int8``, ``uint8``, ``int4``) or a format
      of 8 bits or fewer (``fp8``, ``fp8_e4m3``, ``e5m2``, ``fp4``, ``nf4``, ``mxfp4``).
      ``fp32``, ``fp16``, ``bf16`` and ``tf32`` are ordinary precisions, not compression.
    * pruning: ``pruning`` is applied, or ``sparsity`` is a number above 0.
    * distillation: ``distillation`` is applied.

    Args:
        compression: The run's compression settings; None reads as ``{}``.

    Returns:
        A subset of :data:`TECHNIQUES`; empty when no technique applies.
    """
    settings: Mapping[str, Any] = compression or {}
    kinds = set()
    bits = _number(settings.get("bits"))
    if (
        _applied(settings.get("quantization"))
        or (bits is not None and bits <= _MAX_QUANTIZED_BITS)
        or _quantized_precision(_precision(settings))
    ):
        kinds.add("quantization")
    sparsity = _number(settings.get("sparsity"))
    if _applied(settings.get("pruning")) or (sparsity is not None and sparsity > 0):
        kinds.add("pruning")
    if _applied(settings.get("distillation")):
        kinds.add("distillation")
    return frozenset(kinds)


def is_baseline(compression: Mapping[str, Any] | None) -> bool:
    """Return whether a run can serve as the uncompressed reference for the others.

    An explicit ``baseline`` key decides: ``True`` makes the run a baseline whatever else
    it says, ``False`` rules it out. Without one, a run is a baseline when no technique
    of :func:`compression_kinds` applies: ``fp32``, ``fp16``, ``bf16``, or nothing said.

    Args:
        compression: The run's compression settings; None reads as ``{}``.
    """
    settings: Mapping[str, Any] = compression or {}
    marked = settings.get("baseline")
    if marked is True or marked is False:
        return marked
    return not compression_kinds(settings)


def compression_label(compression: Mapping[str, Any] | None) -> str:
    """Return a short plain-text label for compression settings, the same for equal settings.

    The label joins these parts with ``", "``, in this order, each only when it applies:

    1. The number format. With ``bits``: ``"4-bit gptq"`` (bits, then the quantization
       method; ``precision`` is then left out). Else with ``precision``: the precision,
       lower-cased, then the quantization method in brackets (``"int8 (dynamic)"``).
       Else with a quantization method alone: ``"quantized (dynamic)"``.
    2. ``"quantized"``, when ``quantization`` is ``True`` and part 1 does not already say
       so (no ``bits``, and no quantized precision such as ``int8``).
    3. Pruning, when :func:`compression_kinds` finds it: ``"pruned"``, the sparsity as a
       percentage when it is a fraction in [0, 1] (as written otherwise), the method in
       brackets: ``"pruned 50% (l1_unstructured)"``, ``"pruned (2:4)"``, ``"pruned 50%"``.
    4. Distillation: ``"distilled student"``, or ``"distilled"`` for ``True``.
    5. ``"baseline"``, when ``baseline`` is ``True``.

    Other keys (``temperature``, ``teacher_params``...) are left out, so variants of one
    method share a label. ``{}`` (or None) reads ``"none"``; settings with none of the keys
    above read ``"other"``.

    Examples: ``{"precision": "fp32"}`` -> ``"fp32"``; ``{"precision": "fp32",
    "distillation": "student", "params": 100}`` -> ``"fp32, distilled student"``;
    ``{"quantization": "gptq", "bits": 4}`` -> ``"4-bit gptq"``.

    Args:
        compression: The run's compression settings; None reads as ``{}``.

    Returns:
        The label, plain text with no markup.
    """
    if not compression:
        return "none"
    parts: list[str] = []
    precision = _precision(compression)
    quantization = compression.get("quantization")
    method = _method(quantization)
    bits = _bits(compression)
    if bits is not None:
        parts.append(f"{bits}-bit" + (f" {method}" if method else ""))
    elif precision is not None:
        parts.append(precision + (f" ({method})" if method else ""))
    elif method is not None:
        parts.append(f"quantized ({method})")
    if quantization is True and bits is None and not _quantized_precision(precision):
        parts.append("quantized")

    kinds = compression_kinds(compression)
    if "pruning" in kinds:
        sparsity = _sparsity_text(compression.get("sparsity"))
        pruning_method = _method(compression.get("pruning"))
        parts.append(
            "pruned"
            + (f" {sparsity}" if sparsity else "")
            + (f" ({pruning_method})" if pruning_method else "")
        )
    if "distillation" in kinds:
        role = _method(compression.get("distillation"))
        parts.append("distilled" + (f" {role}" if role else ""))

    if compression.get("baseline") is True:
        parts.append("baseline")
    return ", ".join(parts) if parts else "other"


@dataclass(frozen=True)
class TradeoffPoint:
    """One run on the accuracy-energy plane.

    Attributes:
        run_id: The run's id; orders ties, so results do not depend on input order.
        label: What to show for the point (:func:`compression_label`, a run name).
        energy_per_item_j: Energy per unit of work (an inference, a token), in joules;
            finite and above 0.
        accuracy: The run's accuracy, in whatever unit it was logged (a fraction, a
            score); finite. Higher is better.

    Raises:
        ValueError: The energy is not a finite positive number, or the accuracy is not
            finite; the message names the run.
    """

    run_id: str
    label: str
    energy_per_item_j: float
    accuracy: float

    def __post_init__(self) -> None:
        energy = _number(self.energy_per_item_j)
        if energy is None or energy <= 0:
            raise ValueError(
                f"run {self.run_id}: energy_per_item_j must be a finite number above 0, "
                f"got {self.energy_per_item_j!r}"
            )
        accuracy = _number(self.accuracy)
        if accuracy is None:
            raise ValueError(
                f"run {self.run_id}: accuracy must be a finite number, got {self.accuracy!r}"
            )
        object.__setattr__(self, "energy_per_item_j", energy)
        object.__setattr__(self, "accuracy", accuracy)


@dataclass(frozen=True)
class Saving:
    """What one setting saved against the baseline, and what it cost in accuracy.

    Attributes:
        run_id: The run's id.
        label: The run's label, as its :class:`TradeoffPoint` has it.
        energy_per_item_j: Energy per item of the run, in joules.
        accuracy: Accuracy of the run.
        energy_saving: Fraction of the baseline's energy per item saved: 0.25 uses 25 %
            less than the baseline, a negative value costs more. None for the baseline.
        accuracy_delta: Accuracy minus the baseline's, in the accuracy's own unit (a
            fraction: -0.004 is 0.4 points lower). None for the baseline.
        is_baseline: Whether this is the baseline run itself.
    """

    run_id: str
    label: str
    energy_per_item_j: float
    accuracy: float
    energy_saving: float | None
    accuracy_delta: float | None
    is_baseline: bool


def _dominates(a: TradeoffPoint, b: TradeoffPoint) -> bool:
    """Whether ``a`` is at least as good as ``b`` on both axes and better on one."""
    return (
        a.energy_per_item_j <= b.energy_per_item_j
        and a.accuracy >= b.accuracy
        and (a.energy_per_item_j < b.energy_per_item_j or a.accuracy > b.accuracy)
    )


def pareto_front(points: Sequence[TradeoffPoint]) -> list[TradeoffPoint]:
    """Return the points no other point beats on both energy and accuracy.

    A point is dominated when another uses no more energy per item and reaches at least
    its accuracy, and is strictly better on one of the two. The front is every point not
    dominated. Of points with identical energy and accuracy only the one with the
    smallest ``run_id`` is kept, so the front has one point per position.

    Args:
        points: The runs to compare, in any order.

    Returns:
        The front, by energy per item ascending (so accuracy ascending too); empty for no
        points.
    """
    ordered = sorted(points, key=lambda p: (p.energy_per_item_j, -p.accuracy, p.run_id))
    front: list[TradeoffPoint] = []
    for point in ordered:
        # Every earlier point uses no more energy, so this one is on the front only if
        # it is more accurate than all of them (the last kept is the most accurate).
        if not front or point.accuracy > front[-1].accuracy:
            front.append(point)
    return front


def savings_vs_baseline(points: Sequence[TradeoffPoint], baseline: TradeoffPoint) -> list[Saving]:
    """Return, for each point, the energy saved and the accuracy changed against a baseline.

    Args:
        points: The runs to compare; the baseline may be among them.
        baseline: The reference run (:func:`choose_baseline`).

    Returns:
        One :class:`Saving` per point, in the order of ``points``. The point with the
        baseline's ``run_id`` is marked ``is_baseline`` and has no saving or change.
    """
    savings = []
    for point in points:
        own = point.run_id == baseline.run_id
        savings.append(
            Saving(
                run_id=point.run_id,
                label=point.label,
                energy_per_item_j=point.energy_per_item_j,
                accuracy=point.accuracy,
                energy_saving=(
                    None if own else 1 - point.energy_per_item_j / baseline.energy_per_item_j
                ),
                accuracy_delta=None if own else point.accuracy - baseline.accuracy,
                is_baseline=own,
            )
        )
    return savings


def choose_baseline(
    candidates: Sequence[tuple[TradeoffPoint, Mapping[str, Any]]],
) -> TradeoffPoint | None:
    """Return the run the others should be compared with.

    A run whose settings say ``baseline: True`` wins. Failing that, of the runs
    :func:`is_baseline` accepts (no compression technique), the one with the highest
    energy per item: the uncompressed reference is the most expensive way to do the
    work, and comparing with a cheaper one would understate every saving. Among several
    candidates of one kind the highest energy wins, then the smallest ``run_id``, so the
    choice does not depend on input order.

    Args:
        candidates: Each run's point with its compression settings.

    Returns:
        The baseline's point, or None when no run qualifies.
    """

    def pick(points: list[TradeoffPoint]) -> TradeoffPoint | None:
        return min(points, key=lambda p: (-p.energy_per_item_j, p.run_id), default=None)

    marked = [point for point, settings in candidates if (settings or {}).get("baseline") is True]
    if marked:
        return pick(marked)
    return pick([point for point, settings in candidates if is_baseline(settings)])
