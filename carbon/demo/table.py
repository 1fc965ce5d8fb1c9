"""Plain-text table of run summaries, as the demo prints it at the end.

Pure functions from run summaries (the dicts of ``Run.summary()``) to text, so the layout
is tested without running anything. Every number carries its unit; an unknown value shows
as an em dash rather than a zero that would read as a measurement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from carbon._format import MISSING, format_duration, format_energy, format_j_per_flop

_COMPONENTS = ("gpu", "cpu", "ram")
_COMPRESSION_SHOWN = ("quantization", "pruning", "sparsity", "distillation")
"""Compression keys the table shows beside the precision; the store keeps them all."""
_HEADERS = (
    "run",
    "kind",
    "compression",
    "duration",
    "energy",
    "J/inference",
    "J/FLOP",
    "MFU",
    "accuracy",
    "energy method",
)
_RIGHT_ALIGNED = frozenset({"duration", "energy", "J/inference", "J/FLOP", "MFU", "accuracy"})


def format_accuracy(accuracy: float | None) -> str:
    """Format a share in [0, 1] as a percentage with one decimal (``97.8 %``)."""
    return MISSING if accuracy is None else f"{accuracy * 100:.1f} %"


def format_compression(compression: Mapping[str, Any] | None) -> str:
    """Describe compression settings in one line, precision first.

    ``{"precision": "int8", "quantization": "dynamic"}`` reads ``int8 quantization=dynamic``;
    the remaining keys keep their order, so variants of one method line up in the table.
    """
    if not compression:
        return MISSING
    parts = []
    precision = compression.get("precision")
    if precision is not None:
        parts.append(str(precision))
    parts.extend(
        f"{key}={value}" for key, value in compression.items() if key in _COMPRESSION_SHOWN
    )
    return " ".join(parts)


def format_methods(methods: Mapping[str, str | None] | None) -> str:
    """List how each component's energy was obtained (``cpu:tdp_estimate ram:ram_estimate``)."""
    if not methods:
        return MISSING
    parts = [f"{c}:{methods[c]}" for c in _COMPONENTS if methods.get(c)]
    parts.extend(f"{c}:{m}" for c, m in methods.items() if c not in _COMPONENTS and m is not None)
    return " ".join(parts) if parts else MISSING


def format_mfu(mfu: float | None) -> str:
    """Model FLOPs utilization as a percentage with three significant digits."""
    return MISSING if mfu is None else f"{mfu * 100:.3g} %"


def energy_per_inference_j(summary: Mapping[str, Any]) -> float | None:
    """Energy divided by inferences served, for inference runs with both figures known."""
    energy_j = summary.get("energy_j")
    samples = summary.get("samples")
    if summary.get("kind") != "inference" or energy_j is None or not samples:
        return None
    return float(energy_j) / float(samples)


def summary_row(summary: Mapping[str, Any]) -> tuple[str, ...]:
    """The table cells of one run, in the order of the table's columns."""
    metrics = summary.get("metrics") or {}
    accuracy = metrics.get("accuracy")
    return (
        str(summary.get("name") or MISSING),
        str(summary.get("kind") or MISSING),
        format_compression(summary.get("compression")),
        format_duration(summary.get("duration_s")),
        format_energy(summary.get("energy_j")),
        format_energy(energy_per_inference_j(summary)),
        format_j_per_flop(summary.get("j_per_flop")),
        format_mfu(summary.get("mfu")),
        format_accuracy(None if accuracy is None else float(accuracy)),
        format_methods(summary.get("energy_method"))
        + (" (simulated GPU)" if summary.get("simulated") else ""),
    )


def format_runs_table(summaries: Sequence[Mapping[str, Any]]) -> str:
    """Lay out one row per run under a header, columns padded to their widest cell.

    Args:
        summaries: Run summaries in the shape of ``Run.summary()``; missing keys and
            ``None`` values show as an em dash.

    Returns:
        The table as lines joined by newlines, without a trailing newline.
    """
    rows = [_HEADERS, *(summary_row(summary) for summary in summaries)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(_HEADERS))]

    def render(row: Sequence[str]) -> str:
        cells = [
            cell.rjust(width) if header in _RIGHT_ALIGNED else cell.ljust(width)
            for cell, width, header in zip(row, widths, _HEADERS, strict=True)
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([render(_HEADERS), rule, *(render(row) for row in rows[1:])])
