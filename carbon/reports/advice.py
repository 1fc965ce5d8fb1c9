"""The record every recommendation is, and the small helpers the analyses share.

:mod:`carbon.reports.recommendations` (region, compression, MFU) and
:mod:`carbon.reports.hour_shift` (whole-hour shifts) both return :class:`Recommendation`;
it lives here so that neither imports the other's module for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Kind", "Recommendation", "Summary", "finite", "runs_text"]

Kind = Literal["region", "hours", "compression", "mfu"]
Summary = Mapping[str, Any]
"""A run as :func:`carbon.store.summary.run_summary` gives it."""


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A change that would have saved energy or emissions, and by how much.

    Attributes:
        kind: ``region``, ``hours``, ``compression`` or ``mfu``.
        title: The recommendation and its saving, one sentence.
        detail: The figures behind it.
        saving_j: IT energy saved (before PUE), joules: 0 where only the emission factor
            changes (region, hours); ``None`` when unknown.
        saving_g: Location-based CO2e saved, grams; ``None`` when unknown.
        runs: Ids of the runs concerned.
        assumption: How the saving was estimated and what it does not account for.
    """

    kind: Kind
    title: str
    detail: str
    saving_j: float | None
    saving_g: float | None
    runs: tuple[str, ...]
    assumption: str


def finite(value: Any) -> float | None:
    """A finite int or float as a float; None for anything else (bools and None included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def runs_text(count: int) -> str:
    """``1 run``, ``3 runs``."""
    return f"{count} run{'' if count == 1 else 's'}"
