"""Small readers for Linux ``/proc`` files used by the estimated sources.

Every function takes the proc root (``/proc`` by default) so tests can point it at fixture
files. They raise :class:`OSError` when a file cannot be read and :class:`ValueError` when
its content is malformed; the sources translate both into carbon's errors.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PROC_ROOT = Path("/proc")

# Field positions on a ``cpuN`` line of /proc/stat (after the label), see proc(5).
_IDLE = 3
_IOWAIT = 4
_GUEST = 8
_GUEST_NICE = 9
_KIB = 1024


@dataclass(frozen=True, slots=True)
class CpuTicks:
    """Cumulative CPU time of a set of CPUs, in clock ticks (USER_HZ).

    Attributes:
        busy: Ticks spent neither idle nor waiting for I/O.
        total: All ticks, guest time excluded (the kernel already counts it in user time).
    """

    busy: int
    total: int


def cpu_model_name(proc_root: Path = DEFAULT_PROC_ROOT) -> str | None:
    """Return the CPU model name from ``/proc/cpuinfo``, or ``None`` where it has none.

    x86 kernels print a ``model name`` line per logical CPU; some ARM kernels print none.
    """
    text = (proc_root / "cpuinfo").read_text(encoding="utf-8", errors="replace")
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "model name" and value.strip():
            return value.strip()
    return None


def cpu_socket_count(proc_root: Path = DEFAULT_PROC_ROOT) -> int | None:
    """Return the number of physical CPU packages (distinct ``physical id`` values).

    Returns ``None`` where ``/proc/cpuinfo`` does not say (many ARM kernels).
    """
    text = (proc_root / "cpuinfo").read_text(encoding="utf-8", errors="replace")
    ids = set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "physical id":
            ids.add(value.strip())
    return len(ids) or None


def read_cpu_ticks(cpus: Collection[int], proc_root: Path = DEFAULT_PROC_ROOT) -> CpuTicks:
    """Sum the busy and total ticks of the given CPUs from the per-CPU lines of ``/proc/stat``.

    Busy time is every tick that is neither ``idle`` nor ``iowait`` (``steal`` counts as busy,
    as in psutil and codecarbon); ``guest`` and ``guest_nice`` are left out of the total
    because the kernel already counts them in ``user`` and ``nice``.

    Args:
        cpus: Logical CPU numbers to include (the process's affinity set).
        proc_root: Where ``/proc`` is.

    Raises:
        OSError: ``/proc/stat`` cannot be read.
        ValueError: None of ``cpus`` has a line, or a line is malformed.
    """
    wanted = set(cpus)
    busy = total = 0
    found = 0
    text = (proc_root / "stat").read_text(encoding="ascii", errors="replace")
    for line in text.splitlines():
        label, _, rest = line.partition(" ")
        if not label.startswith("cpu") or label == "cpu":
            continue
        suffix = label[3:]
        if not suffix.isdigit() or int(suffix) not in wanted:
            continue
        try:
            ticks = [int(field) for field in rest.split()]
        except ValueError:
            raise ValueError(f"malformed /proc/stat line: {line!r}") from None
        if len(ticks) < _IOWAIT + 1:
            raise ValueError(f"malformed /proc/stat line: {line!r}")
        line_total = sum(ticks) - sum(ticks[_GUEST : _GUEST_NICE + 1])
        total += line_total
        busy += line_total - ticks[_IDLE] - ticks[_IOWAIT]
        found += 1
    if not found:
        raise ValueError(f"/proc/stat has no line for any of CPUs {sorted(wanted)}")
    return CpuTicks(busy=busy, total=total)


def busy_fraction(before: CpuTicks, after: CpuTicks) -> float | None:
    """Return the busy fraction (0..1) between two readings, or ``None`` if no tick passed."""
    total = after.total - before.total
    if total <= 0:
        return None
    return min(max((after.busy - before.busy) / total, 0.0), 1.0)


def mem_total_bytes(proc_root: Path = DEFAULT_PROC_ROOT) -> int | None:
    """Return ``MemTotal`` from ``/proc/meminfo`` in bytes, or ``None`` if the line is absent.

    Raises:
        OSError: ``/proc/meminfo`` cannot be read.
        ValueError: The ``MemTotal`` line is malformed.
    """
    text = (proc_root / "meminfo").read_text(encoding="ascii", errors="replace")
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "MemTotal":
            fields = value.split()
            if not fields or not fields[0].isdigit() or fields[1:] not in ([], ["kB"]):
                raise ValueError(f"malformed /proc/meminfo line: {line!r}")
            return int(fields[0]) * (_KIB if fields[1:] else 1)
    return None
