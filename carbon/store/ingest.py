"""Writing a run's batches into the store: the one write path of the local sink and the server.

:func:`write_batch` takes the connection it works in and the rank's
:class:`~carbon.store.context.RunContext` (made by ``start_run`` or read back by
``load_context``) and keeps nothing between calls, so several
server processes can write one run's ranks. A batch is stored once: a receipt per
``(run, rank, seq)`` makes a retried batch a no-op. Samples go in bulk (binary ``COPY`` on
PostgreSQL); the rank's totals and the run's (summed over ranks, with CO2e) are set in the
same transaction, so lists never scan samples. Batches repeat their rank's gaps (spans
without samples); a gap is found again by its device and start, so one that grew is updated
in place and one seen before changes nothing, whatever order the batches come in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, func, insert, select, update

from carbon import _clock, wire
from carbon.store.bulk import SampleColumns, insert_samples
from carbon.store.context import RunContext, insert_ignore
from carbon.store.minutes import add_minutes, minute_rows
from carbon.store.models import BatchReceipt, Device, Run, RunGap, RunRank, Window, Work
from carbon.store.pricing import add_energy_hours, energy_hour_rows

_RUN = cast(Table, Run.__table__)
_DEVICE = cast(Table, Device.__table__)
_RANK = cast(Table, RunRank.__table__)
_RECEIPT = cast(Table, BatchReceipt.__table__)
_GAP = cast(Table, RunGap.__table__)
_INSERT_GAP = insert(_GAP)
_GAP_END = update(_GAP).where(_GAP.c.id == bindparam("b_id")).values(end_s=bindparam("b_end_s"))
_INSERT_WORK = insert(cast(Table, Work.__table__))
_INSERT_WINDOW = insert(cast(Table, Window.__table__))
_DEVICE_ENERGY = (
    update(_DEVICE)
    .where(_DEVICE.c.id == bindparam("b_id"))
    .values(energy_j=bindparam("b_energy_j"))
)
_DEVICE_FAILED = (
    update(_DEVICE)
    .where(_DEVICE.c.id == bindparam("b_id"))
    .values(error=bindparam("b_error"), failed_at_s=bindparam("b_failed_at_s"))
)
_RANK_COLUMNS = (
    "duration_s",
    "energy_gpu_j",
    "energy_cpu_j",
    "energy_ram_j",
    "steps",
    "samples",
    "tokens",
    "flops",
    "warnings",
    "last_seen_at",
)
_RANK_TOTALS = (
    update(_RANK)
    .where(_RANK.c.run_id == bindparam("b_run_id"), _RANK.c.rank == bindparam("b_rank"))
    .values({column: bindparam(f"b_{column}") for column in _RANK_COLUMNS})
)
"""Statements of the per-second write, built once: they run at every batch."""


@dataclass
class BatchResult:
    """What storing a batch did, for the server's counters.

    Attributes:
        stored: False when the batch had been stored before (a retry): nothing changed.
        samples: Samples stored.
        energy_j_by_device: Energy of the batch's samples per ``(component, device name)``.
        co2e_g_added: How much the run's location-based CO2e grew; ``None`` when unknown.
    """

    stored: bool
    samples: int = 0
    energy_j_by_device: dict[tuple[str, str], float] = field(default_factory=dict)
    co2e_g_added: float | None = None


def write_batch(connection: Connection, context: RunContext, batch: wire.Batch) -> BatchResult:
    """Store one batch, once, and bring the rank's and the run's totals up to date.

    Raises:
        ValueError: The batch names a device position the rank does not have.
    """
    positions = len(context.device_ids)
    if any(not 0 <= p < positions for p in (*batch.sample_device, *batch.failed_devices)):
        raise ValueError(f"sample_device: the rank has devices 0..{positions - 1} only")
    if any(gap.device is not None and gap.device >= positions for gap in batch.gaps):
        raise ValueError(f"gaps: a gap names a device the rank lacks (0..{positions - 1})")
    if len(batch.totals.device_energy_j) != positions:
        raise ValueError(
            f"totals.device_energy_j has {len(batch.totals.device_energy_j)} values for "
            f"{positions} devices"
        )
    now = _clock.utc_now()
    receipt = (
        insert_ignore(connection, _RECEIPT)
        .values(run_id=batch.run_id, rank=batch.rank, seq=batch.seq, received_at=now)
        .returning(_RECEIPT.c.seq)
    )
    if connection.execute(receipt).first() is None:
        return BatchResult(stored=False)
    started = context.started_at
    device_ids = context.device_ids
    samples = SampleColumns(
        run_id=batch.run_id,
        started_at=started,
        device_id=[device_ids[position] for position in batch.sample_device],
        offset_s=batch.sample_offset_s,
        interval_s=batch.sample_interval_s,
        energy_j=batch.sample_energy_j,
        utilization=batch.sample_utilization,
    )
    energy_by_device: dict[tuple[str, str], float] = {}
    for position, energy_j in zip(batch.sample_device, batch.sample_energy_j, strict=True):
        key = (context.components[position], context.device_names[position])
        energy_by_device[key] = energy_by_device.get(key, 0.0) + energy_j
    insert_samples(connection, samples)
    add_minutes(connection, minute_rows(batch.run_id, started, device_ids, batch))
    add_energy_hours(connection, energy_hour_rows(batch.run_id, batch.rank, started, batch))
    if batch.work_offset_s:
        connection.execute(
            _INSERT_WORK,
            [
                {
                    "run_id": batch.run_id,
                    "t": started + timedelta(seconds=offset_s),
                    "offset_s": offset_s,
                    "interval_s": interval_s,
                    "steps": steps,
                    "samples": samples,
                    "tokens": tokens,
                    "flops": flops,
                }
                for offset_s, interval_s, steps, samples, tokens, flops in zip(
                    batch.work_offset_s,
                    batch.work_interval_s,
                    batch.work_steps,
                    batch.work_samples,
                    batch.work_tokens,
                    batch.work_flops,
                    strict=True,
                )
            ],
        )
    if batch.windows:
        connection.execute(
            _INSERT_WINDOW, [{"run_id": batch.run_id, **w.model_dump()} for w in batch.windows]
        )
    if batch.gaps:
        _store_gaps(connection, batch)
    totals = batch.totals
    if context.device_ids:  # a rank may measure no device (a local rank without GPUs)
        connection.execute(
            _DEVICE_ENERGY,
            [
                {"b_id": device_id, "b_energy_j": energy_j}
                for device_id, energy_j in zip(
                    context.device_ids, totals.device_energy_j, strict=True
                )
            ],
        )
    for position, message in batch.failed_devices.items():
        connection.execute(
            _DEVICE_FAILED,
            {
                "b_id": context.device_ids[position],
                "b_error": message,
                "b_failed_at_s": batch.failed_at_s.get(position),
            },
        )
    by_component = context.by_component(totals.device_energy_j)
    rank_values: dict[str, Any] = {
        "duration_s": totals.duration_s,
        "energy_gpu_j": by_component["gpu"],
        "energy_cpu_j": by_component["cpu"],
        "energy_ram_j": by_component["ram"],
        "steps": totals.steps,
        "samples": totals.samples,
        "tokens": totals.tokens,
        "flops": totals.flops,
    }
    warnings = list(dict.fromkeys([*context.start_warnings, *totals.warnings]))
    connection.execute(
        _RANK_TOTALS,
        {"b_run_id": batch.run_id, "b_rank": batch.rank, "b_warnings": warnings}
        | {"b_last_seen_at": now}
        | {f"b_{key}": value for key, value in rank_values.items()},
    )
    run_values: dict[str, Any] = {"last_seen_at": now}
    if batch.rank == 0 or context.world_size == 1:
        run_values.update(
            metrics=dict(totals.metrics),
            flops_method=totals.flops_method,
            precision=totals.precision,
        )
    # Lock the run's row: ranks written at once by several processes add up in turn.
    previous_g = connection.execute(
        select(_RUN.c.co2e_g).where(_RUN.c.id == batch.run_id).with_for_update()
    ).scalar()
    if context.world_size == 1:
        # One process: the run's totals are this rank's, no need to sum.
        run_values.update(rank_values, warnings=warnings)
    else:
        run_values.update(_sums_over_ranks(connection, batch.run_id))
    co2e_g = _set_totals(connection, context, run_values)
    added = None if co2e_g is None else co2e_g - (previous_g or 0.0)
    return BatchResult(True, len(samples), energy_by_device, added)


def _store_gaps(connection: Connection, batch: wire.Batch) -> None:
    """Insert the batch's new gaps and extend those stored before (same device and start)."""
    stored = {
        (row.position, row.start_s): (row.id, row.end_s)
        for row in connection.execute(
            select(_GAP.c.id, _GAP.c.position, _GAP.c.start_s, _GAP.c.end_s).where(
                _GAP.c.run_id == batch.run_id, _GAP.c.rank == batch.rank
            )
        )
    }
    new: list[dict[str, Any]] = []
    extended: list[dict[str, Any]] = []
    for gap in batch.gaps:
        found = stored.get((gap.device, gap.start_s))
        if found is None:
            new.append(
                {
                    "run_id": batch.run_id,
                    "rank": batch.rank,
                    "position": gap.device,
                    "start_s": gap.start_s,
                    "end_s": gap.end_s,
                    "reason": gap.reason,
                }
            )
            continue
        gap_id, end_s = found
        later_s = _later_end(end_s, gap.end_s)
        if later_s != end_s:
            extended.append({"b_id": gap_id, "b_end_s": later_s})
    if new:
        connection.execute(_INSERT_GAP, new)
    if extended:
        connection.execute(_GAP_END, extended)


def _later_end(stored_s: float | None, sent_s: float | None) -> float | None:
    """The end a gap has reached: a gap closes (``None`` -> a time) and grows, never shrinks.

    Taking the later of the two makes the stored gap the same whatever order batches come in.
    """
    if stored_s is None or sent_s is None:
        return sent_s if stored_s is None else stored_s
    return max(stored_s, sent_s)


def _sums_over_ranks(connection: Connection, run_id: str) -> dict[str, Any]:
    """The run's totals as the sums over its ranks."""
    sums = connection.execute(
        select(
            func.max(_RANK.c.duration_s),
            func.sum(_RANK.c.energy_gpu_j),
            func.sum(_RANK.c.energy_cpu_j),
            func.sum(_RANK.c.energy_ram_j),
            func.sum(_RANK.c.steps),
            func.sum(_RANK.c.samples),
            func.sum(_RANK.c.tokens),
            func.sum(_RANK.c.flops),
        ).where(_RANK.c.run_id == run_id)
    ).one()
    duration_s, gpu_j, cpu_j, ram_j, steps, samples, tokens, flops = sums
    warnings = [
        warning
        for (rank_warnings,) in connection.execute(
            select(_RANK.c.warnings).where(_RANK.c.run_id == run_id).order_by(_RANK.c.rank)
        )
        for warning in rank_warnings
    ]
    return {
        "duration_s": duration_s,
        "energy_gpu_j": gpu_j,
        "energy_cpu_j": cpu_j,
        "energy_ram_j": ram_j,
        "steps": int(steps or 0),
        "samples": None if samples is None else int(samples),
        "tokens": None if tokens is None else int(tokens),
        "flops": flops,
        "warnings": list(dict.fromkeys(warnings)),
    }


def _set_totals(
    connection: Connection, context: RunContext, values: dict[str, Any]
) -> float | None:
    """Write the run's totals, with its energy and CO2e derived from the components."""
    known = [
        float(values[key])
        for key in ("energy_gpu_j", "energy_cpu_j", "energy_ram_j")
        if values[key] is not None
    ]
    energy_j = math.fsum(known) if known else None
    figures = context.pricing.figures(connection, energy_j)
    connection.execute(
        update(_RUN).where(_RUN.c.id == context.run_id),
        {"energy_j": energy_j, **figures, **values},
    )
    co2e_g: float | None = figures.get("co2e_g")
    return co2e_g
