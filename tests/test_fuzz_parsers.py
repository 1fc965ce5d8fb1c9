"""Properties of every parser of outside text: regions, and each CSV the product reads.

The parsers: :func:`~carbon.accounting.regions.parse_region` and
:func:`~carbon.accounting.resolve.resolve` (a region and a PUE from users), the hourly
intensity series (:func:`~carbon.accounting.hourly.parse_intensity_csv`, ``carbon intensity
import``), contractual factors (``carbon market add``), the tables carbon ships (cloud
regions, embodied emissions), codecarbon's CPU TDP table, recorded power traces
(:class:`~carbon.testing.CsvTrace`) and ``carbon regions QUERY``. For each:

- any text or bytes give a result or one of the product's documented errors
  (``carbon/errors.py``) whose message names the problem: the input, or the file and line;
- a generated valid file parses to exactly the values written;
- a bad file changes nothing in the store.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pycountry
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import func, select
from typer.testing import CliRunner

from carbon.accounting.embodied import EmbodiedFactor, parse_embodied_table
from carbon.accounting.hourly import FactorType, HourlyIntensity, parse_intensity_csv
from carbon.accounting.regions import (
    CloudRegion,
    Region,
    cloud_regions,
    known_regions,
    parse_cloud_table,
    parse_region,
)
from carbon.accounting.resolve import electricitymaps_zone, resolve
from carbon.cli import app
from carbon.errors import CarbonError, ConfigError, SourceUnavailable
from carbon.sources._tdp_table import load_tdp_table
from carbon.store import open_store
from carbon.store.models import IntensityHour, MarketFactor
from carbon.testing.power_traces import CsvTrace
from carbon.wire import MAX_INTENSITY_G_PER_KWH
from tests.fuzz_helpers import finite, fuzz_settings

FILES = st.binary(max_size=300) | st.text(max_size=300).map(str.encode)
"""Any bytes, and any text as UTF-8."""

LINE = re.compile(r"\bline \d+\b")

CSV_PUNCTUATION = st.sampled_from([",", '"', "\n", "\r\n", " ", "\x00", "\ufeff", "\t"])


@st.composite
def csv_like(draw: st.DrawFn, header: list[str]) -> bytes:
    """A file that starts like the real thing (its header) and goes wrong anywhere after."""
    cells = st.text(max_size=12) | CSV_PUNCTUATION | finite(-1e9, 1e9).map(repr)
    rows = draw(st.lists(st.lists(cells, max_size=len(header) + 1), max_size=5))
    text = ",".join(header) + "\n" + "\n".join(",".join(row) for row in rows)
    return draw(st.sampled_from([text.encode(), b"\xef\xbb\xbf" + text.encode()]))


def _write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


# -- regions and pricing -------------------------------------------------------------------

KNOWN = known_regions()


@fuzz_settings(60)
@given(text=st.text(max_size=24))
@example(text="")
@example(text=" gcp : ")
@example(text="aws:")
@example(text=":x")
def test_any_text_is_a_region_or_a_config_error_quoting_it(text: str) -> None:
    try:
        region = parse_region(text)
    except ConfigError as refused:
        message = str(refused)
        assert (repr(text) in message) or (not text.strip() and "region is empty" in message)
    else:
        assert region in KNOWN


@st.composite
def spellings(draw: st.DrawFn) -> tuple[str, Region]:
    """A known region written as a user might: any case, spaces around, alpha-2 or -3."""
    region = draw(st.sampled_from(KNOWN))
    if region.kind == "cloud":
        text = draw(st.sampled_from([region.code, f"{region.provider} : {region.cloud_region}"]))
    elif region.kind == "country":
        alpha_2 = str(getattr(pycountry.countries.get(alpha_3=region.code), "alpha_2", ""))
        text = draw(st.sampled_from([region.code, alpha_2 or region.code]))
    else:
        text = region.code
    cased = "".join(draw(st.sampled_from([c.lower(), c.upper()])) for c in text)
    space = st.text(" \t", max_size=2)
    return draw(space) + cased + draw(space), region


@fuzz_settings(200)
@given(spelled=spellings())
def test_every_spelling_of_a_known_region_parses_to_it(spelled: tuple[str, Region]) -> None:
    text, region = spelled
    assert parse_region(text) == region


PUES = st.none() | st.floats() | st.integers(-3, 5)


@fuzz_settings(120)
@given(text=spellings().map(lambda spelled: spelled[0]) | st.text(max_size=10), pue=PUES)
def test_resolving_any_region_and_pue_prices_or_refuses_naming_it(
    text: str, pue: float | None
) -> None:
    try:
        pricing = resolve(text, pue=pue)
    except ConfigError as refused:
        named = [repr(text), "region is empty", "PUE"]
        with contextlib.suppress(ConfigError):
            named.append(parse_region(text).code)  # a known region without a factor
        message = str(refused)
        assert any(name in message for name in named), (text, message)
        return
    assert pricing.region == parse_region(text)
    assert math.isfinite(pricing.intensity.intensity_g_per_kwh)
    assert pricing.intensity.intensity_g_per_kwh >= 0
    assert math.isfinite(pricing.pue.pue)
    assert pricing.pue.pue >= 1.0
    assert pue is None or pricing.pue.pue == pue
    zone = electricitymaps_zone(pricing.region)
    assert zone is None or (zone.isascii() and zone.strip() == zone and zone)


# -- the tables carbon ships ---------------------------------------------------------------

CLOUD_HEADER = ["provider", "region", "location", "grid_zone", "source", "year"]
EMBODIED_HEADER = [
    "device_key",
    "manufacturing_kgco2e",
    "lifetime_years",
    "basis",
    "source",
    "notes",
]


def _csv_text(header: list[str], rows: list[list[str]], *, crlf: bool = False) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n" if crlf else "\n").writerows([header, *rows])
    return buffer.getvalue()


def _refusal_names_a_line(refused: ConfigError, table: str) -> None:
    message = str(refused)
    assert message.startswith(table), message
    assert LINE.search(message), message


@fuzz_settings(150)
@given(text=st.text(max_size=300) | csv_like(CLOUD_HEADER).map(bytes.decode))
def test_any_text_is_a_cloud_table_or_a_config_error_naming_the_line(text: str) -> None:
    try:
        rows = parse_cloud_table(text, "regions.csv")
    except ConfigError as refused:
        _refusal_names_a_line(refused, "regions.csv")
    else:
        assert all(row.provider in ("aws", "azure", "gcp") and row.region for row in rows)


PLAIN = st.text(
    st.characters(codec="utf-8", exclude_categories=["Zs", "Zl", "Zp", "Cc"]),
    min_size=1,
    max_size=12,
)
"""Cell text without control characters or white space, which parsers strip from cells."""


@st.composite
def cloud_rows(draw: st.DrawFn) -> list[CloudRegion]:
    """Distinct cloud regions in known grid zones, as a table would list them."""
    zones = [region.code for region in KNOWN if region.kind != "cloud"]
    names = draw(
        st.lists(
            st.text("abcdefghijklmnop-0123456789", min_size=1, max_size=15), max_size=6, unique=True
        )
    )
    return [
        CloudRegion(
            provider=draw(st.sampled_from(["aws", "azure", "gcp"])),
            region=name,
            location=draw(PLAIN),
            grid_zone=draw(st.sampled_from(zones)),
            source=draw(PLAIN),
            year=draw(st.none() | st.integers(1990, 2100)),
        )
        for name in names
    ]


@fuzz_settings(100)
@given(rows=cloud_rows(), crlf=st.booleans())
def test_a_generated_cloud_table_parses_to_the_rows_written(
    rows: list[CloudRegion], crlf: bool
) -> None:
    written = [
        [
            r.provider,
            r.region,
            r.location,
            r.grid_zone,
            r.source,
            "" if r.year is None else str(r.year),
        ]
        for r in rows
    ]
    assert list(parse_cloud_table(_csv_text(CLOUD_HEADER, written, crlf=crlf))) == rows


@fuzz_settings(100)
@given(
    line=st.integers(0, len(cloud_regions()) - 1),
    column=st.sampled_from(CLOUD_HEADER),
    cell=st.sampled_from(["", "x", "2026.5", "moon", "aws"]),
)
def test_a_bundled_table_with_one_bad_cell_is_refused_at_that_line_and_column(
    line: int, column: str, cell: str
) -> None:
    rows = [
        [getattr(row, name) for name in CLOUD_HEADER[:5]] + [str(row.year or "")]
        for row in cloud_regions()
    ]
    rows[line][CLOUD_HEADER.index(column)] = cell
    try:
        parse_cloud_table(_csv_text(CLOUD_HEADER, rows))
    except ConfigError as refused:
        message = str(refused)
        assert f"line {line + 2}, column '" in message, message
    else:  # the cell was still valid there (a region name "x", a location "moon" ...)
        valid = (column, cell) in (("provider", "aws"), ("year", ""))
        assert valid or (column in ("region", "location", "source") and cell), (column, cell)


@fuzz_settings(150)
@given(text=st.text(max_size=300) | csv_like(EMBODIED_HEADER).map(bytes.decode))
def test_any_text_is_an_embodied_table_or_a_config_error_naming_the_line(text: str) -> None:
    try:
        factors = parse_embodied_table(text)
    except ConfigError as refused:
        _refusal_names_a_line(refused, "data/embodied.csv")
    else:
        assert all(f.manufacturing_kgco2e > 0 and f.lifetime_years > 0 for f in factors)


@st.composite
def embodied_rows(draw: st.DrawFn) -> list[EmbodiedFactor]:
    keys = draw(
        st.lists(st.text("abcdefgh0123456789-", min_size=1, max_size=12), max_size=5, unique=True)
    )
    positive = finite(1e-6, 1e12).filter(lambda value: value > 0)
    return [
        EmbodiedFactor(
            device_key=key,
            manufacturing_kgco2e=draw(positive),
            lifetime_years=draw(positive),
            basis=draw(st.sampled_from(["estimate", "lca"])),
            source=draw(PLAIN),
            notes=draw(st.just("") | PLAIN),
        )
        for key in keys
    ]


@fuzz_settings(100)
@given(factors=embodied_rows())
def test_a_generated_embodied_table_parses_to_the_rows_written(
    factors: list[EmbodiedFactor],
) -> None:
    written = [
        [
            f.device_key,
            repr(f.manufacturing_kgco2e),
            repr(f.lifetime_years),
            f.basis,
            f.source,
            f.notes,
        ]
        for f in factors
    ]
    assert list(parse_embodied_table(_csv_text(EMBODIED_HEADER, written))) == factors


# -- hourly intensity series ---------------------------------------------------------------

INTENSITY_HEADERS = ["zone", "datetime", "carbon_intensity_g_per_kwh"]
EXPORT_HEADERS = [
    "Datetime (UTC)",
    "Country",
    "Zone Name",
    "Zone Id",
    "Carbon Intensity gCO₂eq/kWh (direct)",
    "Carbon Intensity gCO₂eq/kWh (LCA)",
    "Data Source",
]


def _intensity_refusal(refused: ConfigError, path: Path) -> None:
    message = str(refused)
    assert message.startswith(str(path)), message
    if "not UTF-8" not in message and "cannot read" not in message:
        assert LINE.search(message), message


@fuzz_settings(200)
@given(
    content=FILES | csv_like(INTENSITY_HEADERS) | csv_like(EXPORT_HEADERS),
)
@example(content=b"zone,datetime,carbon_intensity_g_per_kwh\nFR,0001-01-01T00:00+05:00,1\n")
@example(content=b"zone,datetime,carbon_intensity_g_per_kwh\nFR,9999-12-31T23:00-01:00,1\n")
@example(
    content=b'zone,datetime,carbon_intensity_g_per_kwh\nFR,2024-01-01T00:00Z,"'
    + b"9" * 200_000
    + b'"\n'
)
@example(content=b"zone,datetime,carbon_intensity_g_per_kwh\nF\x00R,2024-01-01T00:00Z,1\n")
@example(
    content=b"zone,datetime,carbon_intensity_g_per_kwh\n" + b"Z" * 65 + b",2024-01-01T00:00Z,1\n"
)
@example(content=b"zone,datetime,carbon_intensity_g_per_kwh\nFR,2024-01-01T00:00Z,1e300\n")
def test_any_file_is_a_series_or_a_config_error_naming_file_and_line(
    tmp_path_factory: pytest.TempPathFactory, content: bytes
) -> None:
    path = _write(tmp_path_factory.mktemp("series"), "series.csv", content)
    try:
        rows = parse_intensity_csv(path)
    except ConfigError as refused:
        _intensity_refusal(refused, path)
        return
    for row in rows:
        assert 0 < len(row.zone) <= 64
        assert row.zone.isprintable()
        assert row.hour_start.utcoffset() == timedelta(0)
        assert 0 <= row.intensity_g_per_kwh <= MAX_INTENSITY_G_PER_KWH


ZONES = st.text(
    st.characters(
        codec="utf-8", exclude_categories=["Cc", "Cf", "Zs", "Zl", "Zp", "Co", "Cs", "Cn"]
    ),
    min_size=1,
    max_size=12,
) | st.sampled_from(["FR", "fr", "FRA", "DE", "US-CAL-CISO", "SE-SE3"])
HOURS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda moment: moment.replace(minute=0, second=0, microsecond=0, tzinfo=UTC)
)
OFFSETS = st.integers(-12 * 4, 14 * 4).map(
    lambda quarters: timezone(timedelta(minutes=15 * quarters))
)


@st.composite
def series_files(draw: st.DrawFn) -> tuple[bytes, list[HourlyIntensity], str]:
    """A valid series file in one of the two layouts, and the rows it must parse to."""
    export = draw(st.booleans())
    factor: FactorType | None
    keys = draw(st.lists(st.tuples(ZONES, HOURS), min_size=0, max_size=8, unique=True))
    values = [draw(finite(0.0, MAX_INTENSITY_G_PER_KWH)) for _ in keys]
    name = "series.csv"
    if export:
        header = list(EXPORT_HEADERS)
        source = draw(PLAIN)
        order = draw(st.permutations(range(len(header))))
        lines = []
        for (zone, hour), value in zip(keys, values, strict=True):
            cells = {
                "Datetime (UTC)": hour.replace(tzinfo=None).isoformat(),
                "Country": "x",
                "Zone Name": draw(PLAIN),
                "Zone Id": zone,
                "Carbon Intensity gCO₂eq/kWh (direct)": repr(draw(finite(0.0, 1e3))),
                "Carbon Intensity gCO₂eq/kWh (LCA)": repr(value),
                "Data Source": source,
            }
            lines.append([cells[header[i]] for i in order])
        kind, factor = f"Electricity Maps export, data source: {source}", "lifecycle"
        text = _csv_text([header[i] for i in order], lines, crlf=draw(st.booleans()))
    else:
        rows = []
        for (zone, hour), value in zip(keys, values, strict=True):
            written = hour.astimezone(draw(OFFSETS)).isoformat()
            rows.append(
                [
                    zone,
                    draw(st.sampled_from([written, written.replace("+00:00", "Z")])),
                    repr(value),
                ]
            )
        kind, factor = "CSV", None
        text = _csv_text(INTENSITY_HEADERS, rows, crlf=draw(st.booleans()))
    if draw(st.booleans()):
        text = text.replace("\n", "\n\n", 1)  # a blank line after the header is skipped
    expected = sorted(
        (
            HourlyIntensity(zone, hour, value, f"{name} ({kind})", factor)
            for (zone, hour), value in zip(keys, values, strict=True)
        ),
        key=lambda row: (row.zone, row.hour_start),
    )
    bom = draw(st.sampled_from(["", "\ufeff"]))
    return (bom + text).encode(), expected, name


@fuzz_settings(150)
@given(series=series_files())
def test_a_generated_series_parses_to_exactly_the_values_written(
    tmp_path_factory: pytest.TempPathFactory, series: tuple[bytes, list[HourlyIntensity], str]
) -> None:
    content, expected, name = series
    path = _write(tmp_path_factory.mktemp("series"), name, content)
    assert parse_intensity_csv(path) == expected


# -- commands that write what they parse: nothing stored from a bad file -------------------


def _count(store_url: str, model: Any) -> int:
    with open_store(store_url).session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _invoke(env: dict[str, str], *args: str) -> Any:
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert isinstance(result.exception, CarbonError), (args, repr(result.exception))
    return result


BROKEN_LINES = st.sampled_from(
    [
        "x,y",
        "FR,2024-01-01T00:30Z,1",
        "FR,2024-01-01,1",
        "FR,2024-01-01T00:00Z,-1",
        "FR,2024-01-01T00:00Z,nan",
        "FR,0001-01-01T00:00+05:00,1",
    ]
)
"""Lines that break any series file they replace a row of."""


def _with_broken_line(content: bytes, line: str, at: int) -> bytes:
    """The file with its row ``at`` (counted past the header, wrapping) replaced by ``line``."""
    lines = content.decode("utf-8-sig").splitlines()
    if len(lines) > 1:
        lines[1 + at % (len(lines) - 1)] = line
    return "\n".join(lines).encode()


def test_an_imported_series_is_stored_whole_or_not_at_all(store_url: str, tmp_path: Path) -> None:
    """``carbon intensity import``: a good file adds its hours; a bad one, or a repeat, none."""
    env = {"CARBON_DATABASE_URL": store_url, "CARBON_HOME": str(tmp_path / "home")}
    imported: list[tuple[datetime, float]] = []
    outcomes: set[str] = set()

    @fuzz_settings(40)
    @given(
        series=series_files(),
        broken=st.none() | st.tuples(BROKEN_LINES, st.integers(0, 9)),
    )
    def import_file(
        series: tuple[bytes, list[HourlyIntensity], str], broken: tuple[str, int] | None
    ) -> None:
        content = series[0] if broken is None else _with_broken_line(series[0], *broken)
        path = _write(tmp_path, series[2], content)
        before = _count(store_url, IntensityHour)
        result = _invoke(env, "intensity", "import", str(path))
        if result.exit_code != 0:
            assert _count(store_url, IntensityHour) == before
            assert isinstance(result.exception, ConfigError), result.output
            message = str(result.exception)
            named = ("already stored" in message) or ("both give the hour" in message)
            assert named or LINE.search(message), message
            outcomes.add("refused")
            return
        rows = parse_intensity_csv(path)
        assert _count(store_url, IntensityHour) == before + len(rows)
        imported.extend((row.hour_start, row.intensity_g_per_kwh) for row in rows)
        outcomes.add("stored")

    import_file()
    with open_store(store_url).session() as session:
        rows = session.execute(select(IntensityHour.hour_start, IntensityHour.intensity_g_per_kwh))
        held = sorted((hour, value) for hour, value in rows)
    assert held == sorted(imported)
    assert outcomes == {"refused", "stored"}


DAYS = st.sampled_from(
    [
        "2026-01-01",
        "2026-12-31T23:00",
        "0001-01-01T00:00+05:00",
        "9999-12-31T23:59-01:00",
        "2026-02-30",
        "yesterday",
        "",
    ]
)


@fuzz_settings(60)
@given(
    source=st.sampled_from(["PPA 2026", " ", ""]) | st.text(max_size=10),
    scope=st.sampled_from([("--project", "bert"), ("--region", "FR"), ("--region", "moon")])
    | st.tuples(st.just("--project"), st.text(min_size=1, max_size=8)),
    factor=st.sampled_from(["--intensity", "--renewable-share"]),
    value=st.floats() | st.integers(-2, 3).map(float),
    valid_from=st.none() | DAYS,
    valid_to=st.none() | DAYS,
)
def test_a_market_factor_is_recorded_or_refused_with_nothing_stored(
    store_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    source: str,
    scope: tuple[str, str],
    factor: str,
    value: float,
    valid_from: str | None,
    valid_to: str | None,
) -> None:
    args = ["market", "add", "--source", source, *scope, factor, repr(value)]
    args += ["--from", valid_from] if valid_from is not None else []
    args += ["--to", valid_to] if valid_to is not None else []
    before = _count(store_url, MarketFactor)
    env = {"CARBON_DATABASE_URL": store_url, "CARBON_HOME": str(tmp_path_factory.mktemp("home"))}
    result = _invoke(env, *args)
    if result.exit_code == 0:
        assert _count(store_url, MarketFactor) == before + 1
    else:
        assert _count(store_url, MarketFactor) == before
        assert result.exit_code == 2 or str(result.exception), result.output


@fuzz_settings(40)
@given(query=st.text(max_size=12))
@example(query="fra")
def test_carbon_regions_lists_or_says_nothing_matches_for_any_query(
    query: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = {"CARBON_HOME": str(tmp_path_factory.mktemp("home"))}
    result = _invoke(env, "regions", "--", query)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if result.exit_code == 1:
        assert f"no region matches {query!r}" in result.output
    else:
        assert result.exit_code == 0
        assert result.output.strip()


# -- codecarbon's CPU table and recorded power traces --------------------------------------


@fuzz_settings(150)
@given(content=FILES | csv_like(["Name", "TDP"]))
@example(content=b"Name,TDP\nAMD EPYC 7763,inf\nIntel Xeon,nan\n")
@example(content=b"Name,TDP\n\xff\n")
def test_any_file_is_a_tdp_table_or_a_source_unavailable(
    tmp_path_factory: pytest.TempPathFactory, content: bytes
) -> None:
    path = _write(tmp_path_factory.mktemp("tdp"), "cpu_power.csv", content)
    try:
        rows = load_tdp_table(path)
    except SourceUnavailable as refused:
        message = str(refused)
        assert message.startswith(str(path)), message
    else:
        assert all(row.table_name and math.isfinite(row.tdp_w) and row.tdp_w > 0 for row in rows)


@fuzz_settings(100)
@given(
    rows=st.lists(st.tuples(PLAIN, finite(1e-3, 1e4), st.booleans()), max_size=6),
)
def test_a_generated_tdp_table_keeps_exactly_its_usable_rows(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, float, bool]]
) -> None:
    written = [[name, repr(tdp_w) if usable else "n/a"] for name, tdp_w, usable in rows]
    path = tmp_path_factory.mktemp("tdp") / "cpu_power.csv"
    path.write_text(_csv_text(["Name", "TDP"], written), encoding="utf-8")
    kept = [(row.table_name, row.tdp_w) for row in load_tdp_table(path)]
    assert kept == [(name, tdp_w) for name, tdp_w, usable in rows if usable]


@fuzz_settings(200)
@given(content=FILES | csv_like(["time_s", "power_w"]))
@example(content=b"time_s,power_w\n0,1e308\n1e10,1e308\n")
@example(content=b"time_s,power_w\nnan,1\n")
@example(content=b"time_s,power_w\n0\n")
def test_any_file_is_a_power_trace_or_a_config_error_naming_file_and_line(
    tmp_path_factory: pytest.TempPathFactory, content: bytes
) -> None:
    path = _write(tmp_path_factory.mktemp("trace"), "trace.csv", content)
    try:
        trace = CsvTrace(path)
    except ConfigError as refused:
        message = str(refused)
        assert message.startswith(str(path)), message
        if not any(words in message for words in ("not UTF-8", "no rows", "cannot read")):
            assert LINE.search(message), message
        return
    energy_j = trace.energy_j(-1.0, 1e6)
    assert math.isfinite(energy_j)
    assert energy_j >= 0


@fuzz_settings(150)
@given(
    knots=st.lists(st.tuples(finite(1e-3, 1e3), finite(0.0, 1e4)), min_size=1, max_size=8),
    step=st.booleans(),
    extra=st.booleans(),
)
def test_a_generated_power_trace_holds_exactly_the_values_written(
    tmp_path_factory: pytest.TempPathFactory,
    knots: list[tuple[float, float]],
    step: bool,
    extra: bool,
) -> None:
    times, powers, t_s = [], [], 0.0
    for gap_s, power_w in knots:
        t_s += gap_s
        times.append(t_s)
        powers.append(power_w)
    header = ["power_w", "note", "time_s"] if extra else ["time_s", "power_w"]
    rows = [
        [repr(p), "x", repr(t)] if extra else [repr(t), repr(p)]
        for t, p in zip(times, powers, strict=True)
    ]
    path = tmp_path_factory.mktemp("trace") / "trace.csv"
    path.write_text(_csv_text(header, rows), encoding="utf-8")
    trace = CsvTrace(path, interpolation="step" if step else "linear")
    assert [trace.power_w(t) for t in times] == powers
    parts = [
        (powers[i] if step else (powers[i] + powers[i + 1]) / 2) * (times[i + 1] - times[i])
        for i in range(len(times) - 1)
    ]
    assert trace.energy_j(times[0], times[-1]) == pytest.approx(
        math.fsum(parts), rel=1e-9, abs=1e-9
    )
