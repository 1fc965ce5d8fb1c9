"""Estimated RAM energy: a constant power from the installed memory, where RAPL has no DRAM zone.

The model is codecarbon's (3.3.2, ``codecarbon/external/ram.py``, ``RAM._calculate_ram_power``,
machine tracking). Memory power depends far more on how many modules are installed than on
how much of it is used, so the model guesses the number of DIMMs from the total size and
charges a fixed power per DIMM:

1. ``total`` = ``MemTotal`` from ``/proc/meminfo`` in GiB (codecarbon's "GB" is 1024**3 bytes).
2. DIMM count: 1 up to 2 GiB; 2 up to 16 GiB; 4 up to 64 GiB; 8 up to 128 GiB; above
   that, ``ceil(total / size)`` for the largest common module size (4, 8, 16, 32, 64 or
   128 GiB) not above ``total / 8``, capped at 32 DIMMs.
3. Power per DIMM ``w``: 5 W on x86, 1.5 W on ARM. The first 4 DIMMs count ``w`` each, the
   next 4 ``0.9 w``, the next 8 ``0.8 w``, any beyond 16 ``0.7 w`` (shared power
   infrastructure on larger boards).
4. At least 10 W on x86 (two DIMMs), 3 W on ARM.

So 24 GiB gives 4 DIMMs x 5 W = 20 W, and 512 GiB gives 8 DIMMs = 4 x 5 + 4 x 4.5 = 38 W.
Before version 3 codecarbon charged 3 W per 8 GB; the DIMM model replaced it.

This is a model, labelled ``estimated``: it charges the whole machine's memory to the run,
whatever the process uses, as codecarbon's machine mode does.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Sequence
from pathlib import Path

from carbon.errors import SourceError, SourceUnavailable
from carbon.sources import _procfs
from carbon.sources.base import Component, DeviceInfo, DeviceReading, Provenance
from carbon.units import BYTES_PER_GIB

__all__ = ["RamEstimateSource", "estimate_dimm_count", "ram_power_w"]

METHOD = "ram_estimate"
X86_W_PER_DIMM = 5.0
ARM_W_PER_DIMM = 1.5
X86_MIN_POWER_W = 10.0
ARM_MIN_POWER_W = 3.0
_MODULE_SIZES_GIB = (128, 64, 32, 16, 8, 4)
_SMALL_SYSTEM_DIMMS = ((2.0, 1), (16.0, 2), (64.0, 4), (128.0, 8))
_MAX_DIMMS = 32
# (DIMMs in the tier, fraction of the per-DIMM power each one draws)
_TIERS = ((4, 1.0), (4, 0.9), (8, 0.8), (math.inf, 0.7))


def estimate_dimm_count(total_gib: float) -> int:
    """Guess how many memory modules hold ``total_gib`` GiB (codecarbon's heuristic)."""
    for limit_gib, count in _SMALL_SYSTEM_DIMMS:
        if total_gib <= limit_gib:
            return count
    for size_gib in _MODULE_SIZES_GIB:
        if size_gib <= total_gib / 8:
            return min(math.ceil(total_gib / size_gib), _MAX_DIMMS)
    return 8  # unreachable above 128 GiB, kept so every input has an answer


def ram_power_w(total_bytes: int, *, arm: bool = False) -> float:
    """Return the modelled RAM power in watts for ``total_bytes`` of installed memory.

    Raises:
        ValueError: ``total_bytes`` is not positive.
    """
    if total_bytes <= 0:
        raise ValueError(f"total_bytes must be positive, got {total_bytes}")
    dimms = estimate_dimm_count(total_bytes / BYTES_PER_GIB)
    per_dimm_w = ARM_W_PER_DIMM if arm else X86_W_PER_DIMM
    power_w = 0.0
    remaining = float(dimms)
    for tier_dimms, fraction in _TIERS:
        counted = min(remaining, tier_dimms)
        power_w += counted * per_dimm_w * fraction
        remaining -= counted
    return max(power_w, ARM_MIN_POWER_W if arm else X86_MIN_POWER_W)


def _is_arm(machine: str) -> bool:
    machine = machine.lower()
    return "arm" in machine or "aarch" in machine


class RamEstimateSource:
    """The machine's memory, charged a constant modelled power."""

    min_read_interval_s = 1.0
    """The modelled power is constant: one reading a second (and at the edges) is exact."""

    def __init__(self, *, info: DeviceInfo, power_w: float, now_s: float) -> None:
        self._info = info
        self._power_w = power_w
        self._start_s = now_s
        self._last_s = now_s
        self._closed = False

    @classmethod
    def open(
        cls,
        *,
        proc_root: Path = _procfs.DEFAULT_PROC_ROOT,
        machine: str | None = None,
        now_s: float | None = None,
    ) -> RamEstimateSource:
        """Read the memory size and fix the modelled power.

        Args:
            proc_root: Where ``/proc`` is (fixture files in tests).
            machine: CPU architecture (``x86_64``, ``aarch64``); ``platform.machine()`` if None.
            now_s: The ``time.monotonic()`` the energy count starts from (now if ``None``).

        Raises:
            SourceUnavailable: ``/proc/meminfo`` cannot be read or has no ``MemTotal``.
        """
        try:
            total_bytes = _procfs.mem_total_bytes(proc_root)
        except (OSError, ValueError) as exc:
            raise SourceUnavailable(f"memory size cannot be read from {proc_root}: {exc}") from exc
        if not total_bytes:
            raise SourceUnavailable(f"{proc_root / 'meminfo'} has no MemTotal line")
        arch = machine if machine is not None else platform.machine()
        arm = _is_arm(arch)
        power_w = ram_power_w(total_bytes, arm=arm)
        total_gib = total_bytes / BYTES_PER_GIB
        dimms = estimate_dimm_count(total_gib)
        per_dimm_w = ARM_W_PER_DIMM if arm else X86_W_PER_DIMM
        info = DeviceInfo(
            component=Component.RAM,
            name=f"{total_gib:.1f} GiB RAM",
            method=METHOD,
            provenance=Provenance.ESTIMATED,
            detail=(
                f"Estimate: constant {power_w:g} W = {dimms} DIMM(s) guessed from "
                f"{total_gib:.1f} GiB x {per_dimm_w:g} W ({arch or 'unknown'} architecture, "
                "tiered per-DIMM power, codecarbon's RAM model)"
            ),
            memory_bytes=total_bytes,
        )
        return cls(info=info, power_w=power_w, now_s=time.monotonic() if now_s is None else now_s)

    @property
    def devices(self) -> Sequence[DeviceInfo]:
        """One device: all of the machine's memory."""
        return (self._info,)

    def read(self, now_s: float) -> Sequence[DeviceReading]:
        """Return the constant power and its integral since the source was opened.

        Raises:
            SourceError: The source was closed.
            ValueError: ``now_s`` is earlier than the previous read.
        """
        if self._closed:
            raise SourceError("RAM estimate read after close()")
        if now_s < self._last_s:
            raise ValueError(f"now_s went backwards: {now_s} < {self._last_s}")
        self._last_s = now_s
        energy_j = self._power_w * (now_s - self._start_s)
        return (DeviceReading(energy_j=energy_j, power_w=self._power_w),)

    def close(self) -> None:
        """Mark the source closed; it holds nothing."""
        self._closed = True
