"""Embodied (Scope 3) hardware emissions, amortised over the time a job uses the hardware.

Making a GPU or a server emits CO2e before it draws a watt. A job that uses the device for
part of its life is charged that part of its manufacturing footprint::

    co2e_kg = manufacturing_kgco2e x duration / (lifetime x use_fraction) x count

``use_fraction`` is the share of the lifetime the device is busy: amortising over busy time
only charges the idle time to the jobs that ran (the BLOOM footprint assumed 85%). A year
here is 8,760 hours.

These figures are reported apart from the electricity's Scope 2 emissions, never added into
them (GHG Protocol). The factors live in ``data/embodied.csv``, one row per device model,
each naming its source; most published figures are authors' estimates rather than
manufacturer life-cycle assessments, and the ``basis`` column says which. A device without
a row has an unknown footprint: :func:`amortised_kg` returns None, never 0.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from importlib import resources

from carbon.accounting._tables import cell_error, table_rows
from carbon.accounting.catalog import match_gpu

__all__ = [
    "EmbodiedFactor",
    "EmbodiedFigure",
    "amortised_kg",
    "embodied_factors",
    "lookup",
    "parse_embodied_table",
]

_TABLE = "data/embodied.csv"
_COLUMNS = ("device_key", "manufacturing_kgco2e", "lifetime_years", "basis", "source", "notes")
_S_PER_YEAR = 8_760 * 3_600.0
_BASES = frozenset({"estimate", "lca"})


@dataclass(frozen=True, slots=True)
class EmbodiedFactor:
    """One row of the embodied table.

    Attributes:
        device_key: Device model; a catalog key (:mod:`catalog`) where the device has one.
        manufacturing_kgco2e: CO2e of making one device, in kg.
        lifetime_years: Service life the source amortises over.
        basis: ``"estimate"`` (an author's estimate) or ``"lca"`` (a published life-cycle
            assessment of the product).
        source: The publication the figure comes from.
        notes: What the figure covers and how the source used it.
    """

    device_key: str
    manufacturing_kgco2e: float
    lifetime_years: float
    basis: str
    source: str
    notes: str

    @property
    def is_estimate(self) -> bool:
        """Whether the figure is an estimate rather than a product life-cycle assessment."""
        return self.basis == "estimate"


@dataclass(frozen=True, slots=True)
class EmbodiedFigure:
    """Embodied emissions charged to a job.

    Attributes:
        co2e_kg: kg of CO2e charged, for all ``count`` devices.
        share: Fraction of one device's manufacturing footprint charged:
            ``duration / (lifetime x use_fraction)``.
        source: The publication of the factor used.
        device_key: The table row used.
        is_estimate: Whether the factor is an estimate rather than a product LCA.
    """

    co2e_kg: float
    share: float
    source: str
    device_key: str
    is_estimate: bool


def _positive(row: dict[str, str], column: str, line: int) -> float:
    """A positive, finite number from one cell of the table."""
    try:
        value = float(row[column])
    except ValueError:
        raise cell_error(_TABLE, line, column, f"{row[column]!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise cell_error(_TABLE, line, column, f"must be a positive number, got {value}")
    return value


def parse_embodied_table(text: str) -> tuple[EmbodiedFactor, ...]:
    """Rows of an embodied table, checked: positive figures, a known basis, a source, unique keys.

    Raises:
        ConfigError: The table does not parse or a row breaks a rule; the message names
            the line and the column.
    """
    factors: list[EmbodiedFactor] = []
    lines: dict[str, int] = {}
    for line, row in table_rows(text, _TABLE, _COLUMNS):
        key = row["device_key"].strip().lower()
        if not key:
            raise cell_error(_TABLE, line, "device_key", "is empty")
        if key in lines:
            raise cell_error(_TABLE, line, "device_key", f"{key!r} repeats line {lines[key]}")
        if row["basis"] not in _BASES:
            raise cell_error(
                _TABLE, line, "basis", f"{row['basis']!r} is not one of {sorted(_BASES)}"
            )
        if not row["source"].strip():
            raise cell_error(_TABLE, line, "source", "is empty: every figure names its source")
        lines[key] = line
        factors.append(
            EmbodiedFactor(
                device_key=key,
                manufacturing_kgco2e=_positive(row, "manufacturing_kgco2e", line),
                lifetime_years=_positive(row, "lifetime_years", line),
                basis=row["basis"],
                source=row["source"].strip(),
                notes=row["notes"].strip(),
            )
        )
    return tuple(factors)


@functools.cache
def embodied_factors() -> tuple[EmbodiedFactor, ...]:
    """Return the bundled embodied-emission factors, read once from package data."""
    text = resources.files("carbon.accounting").joinpath(_TABLE).read_text(encoding="utf-8")
    return parse_embodied_table(text)


def lookup(device_key_or_name: str) -> EmbodiedFactor | None:
    """Return the factor for a device named by table key or by its driver name.

    Args:
        device_key_or_name: A table key (``a100-sxm4-80gb``, any case) or a name NVML
            reports (``NVIDIA A100-SXM4-80GB``), matched through the GPU catalog. Short or
            ambiguous names (``A100``) match nothing: a figure for one model is not lent
            to another.

    Returns:
        The factor, or None when the table has none for that device.
    """
    by_key = {factor.device_key: factor for factor in embodied_factors()}
    text = device_key_or_name.strip()
    if text.lower() in by_key:
        return by_key[text.lower()]
    spec = match_gpu(text)
    return None if spec is None else by_key.get(spec.key)


def amortised_kg(
    device_key_or_name: str,
    duration_s: float,
    *,
    count: int = 1,
    use_fraction: float = 1.0,
) -> EmbodiedFigure | None:
    """Charge a job its share of the devices' manufacturing emissions.

    Args:
        device_key_or_name: The device, as :func:`lookup` accepts it.
        duration_s: How long the job holds each device, in seconds.
        count: Number of devices held.
        use_fraction: Share of the lifetime the device is in use, in (0, 1]; 1.0 spreads
            the footprint over the whole calendar lifetime.

    Returns:
        The emissions and their source, or None when the device's footprint is unknown.

    Raises:
        ValueError: ``duration_s`` is negative or not finite, ``count`` is below 1, or
            ``use_fraction`` is outside (0, 1].
    """
    if not math.isfinite(duration_s) or duration_s < 0:
        raise ValueError(f"duration_s must be a finite number of seconds >= 0, got {duration_s}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a whole number of at least 1, got {count!r}")
    if not (math.isfinite(use_fraction) and 0 < use_fraction <= 1):
        raise ValueError(f"use_fraction must be in (0, 1], got {use_fraction}")
    factor = lookup(device_key_or_name)
    if factor is None:
        return None
    share = duration_s / (factor.lifetime_years * _S_PER_YEAR * use_fraction)
    return EmbodiedFigure(
        co2e_kg=factor.manufacturing_kgco2e * share * count,
        share=share,
        source=factor.source,
        device_key=factor.device_key,
        is_estimate=factor.is_estimate,
    )
