"""``carbon run -- CMD``: exit codes, failures and signals, with the run stored each time."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CARBON = [sys.executable, "-m", "carbon"]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CARBON_HOME": str(tmp_path), "CARBON_REGION": "SE"}


def _runs(tmp_path: Path) -> list[dict[str, object]]:
    listed = subprocess.run(
        [*CARBON, "runs", "list", "--json"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    )
    runs: list[dict[str, object]] = json.loads(listed.stdout)
    return runs


def test_successful_command_is_a_completed_run(tmp_path: Path) -> None:
    child = [sys.executable, "-c", "import time; time.sleep(1.2)"]
    result = subprocess.run(
        [*CARBON, "run", "--project", "jobs", "--tag", "queue=gpu", "--", *child],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (run,) = _runs(tmp_path)
    assert run["status"] == "completed"
    assert run["project"] == "jobs"
    assert run["duration_s"] >= 1.2  # type: ignore[operator]
    assert run["energy_j"] > 0  # type: ignore[operator]
    assert run["co2e_g"] is not None
    assert run["tags"]["queue"] == "gpu"  # type: ignore[index]
    assert "time.sleep(1.2)" in run["tags"]["command"]  # type: ignore[index]
    assert run["metrics"] == {"exit_code": 0.0}


def test_failing_command_passes_its_exit_code_and_is_failed(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CARBON, "run", "--", sys.executable, "-c", "import sys; sys.exit(3)"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3
    assert "command exited with code 3" in result.stderr
    (run,) = _runs(tmp_path)
    assert run["status"] == "failed"


def test_sigterm_is_forwarded_and_the_run_is_interrupted(tmp_path: Path) -> None:
    marker = tmp_path / "child-got-sigterm"
    code = (
        "import signal, sys, time, pathlib\n"
        "def bye(*_):\n"
        f"    pathlib.Path({str(marker)!r}).write_text('yes')\n"
        "    sys.exit(143)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    proc = subprocess.Popen(
        [*CARBON, "run", "--", sys.executable, "-c", code],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    assert marker.read_text() == "yes"
    (run,) = _runs(tmp_path)
    assert run["status"] == "interrupted"
    assert run["energy_j"] > 0  # type: ignore[operator]


@pytest.mark.parametrize("program", ["no-such-program-xyz"])
def test_missing_program_is_a_clear_error_and_stores_nothing(tmp_path: Path, program: str) -> None:
    result = subprocess.run(
        [*CARBON, "run", "--", program],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: cannot run '{program}': no such program or not executable"
    )
    assert _runs(tmp_path) == []
