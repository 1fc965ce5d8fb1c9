"""Recommendations and their savings, checked against figures computed from the inputs.

MFU and compression take summary dicts built here. Region and hours write runs through the
store's real write path (constant power, so energy = power x seconds exactly) and read them
back as summaries, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from carbon.accounting.hourly import HourlyIntensity
from carbon.accounting.regions import cloud_regions
from carbon.accounting.resolve import resolve
from carbon.errors import RunNotFound
from carbon.reports import recommendations
from carbon.reports.recommendations import Recommendation, recommend
from carbon.store import factors, open_store
from carbon.store.queries import list_runs
from carbon.store.summary import run_summary
from carbon.store.teams import create_team
from tests.fleet import BASE_TIME, H100, RunSpec, write_run


def _gpu(power_w: float) -> tuple[tuple[str, str, float, str], ...]:
    return (("gpu", H100, power_w, "measured"),)


def _kwh_run(kwh: float, **fields: Any) -> RunSpec:
    """A run of exactly ``kwh`` at 100 kW (kWh x 36 seconds, a whole number of them)."""
    assert (kwh * 36).is_integer()
    return RunSpec(devices=_gpu(100_000.0), seconds=int(kwh * 36), **fields)


@contextmanager
def _summaries(
    store_url: str, team_id: int | None = 1
) -> Iterator[tuple[Session, list[dict[str, Any]]]]:
    with open_store(store_url).session() as session:
        runs = list_runs(session, limit=None, team_id=team_id)
        yield session, [run_summary(run) for run in runs]


def _of(found: Sequence[Recommendation], kind: str) -> list[Recommendation]:
    return [r for r in found if r.kind == kind]


def _summary(run_id: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": run_id,
        "project": "bert",
        "name": run_id,
        "kind": "training",
        "energy_j": None,
        "pue": 1.0,
        "region": None,
        "intensity_zone": None,
        "intensity_g_per_kwh": None,
        "co2e_g": None,
        "compression": {},
        "metrics": {},
        "samples": None,
        "j_per_inference": None,
        "mfu": None,
        "started_at": BASE_TIME.isoformat(),
        "duration_s": 60.0,
    }
    return base | fields


# --- mfu ---------------------------------------------------------------------------------


def test_mfu_upper_bound_lists_the_runs_biggest_saving_first(store_url: str) -> None:
    summaries = [
        _summary("a" * 32, energy_j=1e6, mfu=0.15, co2e_g=100.0),
        _summary("b" * 32, energy_j=2e6, mfu=0.20),  # no region: no CO2e
        _summary("c" * 32, energy_j=5e6, mfu=0.50),  # above the threshold
        _summary("d" * 32, energy_j=5e6),  # MFU unknown
        _summary("e" * 32, energy_j=5e6, mfu=0.10, kind="inference"),
    ]
    with open_store(store_url).session() as session:
        found = recommend(session, summaries, team_id=1, mfu_threshold=0.30)
    assert [r.kind for r in found] == ["mfu"]
    (mfu,) = found
    assert mfu.saving_j == pytest.approx(1e6 * (1 - 0.15 / 0.30) + 2e6 * (1 - 0.20 / 0.30))
    assert mfu.saving_g == pytest.approx(100.0 * (1 - 0.15 / 0.30))
    assert mfu.runs == ("b" * 32, "a" * 32)
    assert "2 runs" in mfu.title
    assert "upper bound" in mfu.assumption
    assert "1 run without a CO2e figure" in mfu.assumption
    assert "bbbbbbbb" in mfu.detail


def test_no_mfu_recommendation_without_a_run_below_the_threshold(store_url: str) -> None:
    summaries = [_summary("a" * 32, energy_j=1e6, mfu=0.35)]
    with open_store(store_url).session() as session:
        assert recommend(session, summaries, team_id=1) == []


@pytest.mark.parametrize(("loss", "threshold"), [(-0.1, 0.3), (0.01, 0.0), (0.01, 1.5)])
def test_bad_parameters_are_refused(store_url: str, loss: float, threshold: float) -> None:
    with open_store(store_url).session() as session, pytest.raises(ValueError, match="must be"):
        recommend(session, [], team_id=1, max_accuracy_loss=loss, mfu_threshold=threshold)


# --- compression -------------------------------------------------------------------------


def _serve(
    run_id: str, setting: dict[str, Any], energy_j: float, samples: int, **more: Any
) -> dict[str, Any]:
    return _summary(
        run_id,
        kind="inference",
        compression=setting,
        energy_j=energy_j,
        samples=samples,
        j_per_inference=energy_j / samples,
        **more,
    )


FP32, FP16 = {"precision": "fp32"}, {"precision": "fp16"}
INT8 = {"precision": "int8", "quantization": "dynamic"}
INT4 = {"quantization": "gptq", "bits": 4}


def test_compression_saving_over_the_baseline_settings_inferences(store_url: str) -> None:
    ids = {name: name.ljust(32, "0") for name in ("fp32a", "fp32b", "fp16", "int8", "int4")}
    summaries = [
        # Baseline setting fp32: 4000 J over 300 inferences, 0.5 mg of CO2e per joule.
        _serve(ids["fp32a"], FP32, 1000.0, 100, metrics={"accuracy": 0.92}, co2e_g=0.5),
        _serve(ids["fp32b"], FP32, 3000.0, 200, metrics={"accuracy": 0.92}, co2e_g=1.5),
        _serve(ids["fp16"], FP16, 1200.0, 100, metrics={"accuracy": 0.92}),
        # Exactly one point lower: allowed at max_accuracy_loss=0.01.
        _serve(ids["int8"], INT8, 500.0, 100, metrics={"accuracy": 0.91}),
        _serve(ids["int4"], INT4, 200.0, 100, metrics={"accuracy": 0.80}),  # too inaccurate
        _serve("n" * 32, INT8, 10.0, 100),  # no accuracy
        _serve("o" * 32, INT8, 10.0, 100, project="gpt", metrics={"accuracy": 0.9}),  # no base
    ]
    with open_store(store_url).session() as session:
        found = recommend(session, summaries, team_id=1, max_accuracy_loss=0.01)
    assert [r.kind for r in found] == ["compression", "compression"]
    int8, fp16 = found
    base_j_per_inference = 4000.0 / 300
    g_per_j = 0.5 / 1000.0
    assert "int8 (dynamic) instead of fp32" in int8.title
    assert int8.saving_j == pytest.approx(300 * (base_j_per_inference - 5.0))
    assert int8.saving_g == pytest.approx(300 * (base_j_per_inference - 5.0) * g_per_j)
    assert int8.runs == (ids["fp32a"], ids["fp32b"], ids["int8"])
    assert "fp16 instead of fp32" in fp16.title
    assert fp16.saving_j == pytest.approx(300 * (base_j_per_inference - 12.0))
    assert fp16.saving_g == pytest.approx(300 * (base_j_per_inference - 12.0) * g_per_j)
    assert "0.01 in its own unit" in int8.assumption

    with open_store(store_url).session() as session:
        strict = recommend(session, summaries, team_id=1, max_accuracy_loss=0.001)
    assert [r.title for r in strict] == [fp16.title]


def test_compression_without_co2e_has_no_gram_saving_and_sorts_last(store_url: str) -> None:
    summaries = [
        _serve("a" * 32, FP32, 1000.0, 100, metrics={"accuracy": 0.9}),
        _serve("b" * 32, INT8, 400.0, 100, metrics={"accuracy": 0.9}),
        _summary("c" * 32, energy_j=1e6, mfu=0.15, co2e_g=1.0),
    ]
    with open_store(store_url).session() as session:
        found = recommend(session, summaries, team_id=1)
    assert [r.kind for r in found] == ["mfu", "compression"]
    assert found[1].saving_g is None
    assert found[1].saving_j == pytest.approx(100 * (10.0 - 4.0))


# --- region ------------------------------------------------------------------------------


def test_region_saving_is_energy_times_the_intensity_difference(store_url: str) -> None:
    store = open_store(store_url)
    dirty = write_run(store, _kwh_run(2.0, region="DEU", intensity_g_per_kwh=400.0))
    write_run(store, _kwh_run(1.0, name="fr", region="FRA", intensity_g_per_kwh=50.0))
    # A region with no static figure is a candidate that cannot be priced: skipped.
    polar = write_run(store, _kwh_run(1.0, name="polar", region="ATA", intensity_g_per_kwh=900.0))
    france = resolve("FRA").intensity.intensity_g_per_kwh
    with _summaries(store_url) as (session, summaries):
        found = recommend(session, summaries, team_id=1)
    regions = {r.runs: r for r in _of(found, "region")}
    assert set(regions) == {(dirty,), (polar,)}  # France is the cleanest: nothing to move
    moved = regions[(dirty,)]
    assert moved.saving_g == pytest.approx(2.0 * (400.0 - france), rel=1e-9)
    assert moved.saving_j == 0.0
    assert "in DEU to FRA" in moved.title
    assert regions[(polar,)].saving_g == pytest.approx(1.0 * (900.0 - france), rel=1e-9)
    assert [r.saving_g for r in found] == sorted((r.saving_g for r in found), reverse=True)
    assert _of(found, "hours") == []  # no hourly series imported


def test_cloud_region_compares_the_providers_regions_at_their_pue(store_url: str) -> None:
    store = open_store(store_url)
    run_id = write_run(store, _kwh_run(1.0, region="gcp:europe-west3", intensity_g_per_kwh=400.0))
    priced = [resolve(f"gcp:{row.region}") for row in cloud_regions() if row.provider == "gcp"]
    best_g = min(1.0 * p.pue.pue * p.intensity.intensity_g_per_kwh for p in priced)
    with _summaries(store_url) as (session, summaries):
        (found,) = recommend(session, summaries, team_id=1)
    assert found.kind == "region"
    assert found.runs == (run_id,)
    assert found.saving_g == pytest.approx(400.0 - best_g, rel=1e-9)


# --- hours -------------------------------------------------------------------------------


def _series(session: Session, zone: str, values: dict[int, float]) -> None:
    """Import ``zone``'s intensity for hours offset from BASE_TIME (09:00 UTC)."""
    rows = [
        HourlyIntensity(zone, BASE_TIME + timedelta(hours=offset), value, "test.csv (CSV)")
        for offset, value in values.items()
    ]
    factors.import_series(session, rows)


def test_hours_finds_the_cleanest_whole_hour_shift(store_url: str) -> None:
    store = open_store(store_url)
    with store.session() as session:
        values = dict.fromkeys(range(-12, 13), 300.0) | {5: 20.0, -6: 50.0}
        _series(session, "FRA", values)
    # One kWh within 09:00-10:00; and a run in a zone without a series.
    run_id = write_run(store, _kwh_run(1.0, region="FRA", intensity_g_per_kwh=100.0))
    write_run(store, _kwh_run(1.0, region="DEU", intensity_g_per_kwh=10.0))
    with _summaries(store_url) as (session, summaries):
        found = _of(recommend(session, summaries, team_id=1), "hours")
    assert len(found) == 1
    (shift,) = found
    assert shift.runs == (run_id,)
    assert shift.saving_g == pytest.approx(1.0 * (300.0 - 20.0), rel=1e-9)
    assert shift.saving_j == 0.0
    assert "5 h later" in shift.title
    assert "0 run-hour(s)" in shift.detail


def test_hours_missing_from_the_series_count_at_the_static_factor(store_url: str) -> None:
    store = open_store(store_url)
    with store.session() as session:
        _series(session, "FRA", {0: 500.0})  # only the run's own hour
    run_id = write_run(store, _kwh_run(0.5, region="FRA", intensity_g_per_kwh=100.0))
    with _summaries(store_url) as (session, summaries):
        (shift,) = _of(recommend(session, summaries, team_id=1), "hours")
    assert shift.runs == (run_id,)
    assert shift.saving_g == pytest.approx(0.5 * (500.0 - 100.0), rel=1e-9)
    assert "1 h earlier" in shift.title  # every other hour ties: the smallest move wins
    assert "1 run-hour(s)" in shift.detail


def test_hours_examines_at_most_the_cap_biggest_runs(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recommendations, "MAX_RUNS_PER_ZONE", 1)
    store = open_store(store_url)
    with store.session() as session:
        _series(session, "FRA", dict.fromkeys(range(-12, 13), 300.0) | {1: 30.0})
    big = write_run(store, _kwh_run(1.0, region="FRA", intensity_g_per_kwh=100.0))
    write_run(store, _kwh_run(0.5, region="FRA", intensity_g_per_kwh=100.0))
    with _summaries(store_url) as (session, summaries):
        (shift,) = _of(recommend(session, summaries, team_id=1), "hours")
    assert shift.runs == (big,)
    assert shift.saving_g == pytest.approx(1.0 * (300.0 - 30.0), rel=1e-9)
    assert "Only the 1 run with the most energy of the 2 in the zone" in shift.assumption


def test_hours_never_reads_another_teams_run(store_url: str) -> None:
    store = open_store(store_url)
    with store.session() as session:
        other = create_team(session, "other").id
        _series(session, "FRA", {0: 500.0})
    write_run(store, RunSpec(region="FRA", intensity_g_per_kwh=100.0, team_id=other))
    with _summaries(store_url, team_id=other) as (session, summaries):
        with pytest.raises(RunNotFound):
            recommend(session, summaries, team_id=1)
        assert _of(recommend(session, summaries, team_id=other), "hours")
