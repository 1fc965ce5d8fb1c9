"""Hourly intensity series: CSV parsing, energy split by UTC hour, and CO2e hour by hour."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from carbon.accounting.hourly import (
    HourlyIntensity,
    hourly_co2e_g,
    parse_intensity_csv,
    series_for_zone,
    split_energy_by_hour,
)
from carbon.errors import ConfigError

PLAIN_HEADER = "zone,datetime,carbon_intensity_g_per_kwh"
EM_HEADER_2023 = (
    "Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
    "Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,"
    "Data Source,Data Estimated,Data Estimation Method"
)
EM_HEADER_2024 = (
    "Datetime (UTC),Country,Zone name,Zone id,Carbon intensity gCO₂eq/kWh (direct),"
    "Carbon intensity gCO₂eq/kWh (Life cycle),Carbon-free energy percentage (CFE%),"
    "Renewable energy percentage (RE%),Data source,Data estimated,Data estimation method"
)


def utc(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2024, 3, 1, hour, minute, second, tzinfo=UTC)


def write(tmp_path: Path, *lines: str, name: str = "intensity.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- parsing good files -------------------------------------------------------------------


def test_plain_columns_parse_sorted_by_zone_then_hour(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        PLAIN_HEADER,
        "FR,2024-03-01T01:00:00Z,52.5",
        "DE,2024-03-01T00:00:00+00:00,380",
        "FR,2024-03-01T01:00:00+01:00,50",  # 00:00 UTC
    )
    rows = parse_intensity_csv(path)
    assert rows == [
        HourlyIntensity("DE", utc(0), 380.0, "intensity.csv (CSV)", None),
        HourlyIntensity("FR", utc(0), 50.0, "intensity.csv (CSV)", None),
        HourlyIntensity("FR", utc(1), 52.5, "intensity.csv (CSV)", None),
    ]
    assert all(row.hour_start.tzinfo is UTC for row in rows)


def test_electricity_maps_export_reads_life_cycle_by_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        EM_HEADER_2023,
        "2024-03-01 00:00:00,France,France,FR,15.2,40.1,95.1,30.2,rte-france.com,false,",
        "2024-03-01 01:00:00,France,France,FR,16.0,41.5,95.0,30.0,rte-france.com,true,TSA",
        name="FR_2024_hourly.csv",
    )
    rows = parse_intensity_csv(path)
    assert [(row.hour_start, row.intensity_g_per_kwh) for row in rows] == [
        (utc(0), 40.1),
        (utc(1), 41.5),
    ]
    assert {row.factor_type for row in rows} == {"lifecycle"}
    assert (
        rows[0].source
        == "FR_2024_hourly.csv (Electricity Maps export, data source: rte-france.com)"
    )

    direct = parse_intensity_csv(path, factor_type="direct")
    assert [row.intensity_g_per_kwh for row in direct] == [15.2, 16.0]
    assert {row.factor_type for row in direct} == {"direct"}


def test_newer_export_headers_bom_crlf_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "DE.csv"
    text = (
        f"{EM_HEADER_2024}\r\n"
        "2024-03-01 00:00:00,Germany,Germany,DE,300,380,50,45,entsoe.eu,false,\r\n"
        "\r\n"
        "2024-03-01T01:00:00Z,Germany,Germany,DE,310,390,49,44,,false,\r\n"
    )
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    rows = parse_intensity_csv(path)
    assert [(row.zone, row.intensity_g_per_kwh, row.factor_type) for row in rows] == [
        ("DE", 380.0, "lifecycle"),
        ("DE", 390.0, "lifecycle"),
    ]
    assert rows[1].source == "DE.csv (Electricity Maps export)"


def test_headers_match_without_case_spacing_or_subscript(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "DATETIME (UTC), zone  ID ,carbon intensity gCO2eq/kWh (direct)",
        "2024-03-01 05:00,US-CAL-CISO,210",
    )
    (row,) = parse_intensity_csv(path)
    assert (row.zone, row.hour_start, row.factor_type) == ("US-CAL-CISO", utc(5), "direct")


def test_same_hour_in_two_zones_and_gaps_are_fine(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        PLAIN_HEADER,
        "FR,2024-03-01T00:00:00Z,50",
        "DE,2024-03-01T00:00:00Z,380",
        "FR,2024-03-01T05:00:00Z,55",
    )
    assert len(parse_intensity_csv(path)) == 3


def test_header_only_file_is_an_empty_series(tmp_path: Path) -> None:
    assert parse_intensity_csv(write(tmp_path, PLAIN_HEADER)) == []


# --- bad rows: file, line and problem named; nothing returned --------------------------------


@pytest.mark.parametrize(
    ("bad_row", "problem"),
    [
        ("FR,,50", "missing hour"),
        ("FR,yesterday,50", "unparseable time 'yesterday'"),
        ("FR,2024-03-01,50", "unparseable time '2024-03-01'"),
        ("FR,2024-03-01T02:00:00,50", "has no UTC offset"),
        ("FR,2024-03-01T02:30:00Z,50", "is not on the hour"),
        ("FR,2024-03-01T07:00:00+05:30,50", "is not on the hour"),
        ("FR,2024-03-01T02:00:00Z,-1", "carbon intensity '-1' g/kWh is negative"),
        ("FR,2024-03-01T02:00:00Z,nan", "'nan' is not a finite number"),
        ("FR,2024-03-01T02:00:00Z,inf", "'inf' is not a finite number"),
        ("FR,2024-03-01T02:00:00Z,lots", "'lots' is not a number"),
        ("FR,2024-03-01T02:00:00Z,", "missing carbon intensity"),
        (",2024-03-01T02:00:00Z,50", "missing zone"),
        ("FR,2024-03-01T02:00:00Z", "2 fields, but the header has 3"),
        ("FR,2024-03-01T00:00:00Z,51", "duplicates or overlaps the hour on line 2"),
        ("FR,2024-03-01T01:00:00+01:00,51", "duplicates or overlaps the hour on line 2"),
    ],
)
def test_bad_row_names_file_line_and_problem(tmp_path: Path, bad_row: str, problem: str) -> None:
    path = write(
        tmp_path,
        PLAIN_HEADER,
        "FR,2024-03-01T00:00:00Z,50",
        bad_row,
        "FR,2024-03-01T03:00:00Z,50",
    )
    with pytest.raises(ConfigError) as caught:
        parse_intensity_csv(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: line 3: ")
    assert problem in message


def test_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path, PLAIN_HEADER, "", "FR,2024-03-01T00:00:00Z,50", "", "FR,x,50")
    with pytest.raises(ConfigError, match=r": line 5: unparseable time 'x'"):
        parse_intensity_csv(path)


def test_a_bad_last_row_returns_nothing(tmp_path: Path) -> None:
    lines = [f"FR,2024-03-01T{hour:02d}:00:00Z,50" for hour in range(20)]
    path = write(tmp_path, PLAIN_HEADER, *lines, "FR,2024-03-01T20:15:00Z,50")
    result: list[HourlyIntensity] | None = None
    with pytest.raises(ConfigError, match="line 22"):
        result = parse_intensity_csv(path)
    assert result is None


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("zone,datetime,carbon_intensity_g_per_kwh,price_eur", "unknown column 'price_eur'"),
        ("zone,carbon_intensity_g_per_kwh", "no time column"),
        ("datetime,carbon_intensity_g_per_kwh", "no zone column"),
        ("zone,datetime", "no intensity column"),
        ("zone,datetime,Datetime (UTC),carbon_intensity_g_per_kwh", "repeats column 'datetime'"),
        ("zone,Zone Id,datetime,carbon_intensity_g_per_kwh", "repeats column 'zone'"),
        (
            "zone,datetime,carbon_intensity_g_per_kwh,Carbon Intensity gCO₂eq/kWh (LCA)",
            "both an untyped and a direct/life-cycle intensity column",
        ),
    ],
)
def test_bad_header_is_line_1(tmp_path: Path, header: str, problem: str) -> None:
    path = write(tmp_path, header, "FR,2024-03-01T00:00:00Z,50,1")
    with pytest.raises(ConfigError) as caught:
        parse_intensity_csv(path)
    assert str(caught.value).startswith(f"{path}: line 1: ")
    assert problem in str(caught.value)


def test_asking_for_a_factor_type_the_file_lacks(tmp_path: Path) -> None:
    path = write(tmp_path, "Datetime (UTC),Zone Id,Carbon Intensity gCO₂eq/kWh (LCA)")
    with pytest.raises(ConfigError, match="line 1: no direct intensity column"):
        parse_intensity_csv(path, factor_type="direct")
    plain = write(tmp_path, PLAIN_HEADER, name="plain.csv")
    with pytest.raises(ConfigError, match="line 1: no lifecycle intensity column"):
        parse_intensity_csv(plain, factor_type="lifecycle")


def test_unreadable_or_empty_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(ConfigError, match=r"nope\.csv: cannot read intensity file"):
        parse_intensity_csv(missing)
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"empty\.csv: line 1: empty file"):
        parse_intensity_csv(empty)
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"zone,datetime,carbon_intensity_g_per_kwh\n\xe9,x,1\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        parse_intensity_csv(latin)


# --- splitting energy by UTC hour -----------------------------------------------------------


def test_run_across_an_hour_boundary_matches_hand_arithmetic() -> None:
    # 300 W from 10:40:00 to 11:10:00, one stored sample per second (300 J each):
    # 20 min x 300 W = 360 kJ before 11:00, 10 min x 300 W = 180 kJ after.
    start = utc(10, 40)
    samples = [
        (start + timedelta(seconds=i), start + timedelta(seconds=i + 1), 300.0)
        for i in range(30 * 60)
    ]
    assert split_energy_by_hour(samples) == {
        utc(10): pytest.approx(360_000.0),
        utc(11): pytest.approx(180_000.0),
    }


def test_an_interval_crossing_boundaries_is_split_by_time() -> None:
    # 10:50-11:05 with 900 J: 10 of 15 minutes before 11:00 -> 600 J, 5 after -> 300 J.
    assert split_energy_by_hour([(utc(10, 50), utc(11, 5), 900.0)]) == {
        utc(10): pytest.approx(600.0),
        utc(11): pytest.approx(300.0),
    }
    # 09:30-11:30 with 7200 J: 30, 60 and 30 minutes.
    parts = split_energy_by_hour([(utc(9, 30), utc(11, 30), 7200.0)])
    assert parts == {
        utc(9): pytest.approx(1800.0),
        utc(10): pytest.approx(3600.0),
        utc(11): pytest.approx(1800.0),
    }
    assert math.fsum(parts.values()) == 7200.0


def test_split_keys_are_utc_hours_whatever_the_input_zone() -> None:
    paris = timezone(timedelta(hours=1))
    start = datetime(2024, 3, 1, 11, 30, tzinfo=paris)  # 10:30 UTC
    parts = split_energy_by_hour([(start, start + timedelta(minutes=30), 50.0)])
    assert list(parts) == [utc(10)]
    assert next(iter(parts)).tzinfo is UTC


def test_split_edge_cases() -> None:
    assert split_energy_by_hour([(utc(10), utc(11), 3600.0)]) == {utc(10): 3600.0}
    assert split_energy_by_hour([(utc(10, 15), utc(10, 15), 5.0)]) == {utc(10): 5.0}
    assert split_energy_by_hour([(utc(9), utc(12), 0.0)]) == {}
    assert split_energy_by_hour([]) == {}


@pytest.mark.parametrize(
    ("interval", "problem"),
    [
        ((datetime(2024, 3, 1, 10), utc(11), 1.0), "timezone-aware"),
        ((utc(11), utc(10), 1.0), "ends before it starts"),
        ((utc(10), utc(11), -1.0), "finite and >= 0"),
        ((utc(10), utc(11), math.nan), "finite and >= 0"),
    ],
)
def test_split_rejects_bad_intervals(
    interval: tuple[datetime, datetime, float], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        split_energy_by_hour([interval])


# --- CO2e hour by hour ---------------------------------------------------------------------


def test_hourly_co2e_reports_the_missing_hour_instead_of_zero() -> None:
    energy = {utc(10): 3_600_000.0, utc(11): 1_800_000.0, utc(12): 7_200_000.0}
    intensity = {utc(10): 100.0, utc(11): 200.0, utc(13): 999.0}
    result = hourly_co2e_g(energy, intensity, pue=1.5)
    # 1 kWh x 1.5 x 100 g = 150 g; 0.5 kWh x 1.5 x 200 g = 150 g; 12:00 has no intensity.
    assert dict(result.co2e_g_by_hour) == {
        utc(10): pytest.approx(150.0),
        utc(11): pytest.approx(150.0),
    }
    assert result.missing_hours == (utc(12),)
    assert result.missing_energy_j == 7_200_000.0
    assert result.covered_co2e_g == pytest.approx(300.0)
    assert result.total_co2e_g is None
    # The caller picks the fallback: 2 kWh x 1.5 x 50 g = 150 g more.
    assert result.total_with_fallback_g(50.0) == pytest.approx(450.0)


def test_hourly_co2e_complete_series_has_a_total() -> None:
    result = hourly_co2e_g({utc(10): 3_600_000.0, utc(11): 0.0}, {utc(10): 56.0}, pue=1.0)
    assert result.missing_hours == ()
    assert result.total_co2e_g == pytest.approx(56.0)
    assert result.total_with_fallback_g(1000.0) == pytest.approx(56.0)
    with pytest.raises(TypeError):
        result.co2e_g_by_hour[utc(12)] = 1.0  # type: ignore[index]


def test_hourly_co2e_rejects_bad_keys_and_values() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        hourly_co2e_g({datetime(2024, 3, 1, 10): 1.0}, {}, pue=1.0)
    with pytest.raises(ValueError, match="not on the hour"):
        hourly_co2e_g({utc(10, 30): 1.0}, {}, pue=1.0)
    with pytest.raises(ValueError, match="pue"):
        hourly_co2e_g({utc(10): 1.0}, {}, pue=0.9)
    with pytest.raises(ValueError, match="intensity_g_per_kwh"):
        hourly_co2e_g({utc(10): 1.0}, {utc(10): -5.0}, pue=1.0)


def test_from_csv_to_hourly_co2e(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        PLAIN_HEADER,
        "FR,2024-03-01T10:00:00Z,40",
        "DE,2024-03-01T10:00:00Z,400",
        "FR,2024-03-01T11:00:00Z,80",
    )
    series = series_for_zone(parse_intensity_csv(path), "FR")
    energy = split_energy_by_hour([(utc(10, 30), utc(11, 30), 3_600_000.0)])
    result = hourly_co2e_g(energy, series, pue=1.0)
    # Half a kWh at 40 g, half at 80 g.
    assert result.total_co2e_g == pytest.approx(60.0)
