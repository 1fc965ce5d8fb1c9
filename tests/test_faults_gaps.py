"""Gaps as data: spans without per-second samples, validated, stored once, shown.

A gap travels in every batch of its rank (``wire.Batch.gaps``), so the store finds it again
by its device and start: a gap that grows is updated in place, a batch written twice stores
it once, and an older batch arriving late does not shrink or reopen it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from carbon import wire
from carbon.remote.spool import Spool
from carbon.sources.base import DeviceReading
from carbon.store import open_store
from carbon.store.models import BatchReceipt, RunGap
from carbon.store.sink import LocalSink
from carbon.tracking.ledger import MAX_GAPS, DeviceGap, Ledger
from tests.api_helpers import (
    CPU_MODEL,
    GPU_MODEL,
    api,
    batch,
    bearer,
    body,
    make_key,
    run_end,
    run_start,
)
from tests.test_cli import cli

FULL = "spool full: per-second samples not kept"
LOST = "power source failed: GPU 1 is lost"


def _with_gaps(sent: wire.Batch, *gaps: wire.Gap) -> wire.Batch:
    return wire.Batch.model_validate({**sent.model_dump(), "gaps": [g.model_dump() for g in gaps]})


def _gap_rows(store_url: str, run_id: str) -> int:
    with open_store(store_url).session() as session:
        count = session.scalar(
            select(func.count()).select_from(RunGap).where(RunGap.run_id == run_id)
        )
    return int(count or 0)


def test_a_paused_device_stops_at_its_last_reading_and_resumes_across_the_gap() -> None:
    ledger = Ledger(t0=0.0, device_count=2)
    ledger.observe(0, [DeviceReading(None, 100.0), DeviceReading(None, 50.0)], 0.0)
    ledger.observe(0, [DeviceReading(None, 100.0), DeviceReading(None, 50.0)], 0.5)
    assert ledger.pause(1, 0.6, "no reading: x")  # device 1 last read at 0.5 s
    ledger.observe(0, [DeviceReading(None, 100.0), DeviceReading(None, None)], 1.0)
    first = ledger.close_interval(1.0)
    ledger.resume(1, 1.5)
    ledger.observe(0, [DeviceReading(None, 100.0), DeviceReading(None, 50.0)], 1.5)
    ledger.observe(0, [DeviceReading(None, 100.0), DeviceReading(None, 50.0)], 2.0)
    second = ledger.close_interval(2.0)

    as_tuples = [(i.position, i.start_s, i.end_s, i.energy_j) for i in (*first, *second)]
    assert as_tuples == [
        (0, 0.0, 1.0, 100.0),
        (1, 0.0, 0.5, 25.0),  # ends at its last reading, not at 1 s with nothing after
        (0, 1.0, 2.0, 100.0),
        (1, 0.5, 2.0, 75.0),  # spans the gap: 50 W from 0.5 s to 2 s, nothing dropped
    ]
    assert ledger.gaps == [DeviceGap(1, 0.5, 1.5, "no reading: x")]
    assert ledger.totals_j == [200.0, 100.0]


def test_a_device_never_read_has_its_gap_from_the_start_and_no_samples() -> None:
    ledger = Ledger(t0=10.0, device_count=1)
    ledger.pause(0, 10.0, "power source failed: gone")
    assert ledger.close_interval(11.0) == []
    assert ledger.gaps == [DeviceGap(0, 0.0, None, "power source failed: gone")]


def test_a_flapping_device_lists_at_most_max_gaps_and_says_so() -> None:
    ledger = Ledger(t0=0.0, device_count=1)
    for k in range(MAX_GAPS + 5):
        ledger.observe(0, [DeviceReading(energy_j=float(k))], k + 0.1)
        assert ledger.pause(0, k + 0.5, "no reading: x")
        assert not ledger.pause(0, k + 0.6, "no reading: x")  # already paused: no new gap
        ledger.resume(0, k + 0.9)
    assert len(ledger.gaps) == MAX_GAPS
    assert ledger.gaps[-1] == DeviceGap(0, MAX_GAPS - 1 + 0.1, MAX_GAPS - 1 + 0.9, "no reading: x")
    assert ledger.anomalies == [
        f"more than {MAX_GAPS} gaps in the readings: later ones are not listed"
    ]
    assert not ledger.is_paused(0)


@pytest.mark.parametrize(
    ("gap", "message"),
    [
        (
            {"start_s": 3.0, "end_s": 2.0, "reason": "x"},
            r"ends \(2.0 s\) before it starts \(3.0 s\)",
        ),
        ({"start_s": 6.0, "reason": "x"}, "past the run so far"),
        ({"start_s": 1.0, "end_s": 5.5, "reason": "x"}, "past the run so far"),
        ({"start_s": math.nan, "reason": "x"}, "finite number"),
        ({"start_s": -1.0, "reason": "x"}, "greater than or equal to 0"),
        ({"device": -1, "start_s": 1.0, "reason": "x"}, "greater than or equal to 0"),
        ({"start_s": 1.0, "reason": ""}, "at least 1 character"),
        ({"start_s": 1.0, "reason": "x" * 1001}, "at most 1000 characters"),
        ({"start_s": 1.0}, "reason"),
    ],
)
def test_a_bad_gap_is_refused_naming_the_problem(gap: dict[str, Any], message: str) -> None:
    sent = batch("a" * 32, 0).model_dump()  # 5 s of samples
    with pytest.raises(ValidationError, match=message):
        wire.Batch.model_validate({**sent, "gaps": [gap]})


def test_two_gaps_of_one_device_from_one_start_are_refused() -> None:
    gap = {"device": 1, "start_s": 1.0, "reason": "x"}
    with pytest.raises(ValidationError, match=r"two gaps of device 1 start at 1\.0 s"):
        wire.Batch.model_validate({**batch("a" * 32, 0).model_dump(), "gaps": [gap, gap]})


def test_too_many_gaps_are_refused() -> None:
    gaps = [{"device": 0, "start_s": i / 1000, "reason": "x"} for i in range(wire.MAX_GAPS + 1)]
    with pytest.raises(ValidationError, match="at most 1000 items"):
        wire.Batch.model_validate({**batch("a" * 32, 0).model_dump(), "gaps": gaps})


def test_a_batch_without_gaps_is_spooled_without_the_field(tmp_path: Path) -> None:
    """A server older than gaps refuses unknown fields: an agent sends none it need not."""
    spool = Spool(tmp_path / "spool.db")
    try:
        spool.append(batch("a" * 32, 0))
        spool.append(_with_gaps(batch("a" * 32, 1), wire.Gap(start_s=1.0, reason="x")))
        plain, with_gap = (record.body for record in spool.pending())
    finally:
        spool.close()
    assert b"gaps" not in plain
    assert b'"gaps":[{"device":null,"start_s":1.0,"end_s":null,"reason":"x"}]' in with_gap


def test_a_growing_gap_is_stored_once_and_only_ever_grows(store_url: str) -> None:
    sink = LocalSink(open_store(store_url))
    start = run_start()
    sink.start_run(start)
    gpu_lost = wire.Gap(device=1, start_s=7.25, reason=LOST)
    full_until_10 = wire.Gap(start_s=5.0, end_s=10.0, reason=FULL)
    full_until_15 = wire.Gap(start_s=5.0, end_s=15.0, reason=FULL)
    gpu_back = wire.Gap(device=1, start_s=7.25, end_s=12.5, reason=LOST)
    first = batch(start.id, 0, seconds=5, first_s=0)
    second = _with_gaps(batch(start.id, 1, seconds=5, first_s=5), gpu_lost, full_until_10)
    third = _with_gaps(batch(start.id, 2, seconds=5, first_s=10), gpu_back, full_until_15)
    for sent in (first, second, third, second):  # the last: a retry, stored once
        sink.write(sent)
    # An older view of both gaps arriving late (a batch of another seq) changes neither.
    sink.write(_with_gaps(batch(start.id, 3, seconds=5, first_s=15), gpu_lost, full_until_10))
    sink.finish_run(run_end(start.id))

    summary = sink.summary(start.id)
    assert summary["gaps"] == [
        {
            "rank": 0,
            "device": None,
            "component": None,
            "name": None,
            "start_s": 5.0,
            "end_s": 15.0,
            "reason": FULL,
        },
        {
            "rank": 0,
            "device": 1,
            "component": "gpu",
            "name": GPU_MODEL,
            "start_s": 7.25,
            "end_s": 12.5,
            "reason": LOST,
        },
    ]
    assert _gap_rows(store_url, start.id) == 2


def test_a_gap_open_at_the_end_lasts_until_the_end(store_url: str, tmp_path: Path) -> None:
    settings_env = {"CARBON_DATABASE_URL": store_url, "CARBON_HOME": str(tmp_path)}
    sink = LocalSink(open_store(store_url))
    start = run_start()
    sink.start_run(start)
    cpu_failed = wire.Gap(device=2, start_s=3.5, reason="power source failed: RAPL vanished")
    sink.write(_with_gaps(batch(start.id, 0, seconds=5), cpu_failed))
    sink.finish_run(run_end(start.id, status="interrupted"))

    [gap] = sink.summary(start.id)["gaps"]
    assert (gap["device"], gap["component"], gap["name"]) == (2, "cpu", CPU_MODEL)
    assert (gap["start_s"], gap["end_s"]) == (3.5, None)
    shown = cli("runs", "show", start.id, env=settings_env)
    assert shown.returncode == 0, shown.stderr
    assert (
        f"  gap     cpu {CPU_MODEL}: no per-second samples from 3.5 s to the end "
        "(power source failed: RAPL vanished)"
    ) in shown.stdout.splitlines()


def test_a_gap_naming_a_device_the_rank_lacks_changes_nothing(store_url: str) -> None:
    sink = LocalSink(open_store(store_url))
    start = run_start()  # devices 0, 1, 2
    sink.start_run(start)
    bad = _with_gaps(batch(start.id, 0), wire.Gap(device=3, start_s=1.0, reason="x"))
    with pytest.raises(ValueError, match=r"gaps: a gap names a device the rank lacks \(0..2\)"):
        sink.write(bad)
    with open_store(store_url).session() as session:
        receipts = session.scalar(
            select(func.count()).select_from(BatchReceipt).where(BatchReceipt.run_id == start.id)
        )
    assert receipts == 0
    assert _gap_rows(store_url, start.id) == 0


def test_the_server_stores_gaps_and_refuses_a_bad_one_with_422(
    store_url: str, tmp_path: Path
) -> None:
    key = make_key(store_url, "acme", "ingest")
    start = run_start()
    gap = wire.Gap(device=0, start_s=2.0, end_s=3.0, reason="no reading: NVML error 999")
    with api(store_url, tmp_path) as client:
        assert client.post("/api/v1/runs", json=body(start), headers=bearer(key)).status_code == 201
        url = f"/api/v1/runs/{start.id}/batches"
        bad = body(_with_gaps(batch(start.id, 0), wire.Gap(device=7, start_s=1.0, reason="x")))
        refused = client.post(url, json=bad, headers=bearer(key))
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "gaps"]
        stored = client.post(
            url, json=body(_with_gaps(batch(start.id, 0), gap)), headers=bearer(key)
        )
        assert stored.json()["stored"] is True
    assert _gap_rows(store_url, start.id) == 1
