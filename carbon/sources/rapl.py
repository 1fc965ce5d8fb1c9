"""CPU package and DRAM energy from Intel/AMD RAPL counters, through Linux powercap.

Each RAPL zone is a folder ``/sys/class/powercap/intel-rapl:N`` (AMD Zen uses the same
name on recent kernels) holding ``name`` (``package-N``), ``energy_uj`` (a cumulative
counter in microjoules) and ``max_energy_range_uj`` (where the counter wraps to 0).
Subzones ``intel-rapl:N:M`` are named ``core``, ``uncore`` or ``dram``: core and uncore are
already inside the package figure and are skipped; ``dram`` is memory, outside the package,
and becomes a RAM device. A top-level ``psys`` zone (whole platform, on some laptops) is
skipped too, since it contains the packages.

Wrap-around: when a counter reads lower than before, it wrapped once and the delta is
``max_energy_range_uj - previous + current``. A counter that wraps more than once between
two reads cannot be told from one that wrapped once, so reads must come more often than
``max_energy_range_uj / power`` (typically 262 kJ / 300 W, about 14 minutes); the sampler's
interval of seconds is far below that.

Since 2020 (CVE-2020-8694) kernels make ``energy_uj`` readable by root only, and cloud VMs
usually expose no powercap zones at all; :meth:`RaplSource.open` says which case it met.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from carbon.errors import SourceError, SourceUnavailable
from carbon.sources.base import Component, DeviceInfo, DeviceReading, Provenance
from carbon.units import UJ_PER_J

__all__ = ["DEFAULT_POWERCAP_ROOT", "RaplSource"]

DEFAULT_POWERCAP_ROOT = Path("/sys/class/powercap")
METHOD = "rapl"

_PACKAGE_ZONE = re.compile(r"intel-rapl:(\d+)")
_SUBZONE = re.compile(r"intel-rapl:(\d+):(\d+)")
_PERMISSION_HINT = (
    "run as root, make the counters readable (chmod a+r .../intel-rapl:*/energy_uj "
    "and their subzones), or mount /sys/class/powercap readable into the container"
)


@dataclass(slots=True)
class _Zone:
    """One counter file and its running state."""

    path: Path
    max_range_uj: int
    last_uj: int
    energy_j: float = 0.0


def _read_int(path: Path) -> int:
    """Read one integer from a sysfs file (OSError and ValueError propagate)."""
    return int(path.read_text(encoding="ascii").strip())


def _read_name(zone_dir: Path) -> str:
    try:
        return zone_dir.joinpath("name").read_text(encoding="ascii").strip()
    except OSError:
        return ""


def _find_zones(root: Path, component: Component) -> list[tuple[int, Path, str]]:
    """List (package index, zone folder, zone name) of the zones that measure ``component``."""
    found: list[tuple[int, Path, str]] = []
    for entry in sorted(root.iterdir()):
        if component is Component.CPU and (match := _PACKAGE_ZONE.fullmatch(entry.name)):
            name = _read_name(entry)
            if name.startswith("package"):
                found.append((int(match.group(1)), entry, name))
        elif component is Component.RAM:
            # powercap lists subzones (intel-rapl:N:M) at its top level too.
            sub_match = _SUBZONE.fullmatch(entry.name)
            if sub_match and _read_name(entry) == "dram":
                found.append((int(sub_match.group(1)), entry, "dram"))
    found.sort(key=lambda zone: (zone[0], zone[1].name))
    return found


class RaplSource:
    """Cumulative energy of the CPU packages, or of DRAM, from RAPL counters.

    One source covers one component, as the protocol asks: open it with
    ``component=Component.CPU`` for the packages and ``Component.RAM`` for DRAM. Energy is
    counted from the moment the source is opened.
    """

    def __init__(self, devices: Sequence[DeviceInfo], zones: Sequence[_Zone]) -> None:
        self._devices = tuple(devices)
        self._zones = list(zones)
        self._last_now_s: float | None = None
        self._closed = False

    @classmethod
    def open(
        cls,
        root: Path = DEFAULT_POWERCAP_ROOT,
        *,
        component: Component = Component.CPU,
        cpu_name: str | None = None,
    ) -> RaplSource:
        """Find the RAPL zones for ``component`` under ``root`` and take their first reading.

        Args:
            root: The powercap folder (``/sys/class/powercap``; a fake tree in tests).
            component: ``Component.CPU`` for packages, ``Component.RAM`` for DRAM zones.
            cpu_name: CPU model name to show as the device name; the zone name otherwise.

        Raises:
            SourceUnavailable: No such zones, or their counters are not readable (the
                message says whether it is a permission problem and how to fix it).
            ValueError: ``component`` is GPU.
        """
        if component is Component.GPU:
            raise ValueError("RAPL measures CPU packages and DRAM, not GPUs")
        what = "CPU package" if component is Component.CPU else "DRAM"
        if not root.is_dir():
            raise SourceUnavailable(
                f"no RAPL: {root} does not exist (no powercap driver, not Linux, or a VM "
                "that exposes none)"
            )
        try:
            found = _find_zones(root, component)
        except PermissionError as exc:
            raise SourceUnavailable(
                f"RAPL zones under {root} cannot be listed (permission denied): {_PERMISSION_HINT}"
            ) from exc
        except OSError as exc:
            raise SourceUnavailable(f"RAPL zones under {root} cannot be listed: {exc}") from exc
        if not found:
            raise SourceUnavailable(f"no RAPL {what} zone under {root}")

        devices: list[DeviceInfo] = []
        zones: list[_Zone] = []
        for index, zone_dir, zone_name in found:
            energy_path = zone_dir / "energy_uj"
            try:
                first_uj = _read_int(energy_path)
                max_range_uj = _read_int(zone_dir / "max_energy_range_uj")
            except PermissionError as exc:
                raise SourceUnavailable(
                    f"RAPL counter {energy_path} is not readable (permission denied): "
                    f"{_PERMISSION_HINT}"
                ) from exc
            except (OSError, ValueError) as exc:
                raise SourceUnavailable(f"RAPL zone {zone_dir} cannot be read: {exc}") from exc
            if max_range_uj <= 0:
                raise SourceUnavailable(
                    f"RAPL zone {zone_dir} reports max_energy_range_uj={max_range_uj}; "
                    "wrap-around cannot be handled"
                )
            zones.append(_Zone(path=energy_path, max_range_uj=max_range_uj, last_uj=first_uj))
            if component is Component.CPU:
                name = cpu_name or zone_name
            else:
                name = f"DRAM of package {index}"
            devices.append(
                DeviceInfo(
                    component=component,
                    name=name,
                    method=METHOD,
                    provenance=Provenance.MEASURED,
                    detail=(
                        f"RAPL {zone_name} energy counter {energy_path} (microjoules, "
                        f"wraps at {max_range_uj / UJ_PER_J:.0f} J)"
                    ),
                    index=index,
                )
            )
        return cls(devices, zones)

    @property
    def devices(self) -> Sequence[DeviceInfo]:
        """One device per package (or per DRAM zone), in package order."""
        return self._devices

    def read(self, now_s: float) -> Sequence[DeviceReading]:
        """Read every counter and return the energy since the source was opened.

        ``power_w`` is the average power since the previous read (``None`` on the first).

        Raises:
            SourceError: A counter file vanished, became unreadable or held garbage, or the
                source was closed.
        """
        if self._closed:
            raise SourceError("RAPL source read after close()")
        dt_s = None if self._last_now_s is None else now_s - self._last_now_s
        readings: list[DeviceReading] = []
        values: list[int] = []
        for zone in self._zones:
            try:
                values.append(_read_int(zone.path))
            except (OSError, ValueError) as exc:
                raise SourceError(f"RAPL counter {zone.path} could not be read: {exc}") from exc
        for zone, current_uj in zip(self._zones, values, strict=True):
            delta_uj = current_uj - zone.last_uj
            if delta_uj < 0:
                delta_uj += zone.max_range_uj
            zone.last_uj = current_uj
            delta_j = delta_uj / UJ_PER_J
            zone.energy_j += delta_j
            power_w = delta_j / dt_s if dt_s is not None and dt_s > 0 else None
            readings.append(DeviceReading(energy_j=zone.energy_j, power_w=power_w))
        self._last_now_s = now_s
        return readings

    def close(self) -> None:
        """Mark the source closed; it holds no open files between reads."""
        self._closed = True
