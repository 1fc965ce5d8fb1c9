"""Properties of the wire format (``carbon/wire.py``) and of the store's write path for it.

- Every valid record round-trips through JSON unchanged, the way the agent sends it.
- A record broken in one place (a non-finite or negative figure, a value past its column,
  columns of different lengths, a bad id, a naive time, an unknown field...) raises
  pydantic's ``ValidationError`` naming that field; nothing else is ever raised, whatever
  JSON replaces a part of a record and whatever text is parsed as one.
- The store keeps a batch whole or not at all: what ``write_batch`` accepts adds exactly its
  rows (samples, their minutes and hours, work, windows, a receipt); what it refuses, or
  already had, changes no row.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select

from carbon import wire
from carbon.errors import StoreError
from carbon.store import open_store
from carbon.store.context import RunContext, start_run
from carbon.store.ingest import write_batch
from carbon.store.models import DEFAULT_TEAM_ID, RunEnergyHour, Sample, SampleMinute
from tests.fuzz_helpers import (
    SentBatches,
    batches,
    finite,
    fuzz_settings,
    json_values,
    partial_batches,
    records,
    run_ends,
    run_starts,
    stored_batches,
    table_rows,
)


@fuzz_settings(300)
@given(record=records(storable=False))
def test_every_valid_record_round_trips_through_json_unchanged(record: BaseModel) -> None:
    model = type(record)
    sent = record.model_dump_json()
    assert model.model_validate_json(sent) == record
    as_agent_sends = json.loads(json.dumps(record.model_dump(mode="json")))
    assert model.model_validate(as_agent_sends) == record
    assert model.model_validate_json(model.model_validate_json(sent).model_dump_json()) == record


# -- one thing broken at a time ----------------------------------------------------------------

RUN_ID_PATTERN = re.compile(r"[0-9a-f]{32}")
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
NEGATIVE = st.floats(max_value=-1e-300, allow_nan=False, allow_infinity=False)


@dataclass(frozen=True)
class Breakage:
    """A way to break a valid record's JSON; ``apply`` returns the field the error must name."""

    name: str
    model: type[BaseModel]
    records: st.SearchStrategy[Any]
    apply: Callable[[st.DataObject, dict[str, Any]], str]


def _set(path: tuple[str | int, ...], values: st.SearchStrategy[Any]) -> Callable[..., str]:
    def apply(data: st.DataObject, record: dict[str, Any]) -> str:
        target: Any = record
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = data.draw(values)
        return str(next(step for step in reversed(path) if isinstance(step, str)))

    return apply


def _in_column(column: str, values: st.SearchStrategy[Any]) -> Callable[..., str]:
    """A value put in a random row of a column (``totals.x`` for a totals' list)."""

    def apply(data: st.DataObject, record: dict[str, Any]) -> str:
        *parents, name = column.split(".")
        target = record
        for parent in parents:
            target = target[parent]
        row = data.draw(st.integers(0, len(target[name]) - 1))
        target[name][row] = data.draw(values)
        return name

    return apply


def _one_column_longer(data: st.DataObject, record: dict[str, Any]) -> str:
    group = data.draw(st.sampled_from(["sample", "work"]))
    column = data.draw(st.sampled_from([k for k in record if k.startswith(f"{group}_")]))
    record[column] = [*record[column], record[column][0] if record[column] else 0]
    return group


def _unknown_field(data: st.DataObject, record: dict[str, Any]) -> str:
    name = data.draw(st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
    name = f"x_{name}"
    record[name] = data.draw(json_values)
    return name


def _swap_positions(data: st.DataObject, record: dict[str, Any]) -> str:
    first, second = record["devices"][0], record["devices"][1]
    first["position"], second["position"] = second["position"], first["position"]
    return "devices"


def _with_rows(batch: wire.Batch) -> bool:
    return bool(batch.sample_device) and bool(batch.work_offset_s)


BATCHES = batches(devices=2, max_rows=6).filter(_with_rows)
STARTS = run_starts(devices=2)
NOT_IDS = st.text(max_size=40).filter(lambda text: not RUN_ID_PATTERN.fullmatch(text))

BREAKAGES = [
    Breakage("non-finite energy", wire.Batch, BATCHES, _in_column("sample_energy_j", NON_FINITE)),
    Breakage("negative energy", wire.Batch, BATCHES, _in_column("sample_energy_j", NEGATIVE)),
    Breakage(
        "energy past the bound",
        wire.Batch,
        BATCHES,
        _in_column("sample_energy_j", finite(wire.MAX_ENERGY_J * 1.01, 1e300)),
    ),
    Breakage("negative total", wire.Batch, BATCHES, _in_column("totals.device_energy_j", NEGATIVE)),
    Breakage("non-finite offset", wire.Batch, BATCHES, _in_column("sample_offset_s", NON_FINITE)),
    Breakage(
        "interval not > 0",
        wire.Batch,
        BATCHES,
        _in_column("sample_interval_s", st.sampled_from([0.0, -1.0])),
    ),
    Breakage(
        "utilization past 1", wire.Batch, BATCHES, _in_column("sample_utilization", finite(1.5))
    ),
    Breakage(
        "work past the run", wire.Batch, BATCHES, _in_column("work_offset_s", finite(2e6, 1e300))
    ),
    Breakage(
        "negative work", wire.Batch, BATCHES, _in_column("work_steps", st.integers(max_value=-1))
    ),
    Breakage(
        "count past 64 bits",
        wire.Batch,
        BATCHES,
        _in_column("work_tokens", st.integers(min_value=wire.MAX_INT64 + 1)),
    ),
    Breakage("columns of different lengths", wire.Batch, BATCHES, _one_column_longer),
    Breakage("bad run id", wire.Batch, BATCHES, _set(("run_id",), NOT_IDS)),
    Breakage(
        "seq out of range",
        wire.Batch,
        BATCHES,
        _set(("seq",), st.integers(max_value=-1) | st.integers(min_value=wire.MAX_INT32 + 1)),
    ),
    Breakage(
        "rank out of range", wire.Batch, BATCHES, _set(("rank",), st.integers(min_value=2**31))
    ),
    Breakage(
        "non-finite duration", wire.Batch, BATCHES, _set(("totals", "duration_s"), NON_FINITE)
    ),
    Breakage(
        "duration of a wrong type",
        wire.Batch,
        BATCHES,
        _set(
            ("totals", "duration_s"),
            st.text(max_size=5).map(lambda t: f"x{t}")
            | st.lists(st.none(), max_size=2)
            | st.just({}),
        ),
    ),
    Breakage("unknown field", wire.Batch, BATCHES, _unknown_field),
    Breakage("bad id", wire.RunStart, STARTS, _set(("id",), NOT_IDS)),
    Breakage(
        "naive start",
        wire.RunStart,
        STARTS,
        _set(("started_at",), st.datetimes().map(lambda moment: moment.isoformat())),
    ),
    Breakage(
        "start with no UTC time",
        wire.RunStart,
        STARTS,
        _set(
            ("started_at",),
            st.sampled_from(["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-01:00"]),
        ),
    ),
    Breakage(
        "host too long", wire.RunStart, STARTS, _set(("host",), st.text(min_size=256, max_size=300))
    ),
    Breakage(
        "pue out of range",
        wire.RunStart,
        STARTS,
        _set(
            ("pue",), st.floats(max_value=0.999) | finite(wire.MAX_PUE * 1.01, 1e300) | NON_FINITE
        ),
    ),
    Breakage(
        "sample rate not > 0", wire.RunStart, STARTS, _set(("sample_hz",), st.floats(max_value=0.0))
    ),
    Breakage(
        "device position past 32 bits",
        wire.RunStart,
        STARTS,
        _set(("devices", 0, "position"), st.integers(min_value=2**31)),
    ),
    Breakage(
        "unknown component",
        wire.RunStart,
        STARTS,
        _set(
            ("devices", 1, "component"),
            st.text(max_size=8).filter(lambda t: t not in ("gpu", "cpu", "ram")),
        ),
    ),
    Breakage("devices out of position order", wire.RunStart, STARTS, _swap_positions),
    Breakage(
        "world of no rank", wire.RunStart, STARTS, _set(("world_size",), st.integers(max_value=0))
    ),
    Breakage(
        "naive end",
        wire.RunEnd,
        run_ends(),
        _set(("ended_at",), st.datetimes().map(lambda moment: moment.isoformat())),
    ),
    Breakage(
        "unknown status",
        wire.RunEnd,
        run_ends(),
        _set(
            ("status",),
            st.text(max_size=10).filter(lambda t: t not in ("completed", "failed", "interrupted")),
        ),
    ),
]


def _names(error: ValidationError, field: str) -> bool:
    return any(
        field in [str(step) for step in item["loc"]] or field in item["msg"]
        for item in error.errors()
    )


@fuzz_settings(400)
@given(breakage=st.sampled_from(BREAKAGES), data=st.data())
def test_a_record_broken_in_one_place_is_refused_naming_the_field(
    breakage: Breakage, data: st.DataObject
) -> None:
    record = data.draw(breakage.records).model_dump(mode="json")
    field = breakage.apply(data, record)
    with pytest.raises(ValidationError) as refused:
        breakage.model.model_validate(record)
    assert _names(refused.value, field), (breakage.name, refused.value.errors())


def test_an_oversized_batch_is_refused_naming_its_column() -> None:
    rows = wire.MAX_BATCH_ROWS + 1
    record = wire.Batch(
        run_id="ab" * 16, seq=0, totals=wire.Totals(duration_s=1.0, device_energy_j=[], steps=0)
    ).model_dump()
    record |= {"work_offset_s": [0.5] * rows, "work_interval_s": [0.5] * rows}
    record |= {f"work_{name}": [0] * rows for name in ("steps", "samples", "tokens", "flops")}
    with pytest.raises(ValidationError) as refused:
        wire.Batch.model_validate(record)
    assert refused.value.errors()[0]["loc"] == ("work_offset_s",)
    assert refused.value.errors()[0]["type"] == "too_long"


# -- anything else: only ValidationError -------------------------------------------------------


def _paths(value: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every place in a JSON value that another value could take."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            found += _paths(item, (*prefix, index))
    return found


@fuzz_settings(400)
@given(record=records(storable=False), data=st.data())
def test_any_json_in_any_place_gives_a_record_or_a_validation_error(
    record: BaseModel, data: st.DataObject
) -> None:
    document = record.model_dump(mode="json")
    path = data.draw(st.sampled_from(_paths(document)))
    target: Any = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = data.draw(json_values | NON_FINITE | st.integers())
    with contextlib.suppress(ValidationError):
        type(record).model_validate(document)


MODELS = [wire.RunStart, wire.Batch, wire.RunEnd, wire.Heartbeat, wire.Totals, wire.DeviceSpec]


@fuzz_settings(300)
@given(
    model=st.sampled_from(MODELS),
    text=st.text(max_size=200) | st.binary(max_size=200) | json_values.map(json.dumps),
)
@example(
    model=wire.Batch, text='{"run_id": "' + "0" * 32 + '", "seq": 0, "totals": {"duration_s": NaN}}'
)
@example(model=wire.RunStart, text="[" * 5000)
def test_any_text_parses_to_a_record_or_a_validation_error(
    model: type[BaseModel], text: str | bytes
) -> None:
    with contextlib.suppress(ValidationError):
        model.model_validate_json(text)


# -- the store: a batch whole or not at all ----------------------------------------------------

RUN_ID = "fe" * 16
DEVICES = 3


def _energies(store_url: str) -> tuple[float, float, float, int, int]:
    """Energy of the samples, of their minutes and of their hours; samples and minute counts."""
    with open_store(store_url).session() as session:
        samples_j, samples = session.execute(
            select(func.sum(Sample.energy_j), func.count()).select_from(Sample)
        ).one()
        minutes_j, counted = session.execute(
            select(func.sum(SampleMinute.energy_j), func.sum(SampleMinute.samples))
        ).one()
        hours_j = session.scalar(select(func.sum(RunEnergyHour.energy_j)))
    return (
        float(samples_j or 0),
        float(minutes_j or 0),
        float(hours_j or 0),
        int(samples),
        int(counted or 0),
    )


def _start(store_url: str) -> RunContext:
    start = wire.RunStart(
        id=RUN_ID, project="fuzz", name="batches", kind="training",
        started_at=datetime(2026, 3, 1, 23, 30, tzinfo=UTC), host="node", region=None, pue=1.1,
        intensity=wire.IntensityInfo(intensity_g_per_kwh=50.0, source="test", zone="FRA"),
        sample_hz=10.0, carbon_version="test",
        devices=[
            wire.DeviceSpec(
                position=p, component="gpu", name="gpu", method="nvml_energy",
                provenance="measured", detail="test",
            )
            for p in range(DEVICES)
        ],
    )  # fmt: skip
    with open_store(store_url).session() as session:
        context = start_run(session, start, team_id=DEFAULT_TEAM_ID)
    assert context is not None
    return context


STORE_BATCHES = st.tuples(
    st.integers(0, 15),
    st.integers(DEVICES - 1, DEVICES + 1).flatmap(
        lambda devices: batches(
            run_id=RUN_ID, rank=0, devices=devices, max_duration_s=7200.0, max_rows=24
        )
    ),
).map(lambda drawn: drawn[1].model_copy(update={"seq": drawn[0]}))
"""Batches of the run, some with a device too many or too few, some repeating a ``seq``."""


def test_the_store_keeps_a_batch_whole_or_not_at_all(store_url: str) -> None:
    context = _start(store_url)
    store = open_store(store_url)
    sent = SentBatches.empty()
    outcomes: set[str] = set()

    @fuzz_settings(60)
    @given(batch=STORE_BATCHES)
    def write(batch: wire.Batch) -> None:
        before = table_rows(store_url)
        try:
            with store.transaction() as connection:
                result = write_batch(connection, context, batch)
        except (ValueError, StoreError):
            assert table_rows(store_url) == before
            outcomes.add("refused")
            return
        after = table_rows(store_url)
        if not result.stored:
            assert after == before
            outcomes.add("repeat")
            return
        outcomes.add("stored")
        sent.add(batch)
        assert after["batch_receipt"] == before["batch_receipt"] + 1
        assert after["sample"] == before["sample"] + len(batch.sample_device)
        assert after["work"] == before["work"] + len(batch.work_offset_s)
        assert after["run_window"] == before["run_window"] + len(batch.windows)

    write()
    assert outcomes == {"refused", "repeat", "stored"}
    assert partial_batches(stored_batches(store_url), sent) == []
    samples_j, minutes_j, hours_j, samples, counted = _energies(store_url)
    assert samples == counted == sum(sent.samples.values())
    assert minutes_j == pytest.approx(samples_j, rel=1e-9, abs=1e-6)
    assert hours_j == pytest.approx(samples_j, rel=1e-9, abs=1e-6)
