"""``carbon intensity import``, ``carbon market`` and ``carbon whatif`` against a real store."""

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

import carbon
from carbon.accounting.hourly import HourlyIntensity
from carbon.accounting.resolve import resolve
from carbon.errors import ConfigError
from carbon.settings import Settings
from carbon.store import factors, open_store
from carbon.store.models import IntensityHour
from carbon.testing import ConstantPowerSource
from tests.test_cli import _env, cli


def _run(settings: Settings, project: str = "acct") -> dict[str, object]:
    with carbon.track(
        project=project, settings=settings, sources=[ConstantPowerSource(500.0)], pue=1.2
    ) as run:
        time.sleep(0.3)
    return run.summary()


def _csv(path: Path, zone: str, hours: list[datetime], value: str) -> Path:
    lines = ["zone,datetime,carbon_intensity_g_per_kwh"]
    lines += [f"{zone},{hour.strftime('%Y-%m-%dT%H:00Z')},{value}" for hour in hours]
    path.write_text("\n".join(lines) + "\n")
    return path


def _hours_around_now() -> list[datetime]:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return [now - timedelta(hours=1), now, now + timedelta(hours=1)]


def test_imported_series_prices_runs_hour_by_hour_and_whatif(
    settings: Settings, tmp_path: Path
) -> None:
    env = _env(settings)
    imported = cli(
        "intensity", "import", str(_csv(tmp_path / "fr.csv", "FR", _hours_around_now(), "10")),
        env=env,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    assert "imported 3 hour(s) for FRA" in imported.stdout
    summary = _run(settings)
    energy_kwh = summary["energy_j"] / 3.6e6  # type: ignore[operator]
    assert summary["co2e_method"] == "hourly"
    assert summary["co2e_g"] == pytest.approx(energy_kwh * 1.2 * 10.0)

    result = cli(
        "whatif", str(summary["id"]), "--region", "FR", "--region", "DE", "--json", env=env
    )
    assert result.returncode == 0, result.stderr
    fr, de = json.loads(result.stdout)
    assert fr["method"] == "hourly"
    assert fr["co2e_g"] == pytest.approx(energy_kwh * 1.2 * 10.0, rel=1e-6)
    de_factor = resolve("DE").intensity.intensity_g_per_kwh
    assert de["method"] == "static"
    assert de["pue"] == 1.2  # the run's own PUE, as Germany is not a cloud region
    assert de["co2e_g"] == pytest.approx(energy_kwh * 1.2 * de_factor, rel=1e-6)


def test_bad_series_names_the_line_and_imports_nothing(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    hours = _hours_around_now()
    path.write_text(
        "zone,datetime,carbon_intensity_g_per_kwh\n"
        f"FR,{hours[0].strftime('%Y-%m-%dT%H:00Z')},50\n"
        f"FR,{hours[1].strftime('%Y-%m-%dT%H:00Z')},-3\n"
    )
    result = cli("intensity", "import", str(path), env=_env(settings))
    assert result.returncode == 1
    assert "line 3" in result.stderr
    assert "negative" in result.stderr
    with open_store(settings.resolved_database_url).session() as session:
        assert session.scalar(select(func.count()).select_from(IntensityHour)) == 0


def test_reimporting_hours_needs_replace(settings: Settings, tmp_path: Path) -> None:
    path = _csv(tmp_path / "fr.csv", "FRA", _hours_around_now(), "10")
    env = _env(settings)
    assert cli("intensity", "import", str(path), env=env).returncode == 0
    again = cli("intensity", "import", str(path), env=env)
    assert again.returncode == 1
    assert "already stored" in again.stderr
    replaced = cli("intensity", "import", str(path), "--replace", env=env)
    assert replaced.returncode == 0, replaced.stderr


def test_a_year_of_hours_imports_at_once_and_reimports_with_replace(settings: Settings) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    year = [
        HourlyIntensity("DE", start + timedelta(hours=h), 300.0 + h % 24, "year.csv")
        for h in range(8_784)
    ]
    store = open_store(settings.resolved_database_url)
    with store.session() as session:
        assert factors.import_series(session, year) == 8_784
    with store.session() as session, pytest.raises(ConfigError) as refused:
        factors.import_series(session, year[100:200])
    assert "100 hour(s) are already stored, the first DE 2025-01-05T04:00:00+00:00" in str(
        refused.value
    )
    changed = [HourlyIntensity(r.zone, r.hour_start, 1.0, "fix.csv") for r in year[-2000:]]
    with store.session() as session:
        assert factors.import_series(session, changed, replace=True) == 2_000
    with store.session() as session:
        fixed = session.scalar(select(func.count()).where(IntensityHour.intensity_g_per_kwh == 1.0))
        total = session.scalar(select(func.count()).select_from(IntensityHour))
    assert (fixed, total) == (2_000, 8_784)


def test_market_factor_gives_a_separate_market_based_figure(settings: Settings) -> None:
    env = _env(settings)
    added = cli(
        "market", "add", "--project", "green", "--intensity", "5",
        "--source", "PPA 2026-017 with a wind farm", env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    listed = json.loads(cli("market", "list", "--json", env=env).stdout)
    assert listed[0]["source"] == "PPA 2026-017 with a wind farm"
    green, other = _run(settings, "green"), _run(settings, "other")
    energy_kwh = green["energy_j"] / 3.6e6  # type: ignore[operator]
    assert green["co2e_market_g"] == pytest.approx(energy_kwh * 1.2 * 5.0)
    assert green["co2e_g"] == pytest.approx(energy_kwh * 1.2 * green["intensity_g_per_kwh"])  # type: ignore[operator]
    assert "PPA 2026-017" in str(green["market_source"])
    assert other["co2e_market_g"] is None
    both = cli("market", "add", "--project", "x", "--region", "FR", "--intensity", "1",
               "--source", "s", env=env)  # fmt: skip
    assert both.returncode == 1
    assert "a project or to a zone" in both.stderr
