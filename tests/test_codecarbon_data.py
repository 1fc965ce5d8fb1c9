from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from carbon._codecarbon_data import codecarbon_data_path, codecarbon_version
from carbon.errors import SourceUnavailable

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_finds_the_bundled_cpu_table() -> None:
    path = codecarbon_data_path("hardware/cpu_power.csv")
    assert path.is_file()
    assert path.parts[-3:] == ("data", "hardware", "cpu_power.csv")
    assert path.read_text(encoding="utf-8").splitlines()[0] == "Name,TDP"


def test_finds_the_energy_mix() -> None:
    path = codecarbon_data_path("private_infra/global_energy_mix.json")
    assert path.name == "global_energy_mix.json"
    assert path.is_file()


def test_reports_the_installed_version() -> None:
    version = codecarbon_version()
    assert version is not None
    assert int(version.split(".")[0]) >= 3


def test_missing_file_is_unavailable_and_says_which() -> None:
    with pytest.raises(SourceUnavailable, match=r"does not ship data/hardware/nope\.csv"):
        codecarbon_data_path("hardware/nope.csv")


@pytest.mark.parametrize("relative", ["", "../setup.py", "/etc/passwd", "hardware/../../x"])
def test_paths_outside_the_data_folder_are_refused(relative: str) -> None:
    with pytest.raises(ValueError, match="inside codecarbon's data folder"):
        codecarbon_data_path(relative)


def test_codecarbon_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> object:
        return None if name == "codecarbon" else real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(SourceUnavailable, match="codecarbon package is not installed"):
        codecarbon_data_path("hardware/cpu_power.csv")


def test_using_the_data_does_not_import_codecarbon_or_pandas() -> None:
    script = """
import sys
import carbon.sources
import carbon.sources.cpu_estimate
import carbon.sources.detect
import carbon.sources.ram_estimate
import carbon.sources.rapl
import carbon.accounting
from carbon.accounting.intensity import lookup_country_intensity
from carbon.sources._tdp_table import load_tdp_table, match_tdp

assert lookup_country_intensity("FR").zone == "FRA"
assert match_tdp("AMD EPYC 7763 64-Core Processor", load_tdp_table()) is not None
carbon.sources.probe_machine()
print(sorted(m for m in sys.modules if m.split(".")[0] in ("codecarbon", "pandas")))
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
