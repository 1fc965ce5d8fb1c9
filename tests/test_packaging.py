"""The wheel carries the migrations, so an installed carbon can create its own store."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (path,) = out.glob("carbon_ledger-*.whl")
    return path


@pytest.mark.slow
def test_wheel_contains_package_migrations_and_console_script(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    assert "carbon/_migrations/env.py" in names
    assert "carbon/_migrations/versions/0001_initial.py" in names
    assert "carbon/tracking/api.py" in names
    assert "carbon = carbon.cli:main" in scripts


@pytest.mark.slow
def test_installed_wheel_migrates_a_fresh_store(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), wheel],
        check=True,
        capture_output=True,
        timeout=300,
    )
    db = tmp_path / "store.db"
    env = {**os.environ, "PYTHONPATH": str(target), "CARBON_DATABASE_URL": f"sqlite:///{db}"}
    code = "import carbon, sys; print(carbon.__file__); from carbon.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", code, "db", "upgrade"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(str(target))
    assert "at schema revision 0005" in result.stdout
    assert db.exists()
