"""Planning estimates: energy and CO2e of a training run before anything runs.

The arithmetic is the one published training footprints use (Patterson et al. 2021,
arXiv:2104.10350; Luccioni et al. 2023, arXiv:2211.02001; Meta's Llama model cards)::

    energy_kwh = count x hours x power_w x pue / 1000
    co2e_t     = energy_kwh x intensity_g_per_kwh / 1e6

Without a measured ``power_w`` the GPU's catalog TDP stands in for it. TDP is the board's
maximum, so the result is an upper bound for the GPUs' own draw; training rarely holds it
for long, and the host, network and storage are not counted. The result is a location-based
figure for the electricity only: embodied hardware emissions (:mod:`embodied`) are reported
apart, never added in.

Every input of an :class:`Estimate` says where it came from ("given", "catalog TDP of ..."),
so a number in a plan can be traced back to its assumptions. Region handling is the
caller's: the grid intensity arrives as a number, with its source as text.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from carbon.accounting.catalog import CATALOG, GpuSpec, match_gpu
from carbon.accounting.co2e import co2e_g
from carbon.errors import ConfigError
from carbon.units import kwh_to_j

__all__ = ["Estimate", "EstimateInput", "GpuMatch", "estimate_training", "resolve_gpu"]

_G_PER_T = 1_000_000.0
_W_PER_KW = 1_000.0
_MAX_SUGGESTIONS = 6
_BRANDS = frozenset({"nvidia", "tesla", "amd", "instinct"})
_NOT_WORD = re.compile(r"[^0-9a-z.]+")
_DEFAULT_PUE_SOURCE = "default 1.0: IT energy only, no facility overhead"


class EstimateInput(NamedTuple):
    """One input of an estimate: its value and where the value came from."""

    value: str | float
    source: str


@dataclass(frozen=True)
class GpuMatch:
    """The catalog row a GPU name resolved to, and how.

    Attributes:
        spec: The row used.
        note: How the name was matched, naming the other rows when it matched several.
    """

    spec: GpuSpec
    note: str


@dataclass(frozen=True)
class Estimate:
    """A planning estimate of a training run's electricity and location-based CO2e.

    Attributes:
        it_energy_kwh: Energy drawn by the GPUs, before the PUE: count x hours x power.
        energy_kwh: Facility energy: ``it_energy_kwh x pue``.
        co2e_t: Tonnes of CO2e: ``energy_kwh x intensity_g_per_kwh / 1e6``.
        gpu_key: The catalog row the GPU name resolved to; None when the name is not in
            the catalog (then ``power_w`` was given).
        inputs: Each input (``gpu``, ``count``, ``hours``, ``power_w``, ``pue``,
            ``intensity_g_per_kwh``) with its value and where it came from.
    """

    it_energy_kwh: float
    energy_kwh: float
    co2e_t: float
    gpu_key: str | None
    inputs: Mapping[str, EstimateInput] = field(hash=False)

    @property
    def energy_mwh(self) -> float:
        """Facility energy in megawatt-hours, the unit published footprints use."""
        return self.energy_kwh / 1_000.0

    @property
    def gpu_hours(self) -> float:
        """GPU count x hours: the quantity published footprints usually report."""
        return float(self.inputs["count"].value) * float(self.inputs["hours"].value)


def _words(name: str) -> frozenset[str]:
    """Lower-cased words of a device name, without separators or brand words."""
    return frozenset(_NOT_WORD.split(name.lower())) - _BRANDS - {""}


def _aliases(spec: GpuSpec) -> tuple[frozenset[str], ...]:
    """Word sets a name may be drawn from: the key, the product name, the driver names."""
    return (_words(spec.key), _words(spec.name), *(_words(n) for n in spec.nvml_names))


def _candidates(name: str) -> list[GpuSpec]:
    """Rows one of whose names contains every word of ``name`` (``H100`` -> three rows)."""
    words = _words(name)
    if not words:
        return []
    return [spec for spec in CATALOG if any(words <= alias for alias in _aliases(spec))]


def _close_keys(name: str) -> list[str]:
    """Catalog keys that resemble ``name`` or share a word with it, for error messages."""
    keys = [spec.key for spec in CATALOG]
    similar = set(difflib.get_close_matches(name.strip().lower(), keys, n=_MAX_SUGGESTIONS))
    words = _words(name)
    sharing = {spec.key for spec in CATALOG if any(words & alias for alias in _aliases(spec))}
    return [key for key in keys if key in similar | sharing][:_MAX_SUGGESTIONS]


def resolve_gpu(name: str) -> GpuMatch | None:
    """Find the catalog row for a GPU named by key, NVML name or a shorter form.

    Tried in order: a catalog key (``a100-sxm4-80gb``, any case); a name the driver
    reports (``NVIDIA A100-SXM4-80GB``, with or without the brand); then a shorter name
    whose words all appear in one of a row's names (``H100``, ``A100-80GB``). A short name
    can fit several rows (``H100``: SXM5, PCIe, NVL); the row with the highest TDP is
    taken, so a plan errs high rather than low, and the note names the others. Words
    compare whole: ``L4`` never matches ``L40S`` and a MIG slice matches nothing.

    Args:
        name: The GPU as the user wrote it.

    Returns:
        The row and how it was found, or None when no row fits.
    """
    text = name.strip()
    by_key = {spec.key: spec for spec in CATALOG}
    if text.lower() in by_key:
        return GpuMatch(by_key[text.lower()], "catalog key")
    exact = match_gpu(text)
    if exact is not None:
        return GpuMatch(exact, f"device name of catalog row {exact.key}")
    found = _candidates(text)
    if not found:
        return None
    best = max(found, key=lambda spec: spec.tdp_w)  # first of equal TDPs, in catalog order
    if len(found) == 1:
        return GpuMatch(best, f"short name of catalog row {best.key}")
    others = ", ".join(f"{s.key} ({s.tdp_w:g} W)" for s in found if s is not best)
    note = (
        f"{text!r} fits several catalog rows; took {best.key}, the highest TDP "
        f"({best.tdp_w:g} W); also fits {others}"
    )
    return GpuMatch(best, note)


def _finite(name: str, value: float) -> float:
    """Return ``value`` as a float, or raise when it is not a finite real number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value}")
    return float(value)


def _positive(name: str, value: float) -> float:
    """Return ``value`` when it is finite and above 0; raise naming ``name`` otherwise."""
    number = _finite(name, value)
    if number <= 0:
        raise ConfigError(f"{name} must be greater than 0, got {value}")
    return number


def _check_count(count: int) -> int:
    """Return the GPU count when it is a whole number of at least 1."""
    if isinstance(count, bool) or not isinstance(count, int):
        raise ConfigError(f"count must be a whole number of GPUs, got {count!r}")
    if count < 1:
        raise ConfigError(f"count must be at least 1, got {count}")
    return count


def _tdp_source(spec: GpuSpec) -> str:
    """Provenance text for a catalog TDP standing in for power."""
    text = f"catalog TDP of {spec.name} ({spec.source})"
    if spec.logical_devices > 1:
        text += f"; for the whole package, which the driver shows as {spec.logical_devices}"
    return text


def _power(gpu: str, power_w: float | None) -> tuple[float, str, GpuMatch | None]:
    """Power per GPU, its provenance and the catalog match for the GPU name."""
    found = resolve_gpu(gpu)
    if power_w is not None:
        return _positive("power_w", power_w), "given", found
    if found is None:
        close = _close_keys(gpu)
        hint = (
            f"close catalog keys: {', '.join(close)}"
            if close
            else f"catalog keys: {', '.join(spec.key for spec in CATALOG)}"
        )
        raise ConfigError(
            f"unknown GPU {gpu!r} and no power_w to use instead; {hint}. Pass a catalog "
            "key or device name, or give power_w (watts per GPU)."
        )
    return float(found.spec.tdp_w), _tdp_source(found.spec), found


def estimate_training(
    *,
    gpu: str,
    count: int,
    hours: float,
    power_w: float | None = None,
    pue: float = 1.0,
    intensity_g_per_kwh: float,
    intensity_source: str | None = None,
    pue_source: str | None = None,
) -> Estimate:
    """Estimate a training run's energy and CO2e from its hardware and duration.

    Args:
        gpu: Catalog key or device name (``a100-sxm4-80gb``, ``NVIDIA A100-SXM4-80GB``,
            ``H100``); see :func:`resolve_gpu`. A name outside the catalog is accepted when
            ``power_w`` is given, and is then only a label.
        count: Number of GPUs (physical packages: one MI250X counts once).
        hours: Wall-clock hours each GPU runs. Published GPU-hour totals fit as
            ``count=1, hours=gpu_hours``.
        power_w: Average power per GPU in watts; None takes the catalog TDP. Published
            figures that already fold the PUE into the power (Meta's Llama cards) go here
            with ``pue=1.0``.
        pue: Power usage effectiveness of the facility, at least 1 (1.0 counts IT only).
        intensity_g_per_kwh: Grid carbon intensity in gCO2e/kWh, at least 0.
        intensity_source: Where the intensity comes from (a region, a dataset, a paper);
            recorded in :attr:`Estimate.inputs`.
        pue_source: Where the PUE comes from, when it is not simply given.

    Returns:
        The estimate, with every input and its provenance.

    Raises:
        ConfigError: An argument carbon cannot use: ``count`` below 1 or not whole,
            ``hours`` or ``power_w`` not above 0, ``pue`` below 1, a negative intensity,
            NaN or infinity anywhere, an empty ``gpu``, or a GPU the catalog does not know
            with no ``power_w``; the message names the argument. ConfigError is a
            ValueError.
    """
    if not isinstance(gpu, str) or not gpu.strip():
        raise ConfigError(f"gpu must name a GPU (catalog key or device name), got {gpu!r}")
    checked_count = _check_count(count)
    checked_hours = _positive("hours", hours)
    checked_pue = _finite("pue", pue)
    if checked_pue < 1:
        raise ConfigError(f"pue must be at least 1 (facility energy / IT energy), got {pue}")
    intensity = _finite("intensity_g_per_kwh", intensity_g_per_kwh)
    if intensity < 0:
        raise ConfigError(f"intensity_g_per_kwh must not be negative, got {intensity}")
    watts, power_source, found = _power(gpu, power_w)

    it_energy_kwh = checked_count * checked_hours * watts / _W_PER_KW
    grams = co2e_g(kwh_to_j(it_energy_kwh), intensity, checked_pue)
    if found is None:
        gpu_source = "given; not in the catalog, so only a label (power_w given)"
    else:
        gpu_source = f"given; {found.note}"
    inputs = {
        "gpu": EstimateInput(gpu, gpu_source),
        "count": EstimateInput(checked_count, "given"),
        "hours": EstimateInput(checked_hours, "given"),
        "power_w": EstimateInput(watts, power_source),
        "pue": EstimateInput(
            checked_pue,
            pue_source or ("given" if checked_pue != 1.0 else _DEFAULT_PUE_SOURCE),
        ),
        "intensity_g_per_kwh": EstimateInput(intensity, intensity_source or "given"),
    }
    return Estimate(
        it_energy_kwh=it_energy_kwh,
        energy_kwh=it_energy_kwh * checked_pue,
        co2e_t=grams / _G_PER_T,
        gpu_key=None if found is None else found.spec.key,
        inputs=MappingProxyType(inputs),
    )
