"""A tracked run: counters the training loop updates, and the machinery that stores them.

The user's thread only touches :meth:`Run.step` and :meth:`Run.log_metrics` (plain counter
updates under a lock). The sampler thread closes an interval about once a second; the run
turns it into a :class:`carbon.wire.Batch` and hands it to the sink. A batch the sink could
not take stays queued and is retried with the next one, so a store that is briefly away loses
nothing that was measured.
"""

from __future__ import annotations

import logging
import math
import operator
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from carbon import _clock, wire
from carbon._version import __version__
from carbon.errors import RunStateError
from carbon.sources.base import DeviceInfo, describe_hardware
from carbon.tracking.delivery import Delivery
from carbon.tracking.delta import Delta, DeltaClock
from carbon.tracking.ledger import IntervalEnergy
from carbon.tracking.measure import Edge, Measurement, Window, between_edges, synchronize_cuda
from carbon.tracking.records import batch_of, device_spec
from carbon.tracking.sampler import Sampler
from carbon.tracking.state import RunStatus

if TYPE_CHECKING:
    from carbon.settings import Settings
    from carbon.tracking.config import TrackConfig
    from carbon.tracking.sink import Sink

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def _count(name: str, value: Any) -> int:
    try:
        count = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be a whole number, not {value!r}") from None
    if count < 0:
        raise ValueError(f"{name} must be >= 0, not {count}")
    return count


class Run:
    """One tracked run, created by :func:`carbon.track`.

    Attributes:
        id: 32-character hex id of the run in the store.
        config: The arguments the run was tracked with.
        status: Where the run is in its life.
    """

    def __init__(self, config: TrackConfig, name: str, run_id: str | None = None) -> None:
        self.id = run_id or uuid.uuid4().hex
        self.config = config
        self.name = name
        self.status = RunStatus.RUNNING
        self.started_at: datetime | None = None
        self._lock = threading.Lock()
        self._steps = 0
        self._samples: int | None = None
        self._tokens: int | None = None
        self._flops: float | None = None
        self._metrics: dict[str, float] = {}
        self._flops_method: str | None = None
        self._flops_per_step: float | None = None
        self._rank = 0
        self._precision: str | None = None
        self._windows: list[wire.WindowRecord] = []
        self._sent = (0, 0, 0, 0.0)
        self._seq = 0
        self._batch_end_s = 0.0
        self._delivery: Delivery | None = None
        self._sampler: Sampler | None = None
        self._sink: Sink | None = None
        self._devices: list[DeviceInfo] = []

    # -- what the training loop calls -------------------------------------------------

    def step(
        self,
        samples: int | None = None,
        tokens: int | None = None,
        flops: float | None = None,
        *,
        flops_method: str | None = None,
    ) -> None:
        """Count the work of one step (or of several: the counts simply add up).

        Args:
            samples: Examples processed (a batch's size), or inferences served.
            tokens: Tokens processed.
            flops: Floating-point operations the model computed (reported FLOPs).
            flops_method: How ``flops`` was obtained, stored as the run's ``flops_method``
                (``"reported"`` when not given; the first method a run gets stays).

        Raises:
            ValueError: A count is negative, NaN or not a number, or the method is empty or
                longer than 32 characters; nothing is counted.
        """
        n_samples = _count("samples", samples) if samples is not None else None
        n_tokens = _count("tokens", tokens) if tokens is not None else None
        if flops is not None and not (isinstance(flops, int | float) and 0 <= flops < math.inf):
            raise ValueError(f"flops must be a finite number >= 0, not {flops!r}")
        if flops_method is not None and not (
            isinstance(flops_method, str) and 0 < len(flops_method) <= 32
        ):
            raise ValueError(f"flops_method must be 1 to 32 characters, not {flops_method!r}")
        with self._lock:
            self._steps += 1
            if n_samples is not None:
                self._samples = (self._samples or 0) + n_samples
            if n_tokens is not None:
                self._tokens = (self._tokens or 0) + n_tokens
            if flops is not None:
                self._flops = (self._flops or 0.0) + float(flops)
                self._flops_method = self._flops_method or flops_method or "reported"
            elif self._flops_per_step is not None:
                self._flops = (self._flops or 0.0) + self._flops_per_step

    def log_metrics(self, **metrics: float) -> None:
        """Record quality metrics of the run (accuracy, loss, ...); later values win.

        Raises:
            ValueError: A value is not a finite number; none of the call's metrics is kept.
        """
        checked = {}
        for key, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"metric {key!r} must be a number, not {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"metric {key!r} must be finite, not {value!r}")
            checked[key] = float(value)
        with self._lock:
            self._metrics.update(checked)

    def count_flops(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run one step under torch's FLOP counter and count that many FLOPs per step.

        Counting is slow, so it is done once: every ``run.step()`` of the run (those before
        this call too) then counts the FLOPs measured here, unless it reports its own with
        ``flops=``. The run's ``flops_method`` becomes ``counted``. When ``fn`` is a torch
        module and the run's compression names no precision, the precision is taken from
        the module's weights (for MFU).

        Args:
            fn: One step: a model, or a function doing a forward (and backward) pass.
            *args: Passed to ``fn``.
            **kwargs: Passed to ``fn``.

        Returns:
            What ``fn`` returned.
        """
        from carbon.accounting.flop_counter import count_flops, dtype_precision

        counted = count_flops(fn, *args, **kwargs)
        precision = None
        if self._precision is None and hasattr(fn, "parameters"):
            precision = dtype_precision(fn)  # type: ignore[arg-type]
        with self._lock:
            self._flops_per_step = counted.flops
            self._flops = counted.flops * self._steps
            self._flops_method = "counted"
            self._precision = self._precision or precision
        return counted.result

    def measure(self, name: str) -> Window:
        """A measurement window: ``with run.measure("eval") as m: ...``, then ``m.energy_j``.

        The window's energy is read at its edges (after queued GPU work has finished), so
        windows may nest. Its figures are stored with the run and returned as a frozen
        :class:`~carbon.tracking.measure.Measurement` in ``m.result``.

        Raises:
            ValueError: The name is empty.
        """
        return Window(self, name)

    def summary(self) -> dict[str, Any]:
        """The run as stored, in the JSON shape of ``carbon runs show --json``."""
        if self._sink is None:
            raise RunStateError("the run has not started; use it inside `with carbon.track(...)`")
        return self._sink.summary(self.id)

    def delta(self) -> Delta:
        """Energy, CO2e and work since the previous call (the first: since the run started).

        For a logger that records carbon's figures per step or per epoch: the deltas add up
        to the run's totals. Each call reads every source at an edge, as a window does
        (after queued GPU work, and up to about 0.1 s for an NVML energy counter's next
        step), so call it at logging steps or epoch ends, not in every step of a fast loop.
        CO2e uses the intensity and PUE the run resolved at its start.

        Returns:
            A frozen :class:`~carbon.tracking.delta.Delta`.

        Raises:
            RunStateError: The run is not running (not started, or already ended).
        """
        if self._sampler is None:
            raise RunStateError("the run has not started; use it inside `with carbon.track(...)`")
        if self.status.is_final:
            raise RunStateError(f"run.delta() needs a running run; this one is {self.status}")
        return self._deltas.take(self._edge, self._precision)

    @property
    def devices(self) -> list[DeviceInfo]:
        """The devices measured in this run."""
        return list(self._devices)

    # -- lifecycle, driven by the tracker ---------------------------------------------

    def _start(self, settings: Settings, sources: list[Any], sink: Sink) -> None:
        from carbon.accounting.catalog import normalize_precision
        from carbon.accounting.resolve import resolve

        region = self.config.region or settings.region
        given_pue = self.config.pue if self.config.pue is not None else settings.pue
        pue, pue_source = given_pue or 1.0, "given" if given_pue is not None else None
        warnings: list[str] = []
        intensity = None
        if region is not None:
            pricing = resolve(region, pue=given_pue, live=_live_provider(settings))
            region, factor = pricing.region.code, pricing.intensity
            pue, pue_source = pricing.pue.pue, pricing.pue.source
            intensity = wire.IntensityInfo(
                intensity_g_per_kwh=factor.intensity_g_per_kwh,
                source=factor.source,
                zone=factor.zone,
                year=factor.year,
                factor_type=factor.factor_type,
                fallback=factor.fallback,
                fallback_reason=factor.fallback_reason,
            )
        else:
            warnings.append("no region set (CARBON_REGION or region=...): CO2e is unknown")
        self._devices = [device for source in sources for device in source.devices]
        # The factors this run is priced with, kept for run.delta()'s CO2e.
        self._deltas = DeltaClock(
            self._devices,
            intensity_g_per_kwh=None if intensity is None else intensity.intensity_g_per_kwh,
            pue=pue,
        )
        precision = self.config.compression.get("precision")
        if precision is not None:
            self._precision = normalize_precision(str(precision))
            if self._precision is None:
                warnings.append(f"precision {precision!r} is not one carbon knows: MFU unknown")
        tags = dict(self.config.tags)
        if settings.distributed:
            self._rank = settings.rank or 0
            tags.update(job_id=str(settings.job_id), world_size=str(settings.world_size))
        self._sink = sink
        self._delivery = Delivery(sink, self.id)
        self._sampler = Sampler(sources, hz=settings.sample_hz, on_interval=self._on_interval)
        self.started_at = _clock.utc_now()
        self._sampler.start()
        start = wire.RunStart(
            id=self.id,
            project=self.config.project,
            name=self.name,
            kind=self.config.kind,  # type: ignore[arg-type]  # checked by TrackConfig
            started_at=self.started_at,
            host=socket.gethostname(),
            region=region,
            pue=pue,
            pue_source=pue_source,
            intensity=intensity,
            sample_hz=settings.sample_hz,
            carbon_version=__version__,
            simulated=self.config.simulated or settings.simulate_gpus > 0,
            rank=self._rank,
            world_size=(settings.world_size or 1) if settings.distributed else 1,
            job_id=settings.job_id if settings.distributed else None,
            hardware=describe_hardware(self._devices),
            compression=dict(self.config.compression),
            tags=tags,
            warnings=warnings,
            devices=[device_spec(position, d) for position, d in enumerate(self._devices)],
        )
        try:
            sink.start_run(start)
        except BaseException:
            self._sampler.stop()
            self._close_sources()
            raise
        self._delivery.open()

    def _finish(self, status: RunStatus, error: str | None) -> None:
        if self._sampler is None or self._sink is None or self._delivery is None:
            raise RunStateError("the run was never started")
        self.status = self.status.to(status)
        try:
            try:
                synchronize_cuda()
            except Exception:  # a broken CUDA context must not lose the run's energy
                log.warning("carbon: could not wait for GPU work at the end of run %s", self.id)
            end = self._sampler.stop()
        finally:
            self._close_sources()
        self._delivery.flush()
        self._sink.finish_run(
            wire.RunEnd(
                run_id=self.id,
                rank=self._rank,
                status=cast(wire.FinalStatus, status.value),
                ended_at=self._ended_at(end),
                error=error,
            )
        )

    def _ended_at(self, end: float) -> datetime:
        """The run's end on the wall clock: its start plus its duration on the monotonic clock.

        Reading the wall clock again would turn a clock moved during the run (NTP, a person,
        a VM resumed) into an end that disagrees with the measured duration.
        """
        assert self._sampler is not None
        assert self.started_at is not None
        return self.started_at + timedelta(seconds=end - self._sampler.t0)

    def _close_sources(self) -> None:
        assert self._sampler is not None
        for source in self._sampler.sources:
            try:
                source.close()
            except Exception:  # a source that cannot close must not lose the run
                log.debug("closing a power source raised", exc_info=True)

    def _counters(self) -> tuple[int, int | None, int | None, float | None]:
        with self._lock:
            return self._steps, self._samples, self._tokens, self._flops

    def _edge(self) -> Edge:
        if self._sampler is None or self.status.is_final:
            raise RunStateError("windows can only be measured while the run is running")
        synchronize_cuda()
        offset_s, cumulative_j = self._sampler.read_now()
        return offset_s, cumulative_j, self._counters()

    def _close_window(self, name: str, begin: Edge) -> Measurement:
        measurement, record = between_edges(name, begin, self._edge(), self._devices)
        with self._lock:
            self._windows.append(record)
        return measurement

    # -- the sampler thread's side ----------------------------------------------------

    def _on_interval(self, intervals: list[IntervalEnergy]) -> None:
        assert self._sampler is not None
        with self._lock:
            steps, samples, tokens, flops = self._steps, self._samples, self._tokens, self._flops
            metrics = dict(self._metrics)
            windows, self._windows = self._windows, []
            flops_method, precision = self._flops_method, self._precision
        sent_steps, sent_samples, sent_tokens, sent_flops = self._sent
        work = (steps - sent_steps, (samples or 0) - sent_samples, (tokens or 0) - sent_tokens)
        work_flops = (flops or 0.0) - sent_flops
        self._sent = (steps, samples or 0, tokens or 0, flops or 0.0)
        # The interval just closed: devices' samples may start earlier (one spanning a gap)
        # or end earlier (a device that stopped being read), the batch covers the interval.
        start_s, end_s = self._batch_end_s, self._sampler.ledger.open_since_s
        self._batch_end_s = end_s
        batch = batch_of(
            run_id=self.id,
            rank=self._rank,
            seq=self._seq,
            intervals=intervals,
            span_s=(start_s, end_s),
            work=(*work, work_flops),
            windows=windows,
            totals=wire.Totals(
                duration_s=end_s,
                device_energy_j=self._sampler.ledger.totals_j,
                steps=steps,
                samples=samples,
                tokens=tokens,
                flops=flops,
                flops_method=flops_method,
                precision=precision,
                metrics=metrics,
            ),
            sampler=self._sampler,
        )
        self._seq += 1
        assert self._delivery is not None
        self._delivery.put(batch)


def _live_provider(settings: Settings) -> Any:
    """An Electricity Maps client when a token is configured, else ``None``."""
    if settings.electricitymaps_token is None:
        return None
    from carbon.accounting.providers.electricitymaps import ElectricityMapsProvider

    return ElectricityMapsProvider(
        settings.electricitymaps_token.get_secret_value(), base_url=settings.electricitymaps_url
    )
