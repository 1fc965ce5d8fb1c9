"""Finding runs by filters, the filters' choices, and totals over a period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carbon.errors import ConfigError
from carbon.store import open_store
from carbon.store.browse import (
    RunFilter,
    energy_provenance,
    filter_choices,
    find_runs,
    hardware_label,
)
from carbon.store.overview import Period, daily_energy, period_totals, project_totals_in
from carbon.store.teams import create_team
from tests.fleet import BASE_TIME, CPU, H100, RunSpec, write_run

INT8 = {"precision": "int8", "quantization": "dynamic"}
FP32 = {"precision": "fp32"}
CPU_ONLY = (("cpu", CPU, 40.0, "estimated"), ("ram", "DIMMs", 10.0, "estimated"))


@pytest.fixture
def fleet(store_url: str) -> dict[str, RunSpec]:
    """Five runs of two projects and two teams, each with known energy."""
    store = open_store(store_url)
    with store.session() as session:
        other_team = create_team(session, "other").id
    specs = {
        "bert-train": RunSpec(
            project="bert",
            name="train",
            seconds=30,
            region="FRA",
            intensity_g_per_kwh=50.0,
            tags={"owner": "ana"},
        ),
        "bert-int8": RunSpec(
            project="bert",
            name="serve-int8",
            kind="inference",
            compression=INT8,
            started_at=BASE_TIME + timedelta(days=1),
            tags={"owner": "bo"},
        ),
        "bert-fp32": RunSpec(
            project="bert",
            name="serve-fp32",
            kind="inference",
            compression=FP32,
            started_at=BASE_TIME + timedelta(days=2),
            status=None,
        ),
        "gpt-cpu": RunSpec(
            project="gpt",
            name="cpu-only",
            devices=CPU_ONLY,
            started_at=datetime(2026, 11, 5, 23, 59, 50, tzinfo=UTC),
            seconds=20,
        ),
        "other-team": RunSpec(project="bert", name="theirs", team_id=other_team),
    }
    ids = {key: write_run(store, spec) for key, spec in specs.items()}
    return {ids[key]: spec for key, spec in specs.items()}


def _names(runs: list) -> list[str]:
    return [run.name for run in runs]


def test_find_runs_filters_in_sql_and_in_json(store_url: str, fleet: dict[str, RunSpec]) -> None:
    with open_store(store_url).session() as session:
        everything = find_runs(session, RunFilter(), team_id=1)
        assert _names(everything) == ["cpu-only", "serve-fp32", "serve-int8", "train"]
        assert _names(find_runs(session, RunFilter(project="bert"), team_id=1)) == [
            "serve-fp32",
            "serve-int8",
            "train",
        ]
        assert _names(find_runs(session, RunFilter(kind="inference"), team_id=1)) == [
            "serve-fp32",
            "serve-int8",
        ]
        assert _names(find_runs(session, RunFilter(status="running"), team_id=1)) == ["serve-fp32"]
        assert _names(find_runs(session, RunFilter(region="FRA"), team_id=1)) == ["train"]
        assert _names(find_runs(session, RunFilter(hardware=H100), team_id=1)) == [
            "serve-fp32",
            "serve-int8",
            "train",
        ]
        assert _names(find_runs(session, RunFilter(compression="int8 (dynamic)"), team_id=1)) == [
            "serve-int8"
        ]
        assert _names(find_runs(session, RunFilter(tags={"owner": "ana"}), team_id=1)) == ["train"]
        window = RunFilter(since=BASE_TIME + timedelta(days=1), until=BASE_TIME + timedelta(days=2))
        assert _names(find_runs(session, window, team_id=1)) == ["serve-int8"]
        assert _names(find_runs(session, RunFilter(), team_id=1, limit=2)) == [
            "cpu-only",
            "serve-fp32",
        ]
        assert len(find_runs(session, RunFilter(), team_id=None)) == 5


def test_another_teams_runs_are_never_found(store_url: str, fleet: dict[str, RunSpec]) -> None:
    with open_store(store_url).session() as session:
        assert "theirs" not in _names(find_runs(session, RunFilter(project="bert"), team_id=1))
        assert _names(find_runs(session, RunFilter(), team_id=2)) == ["theirs"]


def test_filter_choices_list_each_value_once(store_url: str, fleet: dict[str, RunSpec]) -> None:
    with open_store(store_url).session() as session:
        choices = filter_choices(session, team_id=1)
    assert choices["project"] == ["bert", "gpt"]
    assert choices["kind"] == ["inference", "training"]
    assert choices["status"] == ["completed", "running"]
    assert choices["region"] == ["FRA"]
    assert choices["hardware"] == sorted([CPU, "DIMMs", H100])
    assert choices["compression"] == ["bf16", "fp32", "int8 (dynamic)"]
    assert choices["tags"] == ["owner=ana", "owner=bo"]


def test_labels_of_hardware_and_provenance(store_url: str, fleet: dict[str, RunSpec]) -> None:
    with open_store(store_url).session() as session:
        runs = {run.name: run for run in find_runs(session, RunFilter(), team_id=1)}
    assert hardware_label(runs["train"]) == f"1 × {H100}"
    assert hardware_label(runs["cpu-only"]) == CPU
    assert energy_provenance(runs["train"]) == "mixed"
    assert energy_provenance(runs["cpu-only"]) == "estimated"


def test_bad_filters_are_refused_with_the_values() -> None:
    with pytest.raises(ConfigError, match="since=2026-11-03T00:00:00\\+00:00 is not before"):
        RunFilter(since=datetime(2026, 11, 3, tzinfo=UTC), until=datetime(2026, 11, 2, tzinfo=UTC))
    with pytest.raises(ConfigError, match="no time zone"):
        RunFilter(since=datetime(2026, 11, 3))


def test_period_totals_add_up_the_known_energies(store_url: str, fleet: dict[str, RunSpec]) -> None:
    mine = [spec for spec in fleet.values() if spec.team_id == 1]
    with open_store(store_url).session() as session:
        totals = period_totals(session, Period(team_id=1))
        bert = period_totals(session, Period(team_id=1, project="bert"))
        later = period_totals(session, Period(team_id=1, since=BASE_TIME + timedelta(days=2)))
    assert totals.runs == 4
    assert totals.energy_j == pytest.approx(sum(spec.energy_j for spec in mine))
    # Only the French run has a factor: 350 W x 30 s at 50 g/kWh.
    assert totals.runs_with_co2e == 1
    assert totals.co2e_g == pytest.approx(350 * 30 / 3.6e6 * 50)
    assert totals.co2e_market_g is None
    assert totals.runs_with_market == 0
    gpu_seconds = sum(spec.seconds for spec in mine if spec.devices[0][0] == "gpu")
    assert totals.gpu_hours == pytest.approx(gpu_seconds / 3600)
    measured = sum(300.0 * spec.seconds for spec in mine if spec.devices[0][0] == "gpu")
    assert totals.energy_by_provenance_j["measured"] == pytest.approx(measured)
    assert totals.measured_share == pytest.approx(measured / totals.energy_j)
    assert bert.runs == 3
    assert later.runs == 2


def test_empty_period_has_no_energy_and_no_share(store_url: str) -> None:
    with open_store(store_url).session() as session:
        totals = period_totals(session, Period(team_id=1))
    assert (totals.runs, totals.energy_j, totals.co2e_g, totals.measured_share) == (
        0,
        None,
        None,
        None,
    )


def test_daily_energy_splits_a_run_across_midnight(
    store_url: str, fleet: dict[str, RunSpec]
) -> None:
    with open_store(store_url).session() as session:
        days = daily_energy(session, Period(team_id=1, project="gpt"))
    # The CPU-only run starts 10 s before midnight and runs 20 s at 50 W.
    day = datetime(2026, 11, 5, tzinfo=UTC).date()
    assert [(d, p) for d, p, _ in days] == [(day, "gpt"), (day + timedelta(days=1), "gpt")]
    assert [e for _, _, e in days] == pytest.approx([500.0, 500.0])


def test_project_totals_in_a_period_most_energy_first(
    store_url: str, fleet: dict[str, RunSpec]
) -> None:
    with open_store(store_url).session() as session:
        rows = project_totals_in(session, Period(team_id=1))
    assert [row["name"] for row in rows] == ["bert", "gpt"]
    bert = [s for s in fleet.values() if s.project == "bert" and s.team_id == 1]
    assert rows[0]["runs"] == 3
    assert rows[0]["energy_j"] == pytest.approx(sum(s.energy_j for s in bert))
    assert rows[1]["co2e_g"] is None
