"""Estimated CPU energy from the CPU's TDP and its utilization, where RAPL cannot be read.

The model is codecarbon's (3.3.2, ``codecarbon/external/hardware.py``, ``CPU`` in
``cpu_load`` mode, machine tracking), which it uses whenever no power counter is readable::

    power_w = tdp_w x share x (0.1 + 0.9 x load ** 3)

- ``load`` is the busy fraction (0..1) of the CPUs over the interval since the previous
  read, from ``/proc/stat`` (busy = neither idle nor iowait). The cube keeps a lightly
  loaded CPU near its floor; 0.1 is the idle floor (10 % of TDP).
- ``tdp_w`` is the table TDP of the model (codecarbon's ``data/hardware/cpu_power.csv``, per
  package) times the number of packages (distinct ``physical id`` in ``/proc/cpuinfo``),
  as codecarbon multiplies by its socket count.
- ``share`` is the number of CPUs in this process's affinity set over ``os.cpu_count()``, and
  ``load`` is measured on those CPUs only, so a process pinned to 8 of 64 CPUs is charged
  8/64 of the package and the activity of those 8. This departs from codecarbon, which
  charges the whole machine; other processes running on the same CPUs are still counted,
  and cgroup CPU quotas (as opposed to cpusets) are not seen.

A CPU missing from the table gets :data:`DEFAULT_TDP_W_PER_CPU` = 4 W per logical CPU,
codecarbon's own fallback (``DEFAULT_POWER_PER_CORE`` x thread count), which scales with
the size of the machine or VM; ``detail`` says so. Known limit, shared with codecarbon: a VM
sees only its own vCPUs but the table gives the TDP of the whole host package, so small VMs
with a recognised model are overestimated.

The source integrates its own model: at each read the power over ``[previous, now]`` is
evaluated from the load of that interval and multiplied by its length (rectangle rule).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from carbon.errors import SourceError, SourceUnavailable
from carbon.sources import _procfs
from carbon.sources._tdp_table import load_tdp_table, match_tdp
from carbon.sources.base import Component, DeviceInfo, DeviceReading, Provenance

__all__ = [
    "DEFAULT_TDP_W_PER_CPU",
    "IDLE_POWER_FRACTION",
    "CpuEstimateSource",
    "TdpChoice",
    "choose_tdp",
    "cpu_power_fraction",
]

METHOD = "tdp_estimate"
IDLE_POWER_FRACTION = 0.1
"""Fraction of TDP drawn at zero load (codecarbon's floor)."""
DEFAULT_TDP_W_PER_CPU = 4.0
"""Watts per logical CPU when the model is not in the table (codecarbon's fallback)."""


def cpu_power_fraction(load: float) -> float:
    """Return the fraction of TDP drawn at a busy fraction ``load``: ``0.1 + 0.9 x load**3``.

    Raises:
        ValueError: ``load`` is outside 0..1 or NaN.
    """
    if not 0.0 <= load <= 1.0:
        raise ValueError(f"load must be within 0..1, got {load}")
    return IDLE_POWER_FRACTION + (1.0 - IDLE_POWER_FRACTION) * load**3


@dataclass(frozen=True, slots=True)
class TdpChoice:
    """The TDP a CPU estimate uses and why.

    Attributes:
        tdp_w: TDP of all packages of the machine, in watts.
        detail: Where the figure comes from, for ``DeviceInfo.detail``.
        table_name: The table row that matched, or ``None`` when no row did.
    """

    tdp_w: float
    detail: str
    table_name: str | None


def choose_tdp(
    model_name: str | None,
    *,
    logical_cpus: int,
    sockets: int | None,
    table_path: Path | None = None,
) -> TdpChoice:
    """Look up the machine's TDP in codecarbon's table, or fall back to the default.

    Args:
        model_name: CPU model as ``/proc/cpuinfo`` reports it, or ``None``.
        logical_cpus: ``os.cpu_count()`` of the machine (for the fallback).
        sockets: Number of packages, or ``None`` when unknown (counted as 1).
        table_path: The TDP CSV; codecarbon's bundled one when ``None``.
    """
    fallback_w = DEFAULT_TDP_W_PER_CPU * logical_cpus
    fallback = (
        f"default {DEFAULT_TDP_W_PER_CPU:g} W per logical CPU x {logical_cpus} CPUs = "
        f"{fallback_w:g} W assumed (codecarbon's fallback)"
    )
    if model_name is None:
        return TdpChoice(fallback_w, f"CPU model unknown (/proc/cpuinfo); {fallback}", None)
    try:
        table = load_tdp_table(table_path)
    except (SourceUnavailable, OSError) as exc:
        return TdpChoice(
            fallback_w, f"codecarbon's TDP table cannot be read ({exc}); {fallback}", None
        )
    match = match_tdp(model_name, table)
    if match is None:
        return TdpChoice(
            fallback_w,
            f"CPU model {model_name!r} not in codecarbon's TDP table; {fallback}",
            None,
        )
    packages = sockets or 1
    return TdpChoice(
        match.tdp_w * packages,
        f"TDP {match.tdp_w:g} W per package from codecarbon's table (row "
        f"{match.table_name!r}) x {packages} package(s)",
        match.table_name,
    )


class CpuEstimateSource:
    """The CPUs this process may run on, charged by the TDP x load model above."""

    min_read_interval_s = 0.5
    """Load is averaged over half a second: ``/proc/stat`` costs a few hundred microseconds
    to read, and the model gains nothing from reading it ten times a second."""

    def __init__(
        self,
        *,
        info: DeviceInfo,
        tdp_w: float,
        share: float,
        cpus: frozenset[int],
        proc_root: Path,
        ticks: _procfs.CpuTicks,
        now_s: float,
    ) -> None:
        self._info = info
        self._tdp_w = tdp_w
        self._share = share
        self._cpus = cpus
        self._proc_root = proc_root
        self._ticks = ticks
        self._last_s = now_s
        self._energy_j = 0.0
        self._closed = False

    @classmethod
    def open(
        cls,
        *,
        proc_root: Path = _procfs.DEFAULT_PROC_ROOT,
        tdp_w: float | None = None,
        cpus: Collection[int] | None = None,
        cpu_count: int | None = None,
        now_s: float | None = None,
        tdp_table: Path | None = None,
    ) -> CpuEstimateSource:
        """Take the first ``/proc/stat`` reading and fix the model's inputs.

        Args:
            proc_root: Where ``/proc`` is (fixture files in tests).
            tdp_w: TDP of the whole machine in watts; looked up from the CPU model if ``None``.
            cpus: The CPUs this process may use; ``os.sched_getaffinity(0)`` if ``None``.
            cpu_count: Logical CPUs of the machine; ``os.cpu_count()`` if ``None``.
            now_s: The ``time.monotonic()`` the energy count starts from (now if ``None``).
            tdp_table: The TDP CSV; codecarbon's bundled table if ``None``.

        Raises:
            SourceUnavailable: ``/proc`` cannot be read (not Linux) or lists none of ``cpus``.
            ValueError: ``tdp_w`` is not a positive number, or ``cpus`` is empty.
        """
        if tdp_w is not None and not (math.isfinite(tdp_w) and tdp_w > 0):
            raise ValueError(f"tdp_w must be a positive number of watts, got {tdp_w}")
        affinity = frozenset(cpus if cpus is not None else os.sched_getaffinity(0))
        if not affinity:
            raise ValueError("the CPU set is empty")
        machine_cpus = cpu_count if cpu_count is not None else os.cpu_count()
        machine_cpus = max(machine_cpus or len(affinity), len(affinity))
        try:
            ticks = _procfs.read_cpu_ticks(affinity, proc_root)
            model_name = _procfs.cpu_model_name(proc_root)
            sockets = _procfs.cpu_socket_count(proc_root)
        except (OSError, ValueError) as exc:
            raise SourceUnavailable(
                f"CPU utilization cannot be read from {proc_root}: {exc}"
            ) from exc

        if tdp_w is None:
            choice = choose_tdp(
                model_name, logical_cpus=machine_cpus, sockets=sockets, table_path=tdp_table
            )
        else:
            choice = TdpChoice(tdp_w, f"TDP {tdp_w:g} W given by the caller", None)
        share = len(affinity) / machine_cpus
        info = DeviceInfo(
            component=Component.CPU,
            name=model_name or "unknown CPU",
            method=METHOD,
            provenance=Provenance.ESTIMATED,
            detail=(
                f"Estimate: power = TDP x share x (0.1 + 0.9 x load^3) (codecarbon's CPU load "
                f"model); {choice.detail}; share = {len(affinity)}/{machine_cpus} CPUs in "
                f"this process's affinity set; load from {proc_root / 'stat'} on those CPUs"
            ),
            power_limit_w=choice.tdp_w,
        )
        start_s = time.monotonic() if now_s is None else now_s
        return cls(
            info=info,
            tdp_w=choice.tdp_w,
            share=share,
            cpus=affinity,
            proc_root=proc_root,
            ticks=ticks,
            now_s=start_s,
        )

    @property
    def devices(self) -> Sequence[DeviceInfo]:
        """One device: the CPUs of the affinity set, as a whole."""
        return (self._info,)

    def read(self, now_s: float) -> Sequence[DeviceReading]:
        """Integrate the model over ``[previous read, now_s]`` and return the energy so far.

        If no clock tick passed since the previous read (two reads within ~10 ms), the load
        is unknown: the interval is left for the next read, and this one reports the energy
        so far with ``power_w`` and ``utilization`` as ``None``.

        Raises:
            SourceError: ``/proc/stat`` could not be read, or the source was closed.
            ValueError: ``now_s`` is earlier than the previous read.
        """
        if self._closed:
            raise SourceError("CPU estimate read after close()")
        if now_s < self._last_s:
            raise ValueError(f"now_s went backwards: {now_s} < {self._last_s}")
        try:
            ticks = _procfs.read_cpu_ticks(self._cpus, self._proc_root)
        except (OSError, ValueError) as exc:
            raise SourceError(f"CPU utilization could not be read: {exc}") from exc
        load = _procfs.busy_fraction(self._ticks, ticks)
        if load is None:
            return (DeviceReading(energy_j=self._energy_j),)
        power_w = self._tdp_w * self._share * cpu_power_fraction(load)
        self._energy_j += power_w * (now_s - self._last_s)
        self._ticks = ticks
        self._last_s = now_s
        return (DeviceReading(energy_j=self._energy_j, power_w=power_w, utilization=load),)

    def close(self) -> None:
        """Mark the source closed; it holds no open files."""
        self._closed = True
