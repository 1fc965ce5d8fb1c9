"""The records an agent sends to a store, defined once.

The local sink writes them to SQL; a remote sink sends them as JSON to the team server, which
validates them with the same models. Sample batches are columnar (one list per field) and
carry a per-run sequence number, so a retried batch can be recognised.

Times inside a run are offsets in seconds from the run's start, measured on the monotonic
clock; wall-clock time appears once, as ``started_at``, so a clock jump during a run moves
no interval.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    model_validator,
)

RunKind = Literal["training", "inference"]
FinalStatus = Literal["completed", "failed", "interrupted"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")

MAX_INT32 = 2**31 - 1
"""Largest rank, device position or index: the store keeps them as 32-bit integers."""
MAX_INT64 = 2**63 - 1
"""Largest count (steps, samples, tokens, bytes): the store keeps them as 64-bit integers."""
MAX_ENERGY_J = 1e18
"""Largest energy one figure may hold (278 GWh, far past any run), so sums stay finite."""
MAX_FLOPS = 1e36
"""Largest FLOP count one figure may hold (10^10 times the largest runs), so sums stay finite."""
MAX_PUE = 1_000.0
"""Largest PUE a run may give: no facility comes near; a product with energy stays finite."""
MAX_INTENSITY_G_PER_KWH = 1e6
"""Largest grid intensity a run may give (1 t/kWh; coal is about 1 kg/kWh)."""

_Energy = Annotated[float, Field(ge=0, le=MAX_ENERGY_J, allow_inf_nan=False)]
_Flops = Annotated[float, Field(ge=0, le=MAX_FLOPS, allow_inf_nan=False)]
_Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


def _has_utc_time(value: datetime) -> datetime:
    """Refuse an aware time that has no UTC equivalent (year 1 east of UTC, 9999 west)."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} lies outside years 1 to 9999 in UTC") from None
    return value


UtcTime = Annotated[AwareDatetime, AfterValidator(_has_utc_time)]
"""A timezone-aware time the store can keep (in UTC)."""

MAX_BATCH_ROWS = 100_000
"""Most samples (or work rows) one batch may carry."""

_Count = Annotated[int, Field(ge=0, le=MAX_INT64)]
"""A work counter of one row."""
MAX_GAPS = 1_000
"""Most gaps one batch may carry (a run lists at most a few hundred of its own)."""
MAX_GAP_REASON_CHARS = 1_000
"""Longest reason a gap may give."""


class DeviceSpec(BaseModel):
    """A device as measured in one run; ``position`` orders devices within the run."""

    model_config = _FROZEN

    position: int = Field(ge=0, le=MAX_INT32)
    component: Literal["gpu", "cpu", "ram"]
    name: str = Field(max_length=255)
    method: str = Field(max_length=32)
    provenance: Literal["measured", "integrated", "estimated"]
    detail: str
    index: int | None = Field(default=None, ge=0, le=MAX_INT32)
    uuid: str | None = Field(default=None, max_length=96)
    power_limit_w: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    memory_bytes: int | None = Field(default=None, ge=0, le=MAX_INT64)


class IntensityInfo(BaseModel):
    """The grid carbon intensity a run's CO2e is computed with, and where it came from."""

    model_config = _FROZEN

    intensity_g_per_kwh: float = Field(ge=0, le=MAX_INTENSITY_G_PER_KWH, allow_inf_nan=False)
    source: str
    zone: str = Field(max_length=64)
    year: int | None = Field(default=None, ge=1, le=9999)
    factor_type: str | None = Field(default=None, max_length=16)
    fallback: bool = False
    fallback_reason: str | None = None


class RunStart(BaseModel):
    """Everything known when a run starts."""

    model_config = _FROZEN

    id: str = Field(pattern=r"^[0-9a-f]{32}$")
    project: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    kind: RunKind
    started_at: UtcTime
    host: str = Field(max_length=255)
    region: str | None = Field(max_length=64)
    pue: float = Field(ge=1.0, le=MAX_PUE, allow_inf_nan=False)
    pue_source: str | None = None
    intensity: IntensityInfo | None
    sample_hz: float = Field(gt=0, allow_inf_nan=False)
    carbon_version: str = Field(max_length=32)
    simulated: bool = False
    rank: int = Field(default=0, ge=0, le=MAX_INT32)
    world_size: int = Field(default=1, ge=1, le=MAX_INT32)
    job_id: str | None = Field(default=None, max_length=128)
    hardware: dict[str, Any] = Field(default_factory=dict)
    compression: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    devices: list[DeviceSpec]

    @model_validator(mode="after")
    def _devices_in_position_order(self) -> Self:
        """Positions are 0, 1, 2, ... in order: batches name devices by them."""
        for index, device in enumerate(self.devices):
            if device.position != index:
                raise ValueError(
                    f"devices: the device at index {index} has position {device.position}; "
                    "positions are 0, 1, 2, ... in the order the devices are listed"
                )
        return self


class Totals(BaseModel):
    """Cumulative figures of a run so far; each batch carries the latest ones."""

    model_config = _FROZEN

    duration_s: float = Field(ge=0, allow_inf_nan=False)
    device_energy_j: list[_Energy]
    steps: int = Field(ge=0, le=MAX_INT64)
    samples: int | None = Field(default=None, ge=0, le=MAX_INT64)
    tokens: int | None = Field(default=None, ge=0, le=MAX_INT64)
    flops: _Flops | None = None
    flops_method: str | None = Field(default=None, max_length=32)
    precision: str | None = Field(default=None, max_length=16)
    metrics: dict[str, FiniteFloat] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _finite_energy(self) -> Self:
        for value in self.device_energy_j:
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"device_energy_j holds {value!r}; energy must be finite and >= 0")
        return self


class WindowRecord(BaseModel):
    """A closed measurement window (``with run.measure(name)``) and its figures."""

    model_config = _FROZEN

    name: str = Field(min_length=1, max_length=200)
    start_s: float = Field(ge=0, allow_inf_nan=False)
    duration_s: float = Field(ge=0, allow_inf_nan=False)
    energy_j: _Energy | None = None
    energy_gpu_j: _Energy | None = None
    energy_cpu_j: _Energy | None = None
    energy_ram_j: _Energy | None = None
    steps: int = Field(ge=0, le=MAX_INT64)
    samples: int | None = Field(default=None, ge=0, le=MAX_INT64)
    tokens: int | None = Field(default=None, ge=0, le=MAX_INT64)
    flops: _Flops | None = None


class Gap(BaseModel):
    """A span in which a device, or every device, has no per-second samples, and why.

    A device's gap opens at its last reading (a GPU lost, a source failed, a read that
    failed) and closes when it is read again; a full agent spool opens one for every device
    (``device`` is ``None``) over the batches it kept without their samples. Energy over a
    closed gap is not lost where the device has an energy counter: it lands in the device's
    first sample after the gap, which spans the gap. ``end_s`` is ``None`` while the gap is
    open, and at the run's end means "until the end". Batches carry every gap of their rank
    so far, so the store updates a gap that grew (same device and ``start_s``) in place.
    """

    model_config = _FROZEN

    device: int | None = Field(default=None, ge=0, le=MAX_INT32)
    start_s: float = Field(ge=0, allow_inf_nan=False)
    end_s: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    reason: str = Field(min_length=1, max_length=MAX_GAP_REASON_CHARS)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end_s is not None and self.end_s < self.start_s:
            raise ValueError(f"a gap ends ({self.end_s!r} s) before it starts ({self.start_s!r} s)")
        return self


class Batch(BaseModel):
    """Samples and work deltas of a run since the previous batch, column by column.

    ``sample_offset_s`` is the end of each sample's interval, in seconds from the run's
    start; a device's samples come in time order and end no later than the run's
    ``totals.duration_s``.
    """

    model_config = _FROZEN

    run_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    rank: int = Field(default=0, ge=0, le=MAX_INT32)
    seq: int = Field(ge=0, le=MAX_INT32)
    sample_device: list[int] = Field(default_factory=list, max_length=MAX_BATCH_ROWS)
    sample_offset_s: list[FiniteFloat] = Field(default_factory=list)
    sample_interval_s: list[FiniteFloat] = Field(default_factory=list)
    sample_energy_j: list[_Energy] = Field(default_factory=list)
    sample_utilization: list[_Fraction | None] = Field(default_factory=list)
    work_offset_s: list[FiniteFloat] = Field(default_factory=list, max_length=MAX_BATCH_ROWS)
    work_interval_s: list[FiniteFloat] = Field(default_factory=list)
    work_steps: list[_Count] = Field(default_factory=list)
    work_samples: list[_Count] = Field(default_factory=list)
    work_tokens: list[_Count] = Field(default_factory=list)
    work_flops: list[_Flops] = Field(default_factory=list)
    windows: list[WindowRecord] = Field(default_factory=list, max_length=10_000)
    totals: Totals
    failed_devices: dict[int, str] = Field(default_factory=dict)
    failed_at_s: dict[int, FiniteFloat] = Field(default_factory=dict)
    gaps: list[Gap] = Field(default_factory=list, max_length=MAX_GAPS)

    @model_validator(mode="after")
    def _columns_agree(self) -> Self:
        sample_cols = (
            self.sample_offset_s,
            self.sample_interval_s,
            self.sample_energy_j,
            self.sample_utilization,
        )
        if any(len(col) != len(self.sample_device) for col in sample_cols):
            raise ValueError("sample columns differ in length")
        work_cols = (
            self.work_interval_s,
            self.work_steps,
            self.work_samples,
            self.work_tokens,
            self.work_flops,
        )
        if any(len(col) != len(self.work_offset_s) for col in work_cols):
            raise ValueError("work columns differ in length")
        for value in self.sample_energy_j:
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"sample_energy_j holds {value!r}; energy must be finite and >= 0")
        for value in self.sample_interval_s:
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"sample_interval_s holds {value!r}; intervals must be > 0")
        slack_s = 1e-6 * max(1.0, self.totals.duration_s)
        last_end_s: dict[int, float] = {}
        for device, end_s, interval_s in zip(
            self.sample_device, self.sample_offset_s, self.sample_interval_s, strict=True
        ):
            if device < 0:
                raise ValueError(f"sample_device holds {device}; positions are >= 0")
            if end_s - interval_s < -slack_s or end_s > self.totals.duration_s + slack_s:
                raise ValueError(
                    f"sample_offset_s holds {end_s!r}: outside the run so far "
                    f"(0 to totals.duration_s = {self.totals.duration_s!r} s)"
                )
            if end_s - interval_s < last_end_s.get(device, -math.inf) - slack_s:
                raise ValueError(
                    f"sample_offset_s: device {device}'s samples are out of time order "
                    f"({end_s!r} s after {last_end_s[device]!r} s)"
                )
            last_end_s[device] = end_s
        for end_s, interval_s in zip(self.work_offset_s, self.work_interval_s, strict=True):
            if not -slack_s <= end_s <= self.totals.duration_s + slack_s:
                raise ValueError(
                    f"work_offset_s holds {end_s!r}: outside the run so far "
                    f"(0 to totals.duration_s = {self.totals.duration_s!r} s)"
                )
            if interval_s < 0:
                raise ValueError(f"work_interval_s holds {interval_s!r}; intervals are >= 0")
        for value in (*self.work_steps, *self.work_samples, *self.work_tokens, *self.work_flops):
            if value < 0:
                raise ValueError(f"work counters hold {value}; counts are >= 0")
        self._gaps_within_run(slack_s)
        return self

    def _gaps_within_run(self, slack_s: float) -> None:
        seen: set[tuple[int | None, float]] = set()
        for gap in self.gaps:
            for bound_s in (gap.start_s, gap.end_s):
                if bound_s is not None and bound_s > self.totals.duration_s + slack_s:
                    raise ValueError(
                        f"gaps: a gap at {bound_s!r} s lies past the run so far "
                        f"(totals.duration_s = {self.totals.duration_s!r} s)"
                    )
            key = (gap.device, gap.start_s)
            if key in seen:
                raise ValueError(
                    f"gaps: two gaps of device {gap.device} start at {gap.start_s!r} s"
                )
            seen.add(key)


class RunEnd(BaseModel):
    """How a run ended."""

    model_config = _FROZEN

    run_id: str
    rank: int = Field(default=0, ge=0, le=MAX_INT32)
    status: FinalStatus
    ended_at: UtcTime
    error: str | None = None


class Heartbeat(BaseModel):
    """A sign of life from an agent whose run has nothing else to send yet."""

    model_config = _FROZEN

    rank: int = Field(default=0, ge=0, le=MAX_INT32)


class StartAck(BaseModel):
    """The server's answer to a :class:`RunStart`: ``created`` is false for a repeat."""

    model_config = _FROZEN

    run_id: str
    rank: int
    created: bool


class BatchAck(BaseModel):
    """The server's answer to a :class:`Batch`: ``stored`` is false when it already had it."""

    model_config = _FROZEN

    run_id: str
    rank: int
    seq: int
    stored: bool


class RunStatusAck(BaseModel):
    """The server's answer to a :class:`RunEnd` or a :class:`Heartbeat`: the run's status."""

    model_config = _FROZEN

    run_id: str
    status: str
