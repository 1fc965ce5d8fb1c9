"""The report's content, built from runs with known figures on both backends.

Every expected figure is computed here from the runs' specs (constant power, so energy is
power x seconds exactly), never read back from the code under test.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from carbon.errors import ConfigError
from carbon.reports.build import REPORT_VERSION, build_report
from carbon.reports.request import ReportRequest
from carbon.store import Store, open_store
from carbon.store.factors import add_market_factor
from carbon.store.overview import Period, period_totals
from carbon.store.teams import create_team
from tests.fleet import BASE_TIME, CPU, H100, RunSpec, write_run

A100 = "NVIDIA A100-SXM4-80GB"
DAY = BASE_TIME.date()
J_PER_KWH = 3_600_000.0
S_PER_YEAR = 8_760 * 3_600.0


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.dispose()


def _build(store: Store, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("since", DAY)
    kwargs.setdefault("until", DAY)
    with store.session() as session:
        return build_report(session, ReportRequest(**kwargs))


def _co2e_g(spec: RunSpec) -> float:
    assert spec.intensity_g_per_kwh is not None
    return spec.energy_j / J_PER_KWH * spec.intensity_g_per_kwh


MIX = (
    RunSpec(project="bert", region="FRA", intensity_g_per_kwh=56.0, seconds=40),
    RunSpec(
        project="llama",
        kind="inference",
        region="POL",
        intensity_g_per_kwh=662.0,
        seconds=30,
        devices=(("cpu", CPU, 100.0, "estimated"), ("ram", "DIMM", 12.0, "estimated")),
        started_at=BASE_TIME + timedelta(hours=2),
    ),
    RunSpec(
        project="llama",
        seconds=20,
        devices=(("gpu", A100, 250.0, "integrated"), ("gpu", A100, 260.0, "integrated")),
        started_at=BASE_TIME + timedelta(hours=5),
    ),
)


def test_totals_agree_with_the_store_to_the_gram(store: Store) -> None:
    for spec in MIX:
        write_run(store, spec)
    report = _build(store)
    with store.session() as session:
        stored = period_totals(
            session, Period(since=BASE_TIME - timedelta(hours=9), until=BASE_TIME + timedelta(1))
        )
    totals = report["summary"]
    assert report["report_version"] == REPORT_VERSION
    assert totals["runs"] == stored.runs == 3
    assert totals["energy_j"] == pytest.approx(sum(s.energy_j for s in MIX), abs=1e-6)
    assert stored.energy_j is not None
    assert round(totals["energy_j"]) == round(stored.energy_j)
    expected_g = _co2e_g(MIX[0]) + _co2e_g(MIX[1])
    assert round(totals["co2e_g"]) == round(expected_g) == round(stored.co2e_g or 0)
    assert totals["co2e_g"] == pytest.approx(expected_g, rel=1e-9)
    assert totals["co2e_runs"] == 2
    assert totals["gpu_hours"] == pytest.approx((40 * 1 + 20 * 2) / 3600)
    assert totals["energy_kwh"] == pytest.approx(sum(s.energy_j for s in MIX) / J_PER_KWH)
    assert sum(row["energy_j"] for row in report["runs"]) == pytest.approx(totals["energy_j"])


def test_estimated_share_counts_estimated_device_energy(store: Store) -> None:
    for spec in MIX:
        write_run(store, spec)
    report = _build(store)
    estimated_j = 50.0 * 40 + (100.0 + 12.0) * 30
    total_j = 350.0 * 40 + 112.0 * 30 + 510.0 * 20
    assert report["summary"]["estimated_share"] == pytest.approx(estimated_j / total_j)
    boundary = report["boundary"]
    assert boundary["estimated_j"] == pytest.approx(estimated_j)
    assert boundary["measured_j"] == pytest.approx(300.0 * 40)
    assert boundary["integrated_j"] == pytest.approx(510.0 * 20)
    llama_inference = next(r["id"] for r in report["runs"] if r["kind"] == "inference")
    assert boundary["runs_estimated_only"] == [llama_inference]
    gpu = next(c for c in boundary["components"] if c["component"] == "gpu")
    assert gpu["energy_by_provenance_j"] == pytest.approx(
        {"measured": 300.0 * 40, "integrated": 510.0 * 20}
    )


def test_an_empty_period_is_a_valid_report_that_says_so(store: Store) -> None:
    write_run(store, MIX[0])
    report = _build(store, since=DAY + timedelta(days=3), until=DAY + timedelta(days=9))
    totals = report["summary"]
    assert report["empty"] is True
    assert totals["runs"] == 0
    assert totals["energy_j"] is None
    assert totals["co2e_g"] is None
    assert totals["estimated_share"] is None
    assert report["runs"] == []
    assert report["breakdown"]["top_runs"] == []
    assert report["recommendations"] == []
    # The run is in the previous week, which the change figures read.
    assert totals["previous"]["runs"] == 1
    assert totals["change"]["energy_j"] is None


def test_change_against_the_previous_period_of_the_same_length(store: Store) -> None:
    write_run(store, RunSpec(seconds=30, started_at=BASE_TIME - timedelta(days=7)))
    write_run(store, RunSpec(seconds=40, started_at=BASE_TIME))
    write_run(store, RunSpec(seconds=50, started_at=BASE_TIME + timedelta(days=6)))
    report = _build(store, since=DAY, until=DAY + timedelta(days=6))
    totals = report["summary"]
    assert totals["previous"]["since"] == (DAY - timedelta(days=7)).isoformat()
    assert totals["previous"]["until"] == (DAY - timedelta(days=1)).isoformat()
    assert totals["previous"]["energy_j"] == pytest.approx(350.0 * 30)
    assert totals["change"]["energy_j"] == pytest.approx(350.0 * 90 / (350.0 * 30) - 1)
    assert totals["change"]["runs"] == pytest.approx(1.0)


def test_the_period_holds_whole_utc_days_by_start_time(store: Store) -> None:
    midnight = BASE_TIME.replace(hour=0)
    inside = write_run(store, RunSpec(started_at=midnight + timedelta(days=1, seconds=-1)))
    write_run(store, RunSpec(started_at=midnight + timedelta(days=1)))
    write_run(store, RunSpec(started_at=midnight - timedelta(seconds=1)))
    report = _build(store)
    assert [row["id"] for row in report["runs"]] == [inside]


def test_projects_and_teams_narrow_the_runs(store: Store) -> None:
    with store.session() as session:
        other = create_team(session, "vision").id
    write_run(store, RunSpec(project="bert"))
    kept = write_run(store, RunSpec(project="llama"))
    theirs = write_run(store, RunSpec(project="llama", team_id=other))
    assert {r["id"] for r in _build(store, projects=("llama",))["runs"]} == {kept, theirs}
    only_default = _build(store, projects=("llama",), team="default")
    assert [r["id"] for r in only_default["runs"]] == [kept]
    with store.session() as session:
        vision = build_report(session, ReportRequest(since=DAY, until=DAY), team_id=other)
        assert [r["id"] for r in vision["runs"]] == [theirs]
        with pytest.raises(ConfigError, match=r"no team named 'nobody' \(teams: default, vision\)"):
            build_report(session, ReportRequest(since=DAY, until=DAY, team="nobody"))
        with pytest.raises(ConfigError, match="only its own team"):
            build_report(
                session, ReportRequest(since=DAY, until=DAY, team="default"), team_id=other
            )


def test_breakdown_groups_phases_and_top_runs(store: Store) -> None:
    ids = [write_run(store, spec) for spec in MIX]
    report = _build(store, group_by="hardware")
    groups = {row["name"]: row for row in report["breakdown"]["groups"]}
    assert set(groups) == {f"1 × {H100}", CPU, f"2 × {A100}"}
    assert groups[f"2 × {A100}"]["energy_j"] == pytest.approx(510.0 * 20)
    assert groups[f"2 × {A100}"]["co2e_g"] is None
    total_j = sum(s.energy_j for s in MIX)
    assert groups[CPU]["energy_share"] == pytest.approx(112.0 * 30 / total_j)
    phases = {row["name"]: row for row in report["breakdown"]["phases"]}
    assert phases["training"]["runs"] == 2
    assert phases["inference"]["energy_j"] == pytest.approx(112.0 * 30)
    top = report["breakdown"]["top_runs"]
    # POL's run emits 3360 J x 662 g/kWh = 0.618 g; FRA's 14000 J x 56 g/kWh = 0.218 g.
    assert [row["id"] for row in top] == [ids[1], ids[0]]
    assert top[0]["co2e_share"] == pytest.approx(
        _co2e_g(MIX[1]) / (_co2e_g(MIX[0]) + _co2e_g(MIX[1]))
    )
    assert report["breakdown"]["runs_without_co2e"] == 1


def test_efficiency_by_hardware_is_a_ratio_of_sums(store: Store) -> None:
    fast = RunSpec(seconds=20, flops=2.0e15, precision="bf16")
    slow = RunSpec(seconds=40, flops=1.0e15, precision="bf16")
    for spec in (fast, slow, RunSpec(seconds=10)):
        write_run(store, spec)
    report = _build(store)
    row = next(r for r in report["efficiency"]["by_hardware"] if r["hardware"] == f"1 × {H100}")
    assert row["runs"] == 3
    assert row["runs_with_flops"] == 2
    assert row["j_per_flop"] == pytest.approx((350.0 * 60) / 3.0e15)
    peak = 989.4e12  # H100 SXM dense BF16, FLOP/s
    assert row["mfu"] == pytest.approx(3.0e15 / (peak * 60))
    assert row["mfu_min"] == pytest.approx(1.0e15 / (peak * 40))
    assert row["mfu_max"] == pytest.approx(2.0e15 / (peak * 20))


def test_efficiency_by_compression_setting_with_accuracy(store: Store) -> None:
    base = RunSpec(
        kind="inference", samples=1000, metrics={"accuracy": 0.91}, compression={}, seconds=20
    )
    int8 = RunSpec(
        kind="inference",
        samples=1000,
        metrics={"accuracy": 0.90},
        compression={"quantization": "int8"},
        seconds=10,
    )
    for spec in (base, int8):
        write_run(store, spec)
    rows = _build(store)["efficiency"]["by_compression"]
    by_label = {row["compression"]: row for row in rows}
    assert len(by_label) == 2
    quantized = next(row for label, row in by_label.items() if "int8" in label)
    assert quantized["j_per_inference"] == pytest.approx(350.0 * 10 / 1000)
    assert quantized["accuracy"] == pytest.approx(0.90)
    assert quantized["inferences"] == 1000


def test_emissions_keep_scopes_apart(store: Store) -> None:
    with store.session() as session:
        add_market_factor(
            session, source="PPA with Windco 2026", project="bert", intensity_g_per_kwh=20.0
        )
    write_run(store, RunSpec(project="bert", region="FRA", intensity_g_per_kwh=56.0))
    write_run(
        store,
        RunSpec(
            project="llama",
            region="FRA",
            intensity_g_per_kwh=56.0,
            devices=(("gpu", A100, 400.0, "measured"),),
        ),
    )
    report = _build(store)
    emissions = report["emissions"]
    bert_j, llama_j = 350.0 * 20, 400.0 * 20
    assert emissions["location"]["co2e_g"] == pytest.approx((bert_j + llama_j) / J_PER_KWH * 56)
    assert emissions["market"]["co2e_g"] == pytest.approx(bert_j / J_PER_KWH * 20)
    assert emissions["market"]["runs"] == 1
    assert emissions["market"]["runs_without_instrument"]["runs"] == 1
    assert emissions["market"]["instruments"][0]["source"].startswith("PPA with Windco 2026")
    expected_embodied_g = 150_000.0 * 20 / (6 * S_PER_YEAR)
    assert emissions["embodied"]["co2e_g"] == pytest.approx(expected_embodied_g)
    assert report["summary"]["embodied_unknown_runs"] == 1  # the H100 has no published factor
    statement = emissions["statement"]
    assert "market-based" in statement
    assert "1 runs have no instrument recorded" in statement
    assert "neither is netted" in statement
    factor = emissions["location"]["factors"][0]
    assert factor["zone"] == "FRA"
    assert factor["effective_g_per_kwh"] == pytest.approx(56.0)
    assert factor["runs"] == 2


def test_methodology_names_versions_sources_and_fallbacks(store: Store) -> None:
    write_run(store, RunSpec(region="FRA", intensity_g_per_kwh=56.0))
    write_run(store, RunSpec(devices=(("gpu", A100, 250.0, "integrated"),)))
    method = _build(store)["methodology"]
    assert method["run_versions"] == [{"value": "test", "runs": 2}]
    assert method["sample_hz"] == [{"value": 10.0, "runs": 2}]
    assert method["intensity_sources"] == [{"value": "test factor", "runs": 1}]
    assert method["uncertainties"]


def test_a_report_never_reads_samples(store: Store) -> None:
    for spec in MIX:
        write_run(store, spec)
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        report = _build(store)
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    assert report["summary"]["runs"] == 3
    assert statements
    assert not [s for s in statements if re.search(r"\bsample\b", s)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"since": date(2026, 3, 1), "until": date(2026, 2, 1)}, "--from must not be after --to"),
        ({"since": None, "until": None, "group_by": "colour"}, "cannot group by 'colour'"),
        ({"since": None, "until": None, "mfu_threshold": 0.0}, "mfu_threshold"),
        ({"since": None, "until": None, "max_accuracy_loss": math.nan}, "max_accuracy_loss"),
        ({"since": None, "until": None, "projects": (" ",)}, "project name is empty"),
    ],
)
def test_bad_requests_are_refused_with_the_reason(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        ReportRequest(**kwargs)


def test_previous_period_has_the_same_length() -> None:
    request = ReportRequest(since=date(2026, 1, 1), until=date(2026, 3, 31))
    before = request.previous()
    assert before is not None
    assert (before.since, before.until) == (date(2025, 10, 3), date(2025, 12, 31))
    assert before.days == request.days == 90
    assert ReportRequest(since=None, until=date(2026, 1, 1)).previous() is None


def test_progress_follows_the_runs_read_and_the_stages(store: Store) -> None:
    for spec in MIX:
        write_run(store, spec)
    seen: list[tuple[str, int, int | None]] = []
    with store.session() as session:
        build_report(
            session,
            ReportRequest(since=DAY, until=DAY),
            progress=lambda stage, done, total: seen.append((stage, done, total)),
        )
    reading = [(done, total) for stage, done, total in seen if stage == "reading runs"]
    assert reading[0] == (0, 3)
    assert reading[-1] == (3, 3)
    assert [done for done, _ in reading] == sorted(done for done, _ in reading)
    assert [stage for stage, _, _ in seen][-2:] == ["adding up", "computing recommendations"]
