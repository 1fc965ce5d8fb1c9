"""What a run measured, as the wire records its sink takes.

:class:`~carbon.tracking.run.Run` keeps the counters and the lifecycle; this module turns a
closed interval and the counters' advance into one :class:`carbon.wire.Batch`, with the
warnings, failures and gaps the sampler and the sources noticed so far, and a device into its
:class:`carbon.wire.DeviceSpec`.
"""

from __future__ import annotations

from collections.abc import Sequence

from carbon import wire
from carbon.sources.base import DeviceInfo
from carbon.tracking.ledger import DeviceGap, IntervalEnergy
from carbon.tracking.sampler import Sampler


def batch_of(
    *,
    run_id: str,
    rank: int,
    seq: int,
    intervals: Sequence[IntervalEnergy],
    span_s: tuple[float, float],
    work: tuple[int, int, int, float],
    windows: list[wire.WindowRecord],
    totals: wire.Totals,
    sampler: Sampler,
) -> wire.Batch:
    """One batch: a closed interval's samples, the work done in it, and the run so far.

    Args:
        run_id: The run.
        rank: The process's rank in the job.
        seq: The batch's number in the rank, from 0.
        intervals: The closed interval's energy per device (a device's sample may start
            earlier, spanning a gap, or end earlier, a device no longer read).
        span_s: Start and end of the interval the batch covers, seconds since the run began.
        work: Steps, samples, tokens and FLOPs counted during the interval.
        windows: Measurement windows closed since the previous batch.
        totals: The run's totals at the interval's end; the sampler's warnings are added.
        sampler: The run's sampler, for its ledger's anomalies and gaps and its failures.
    """
    start_s, end_s = span_s
    has_work = any(work[:3]) or work[3] > 0
    failures = sampler.failures
    warnings = [
        *sampler.ledger.anomalies,
        *(f"power source failed at {f.at_s:.1f} s: {f.message}" for f in failures),
        *(note for source in sampler.sources for note in source_notes(source)),
    ]
    return wire.Batch(
        run_id=run_id,
        rank=rank,
        seq=seq,
        sample_device=[i.position for i in intervals],
        sample_offset_s=[i.end_s for i in intervals],
        sample_interval_s=[i.end_s - i.start_s for i in intervals],
        sample_energy_j=[i.energy_j for i in intervals],
        sample_utilization=[i.utilization for i in intervals],
        work_offset_s=[end_s] if has_work else [],
        work_interval_s=[end_s - start_s] if has_work else [],
        work_steps=[work[0]] if has_work else [],
        work_samples=[work[1]] if has_work else [],
        work_tokens=[work[2]] if has_work else [],
        work_flops=[work[3]] if has_work else [],
        windows=windows,
        totals=totals.model_copy(update={"warnings": [*totals.warnings, *warnings]}),
        failed_devices={p: f.message for f in failures for p in f.positions},
        failed_at_s={p: f.at_s for f in failures for p in f.positions},
        gaps=gaps_until(sampler.ledger.gaps, end_s),
    )


def gaps_until(gaps: list[DeviceGap], end_s: float) -> list[wire.Gap]:
    """The gaps as a batch ending at ``end_s`` reports them.

    A window's edge, read from the user's thread, may open or close a gap after the
    interval closed: what lies past ``end_s`` waits for the next batch.
    """
    return [
        wire.Gap(
            device=gap.position,
            start_s=gap.start_s,
            end_s=gap.end_s if gap.end_s is not None and gap.end_s <= end_s else None,
            reason=gap.reason[: wire.MAX_GAP_REASON_CHARS],
        )
        for gap in gaps
        if gap.start_s <= end_s
    ]


def source_notes(source: object) -> list[str]:
    """What a source noticed about its devices (skipped GPUs, a frozen counter), if it says."""
    notes = getattr(source, "notes", None)
    return [str(note) for note in notes] if isinstance(notes, list) else []


def device_spec(position: int, device: DeviceInfo) -> wire.DeviceSpec:
    """The wire form of the device at ``position`` in the run."""
    return wire.DeviceSpec(
        position=position,
        component=device.component.value,
        name=device.name,
        method=device.method,
        provenance=device.provenance.value,
        detail=device.detail,
        index=device.index,
        uuid=device.uuid,
        power_limit_w=device.power_limit_w,
        memory_bytes=device.memory_bytes,
    )
