"""The dashboard's state in the address: filters, run ids and dates read back and written."""

from __future__ import annotations

from datetime import UTC, datetime

from dashboard.urls import MAX_IDS, query_string, run_filter, run_ids


def test_query_string_keeps_only_values_and_escapes_them() -> None:
    assert query_string({"project": "bert ft", "kind": None, "tag": "team=a&b"}) == (
        "?project=bert+ft&tag=team%3Da%26b"
    )
    assert query_string({"project": None, "kind": ""}) == ""


def test_run_ids_are_checked_deduplicated_and_capped() -> None:
    ids, problems = run_ids("ABCDEF12, abcdef12,zz!,1234")
    assert ids == ["abcdef12"]
    assert problems == [
        "'zz!' is not a run id (6 to 32 hexadecimal digits)",
        "'1234' is not a run id (6 to 32 hexadecimal digits)",
    ]
    many = ",".join(f"{n:06x}" for n in range(MAX_IDS + 3))
    ids, problems = run_ids(many)
    assert len(ids) == MAX_IDS
    assert problems == [f"{MAX_IDS + 3} runs asked; showing the first {MAX_IDS}"]
    assert run_ids(None) == ([], [])


def test_run_filter_reads_days_inclusively_and_tags() -> None:
    found, problems = run_filter(
        {"project": "bert", "since": "2026-11-01", "until": "2026-11-02", "tag": "owner=ana"}
    )
    assert problems == []
    assert found.project == "bert"
    assert found.since == datetime(2026, 11, 1, tzinfo=UTC)
    assert found.until == datetime(2026, 11, 3, tzinfo=UTC)
    assert dict(found.tags) == {"owner": "ana"}


def test_run_filter_reports_bad_values_and_ignores_them() -> None:
    found, problems = run_filter({"since": "yesterday", "tag": "novalue"})
    assert found.since is None
    assert not found.tags
    assert problems == [
        "since='yesterday' is not a date (YYYY-MM-DD); ignored",
        "tag='novalue' is not key=value; ignored",
    ]
    found, problems = run_filter({"since": "2026-11-05", "until": "2026-11-01"})
    assert found.since is None
    assert found.until is None
    assert problems == ["since=2026-11-05 is after until=2026-11-01; dates ignored"]
