"""Ranks of one job write one run: each rank its own devices and work, summed once."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from carbon.settings import Settings
from carbon.store import open_store
from carbon.store.models import Device, Run, RunRank
from carbon.store.summary import run_summary

RANK_SCRIPT = """
import sys, time
import carbon
from carbon.settings import load_settings
from carbon.sources.base import Component
from carbon.testing import ConstantPowerSource

rank = int(sys.argv[1])
gpu = "NVIDIA H100 80GB HBM3"
sources = [ConstantPowerSource(100.0 * (rank + 1), component=Component.GPU, name=gpu)]
if rank == 0:
    sources.append(ConstantPowerSource(20.0, component=Component.CPU, name="cpu"))
for epoch in range(2):
    tracker = carbon.track(project="ddp", name="train", settings=load_settings(), sources=sources)
    with tracker as run:
        for _ in range(5):
            run.step(samples=8, flops=1e9)
        time.sleep(0.8 + 0.4 * rank)
        if rank == 0:
            run.log_metrics(loss=1.0 / (epoch + 1))
        if rank == 1 and epoch == 1:
            raise RuntimeError("rank 1 ran out of memory")
"""


def _launch(settings: Settings, tmp_path: Path) -> list[subprocess.CompletedProcess[str]]:
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    procs = []
    for rank in (0, 1):
        env = {
            **os.environ,
            "CARBON_DATABASE_URL": settings.resolved_database_url,
            "CARBON_REGION": "FR",
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "SLURM_JOB_ID": "4242",
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script), str(rank)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


def test_ranks_of_a_job_share_one_run_per_tracked_block(settings: Settings, tmp_path: Path) -> None:
    rank0, rank1 = _launch(settings, tmp_path)
    assert rank0.returncode == 0, rank0.stderr
    assert rank1.returncode == 1
    assert "rank 1 ran out of memory" in rank1.stderr

    store = open_store(settings.resolved_database_url)
    with store.session() as session:
        runs = list(session.scalars(select(Run).order_by(Run.started_at)))
        assert len(runs) == 2  # one run per tracked block, not one per rank
        ranks = {(r.run_id, r.rank): r for r in session.scalars(select(RunRank))}
        devices = list(session.scalars(select(Device)))
        summaries = [run_summary(run) for run in runs]

    first, second = summaries
    for run, summary in zip(runs, summaries, strict=True):
        assert run.job_id == "4242"
        assert run.world_size == 2
        assert summary["tags"]["job_id"] == "4242"
        r0, r1 = ranks[(run.id, 0)], ranks[(run.id, 1)]
        # GPU energy is each rank's own GPU, summed once; the CPU only on rank 0.
        assert summary["energy_by_component_j"]["gpu"] == pytest.approx(
            100.0 * r0.duration_s + 200.0 * r1.duration_s, rel=0.01
        )
        assert summary["energy_by_component_j"]["cpu"] == pytest.approx(
            20.0 * r0.duration_s, rel=0.01
        )
        assert summary["samples"] == 80
        assert summary["flops"] == pytest.approx(1e10)
        assert summary["hardware"]["gpu_count"] == 2
        assert summary["duration_s"] == pytest.approx(max(r0.duration_s, r1.duration_s))
    assert {(d.rank, d.component) for d in devices if d.run_id == runs[0].id} == {
        (0, "gpu"),
        (0, "cpu"),
        (1, "gpu"),
    }
    assert first["status"] == "completed"
    assert first["metrics"] == {"loss": 1.0}
    assert second["status"] == "failed"
    assert second["error"] == "rank 1: RuntimeError: rank 1 ran out of memory"
    assert second["metrics"] == {"loss": 0.5}


DETECT_SCRIPT = """
import time
import carbon
with carbon.track(project="ddp", name="detected") as run:
    run.step(samples=4)
    time.sleep(1.0)
"""


def test_each_rank_measures_its_own_gpu_and_rank_0_the_node(
    settings: Settings, tmp_path: Path
) -> None:
    script = tmp_path / "detect.py"
    script.write_text(DETECT_SCRIPT)
    procs = []
    for rank in (0, 1):
        env = {
            **os.environ,
            "CARBON_DATABASE_URL": settings.resolved_database_url,
            "CARBON_SIMULATE_GPUS": "2",
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "LOCAL_WORLD_SIZE": "2",
            "TORCHELASTIC_RUN_ID": "elastic-7",
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script)], env=env, stderr=subprocess.PIPE, text=True
            )
        )
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err

    store = open_store(settings.resolved_database_url)
    with store.session() as session:
        (run,) = session.scalars(select(Run))
        devices = sorted(session.scalars(select(Device)), key=lambda d: (d.rank, d.component))
        summary = run_summary(run)
    gpus = [(d.rank, d.index, d.uuid) for d in devices if d.component == "gpu"]
    assert [(rank, index) for rank, index, _ in gpus] == [(0, 0), (1, 1)]
    assert len({uuid for *_, uuid in gpus}) == 2
    assert {d.rank for d in devices if d.component in ("cpu", "ram")} == {0}
    assert summary["simulated"] is True
    assert summary["hardware"]["gpu_count"] == 2
    assert summary["tags"]["job_id"] == "elastic-7"
    assert summary["energy_method"]["gpu"] == "nvml_counter"
    assert summary["energy_by_component_j"]["gpu"] > 0
