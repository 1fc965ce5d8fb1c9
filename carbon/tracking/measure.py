"""Measurement windows inside a run: ``with run.measure("eval") as m:``.

A window reads every source at its two edges (after waiting for queued GPU work, where
torch drives a GPU) and subtracts: its energy per device is the difference of the cumulative
energy at the edges, so windows may nest or overlap freely and never disturb the run's own
samples.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from carbon import wire
from carbon.errors import RunStateError
from carbon.sources.base import DeviceInfo, methods_by_component

if TYPE_CHECKING:
    from carbon.tracking.run import Run


@dataclass(frozen=True, slots=True)
class Measurement:
    """Energy and work of one window of a run.

    Attributes:
        name: The window's name.
        start_s: Start, seconds since the run started.
        duration_s: Length of the window, seconds.
        energy_j: Energy of all devices over the window; ``None`` if no device was read.
        energy_by_component_j: ``gpu``, ``cpu``, ``ram`` energy; ``None`` where not measured.
        method: ``gpu``, ``cpu``, ``ram`` method names, as for the run.
        steps: ``run.step`` calls made in the window.
        samples: Samples counted in the window, if any were counted.
        tokens: Tokens counted in the window, if any were counted.
        flops: FLOPs counted in the window, if any were counted.
    """

    name: str
    start_s: float
    duration_s: float
    energy_j: float | None
    energy_by_component_j: Mapping[str, float | None]
    method: Mapping[str, str | None]
    steps: int
    samples: int | None
    tokens: int | None
    flops: float | None


Counters = tuple[int, int | None, int | None, float | None]
"""A run's steps, samples, tokens and FLOPs at one moment."""
Edge = tuple[float, list[float], Counters]
"""One edge of a window: seconds since the run started, energy per device, counters."""


def between_edges(
    name: str, begin: Edge, end: Edge, devices: Sequence[DeviceInfo]
) -> tuple[Measurement, wire.WindowRecord]:
    """The figures of a window from its two edges, and the record that stores them."""
    start_s, start_j, (steps0, samples0, tokens0, flops0) = begin
    end_s, end_j, (steps1, samples1, tokens1, flops1) = end
    by_component: dict[str, float | None] = {"gpu": None, "cpu": None, "ram": None}
    for device, before_j, after_j in zip(devices, start_j, end_j, strict=True):
        by_component[device.component] = (by_component[device.component] or 0.0) + (
            after_j - before_j
        )
    known = [value for value in by_component.values() if value is not None]
    measurement = Measurement(
        name=name,
        start_s=start_s,
        duration_s=end_s - start_s,
        energy_j=math.fsum(known) if known else None,
        energy_by_component_j=by_component,
        method=methods_by_component(devices),
        steps=steps1 - steps0,
        samples=None if samples1 is None else samples1 - (samples0 or 0),
        tokens=None if tokens1 is None else tokens1 - (tokens0 or 0),
        flops=None if flops1 is None else flops1 - (flops0 or 0.0),
    )
    record = wire.WindowRecord(
        name=name,
        start_s=start_s,
        duration_s=measurement.duration_s,
        energy_j=measurement.energy_j,
        energy_gpu_j=by_component["gpu"],
        energy_cpu_j=by_component["cpu"],
        energy_ram_j=by_component["ram"],
        steps=measurement.steps,
        samples=measurement.samples,
        tokens=measurement.tokens,
        flops=measurement.flops,
    )
    return measurement, record


def synchronize_cuda() -> None:
    """Wait for work queued on the current CUDA device, if torch is in use with CUDA.

    GPU kernels run asynchronously; without this, a window would close before the work
    launched inside it had run. torch is never imported here: if the program has not
    imported it, there is nothing to wait for.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return
    cuda = getattr(torch, "cuda", None)
    if cuda is not None and cuda.is_available() and cuda.is_initialized():
        cuda.synchronize()


class Window:
    """A measurement window; after the ``with`` block, :attr:`result` holds the figures.

    The window's figures are also reachable as attributes (``m.energy_j``) once it is
    closed.
    """

    def __init__(self, run: Run, name: str) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a window needs a non-empty name, not {name!r}")
        self.run = run
        self.name = name
        self._result: Measurement | None = None
        self._begin: Edge

    def __enter__(self) -> Window:
        self._begin = self.run._edge()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._result = self.run._close_window(self.name, self._begin)

    @property
    def result(self) -> Measurement:
        """The window's measurement.

        Raises:
            RunStateError: The window is still open.
        """
        if self._result is None:
            raise RunStateError(f"window {self.name!r} is still open")
        return self._result

    def __getattr__(self, attribute: str) -> object:
        if attribute.startswith("_") or attribute not in Measurement.__dataclass_fields__:
            raise AttributeError(attribute)
        return getattr(self.result, attribute)
