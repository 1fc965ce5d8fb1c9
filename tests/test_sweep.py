"""A batch-size sweep in a few lines: the same model, one inference run per batch size."""

import time

import pytest

import carbon
from carbon.settings import Settings
from carbon.sources.base import Component
from carbon.store import open_store
from carbon.store.queries import list_runs
from carbon.store.summary import run_summary
from carbon.testing import ConstantPowerSource


def test_batch_size_sweep_gives_comparable_runs(settings: Settings) -> None:
    requests = 24
    for batch_size in (1, 8, 24):  # 1 = streaming one by one
        source = ConstantPowerSource(250.0, component=Component.GPU, name="NVIDIA L4")
        with carbon.track(
            project="sweep",
            name=f"bs{batch_size}",
            kind="inference",
            compression={"precision": "fp16", "batch_size": batch_size},
            settings=settings,
            sources=[source],
        ) as run:
            for _ in range(requests // batch_size):
                time.sleep(0.01 + 0.002 * batch_size)  # a batch takes longer, a sample less
                run.step(samples=batch_size, tokens=32 * batch_size)

    store = open_store(settings.resolved_database_url)
    with store.session() as session:
        runs = {r.name: run_summary(r) for r in list_runs(session, project="sweep")}
    assert set(runs) == {"bs1", "bs8", "bs24"}
    for name, summary in runs.items():
        assert summary["samples"] == requests
        assert summary["j_per_inference"] == pytest.approx(summary["energy_j"] / requests)
        assert summary["j_per_token"] == pytest.approx(summary["energy_j"] / (32 * requests))
        assert summary["j_per_request"] == pytest.approx(
            summary["energy_j"] / (requests // summary["compression"]["batch_size"])
        ), name
    # Batching amortises the per-batch time, so energy per inference falls with batch size.
    assert runs["bs1"]["j_per_inference"] > runs["bs8"]["j_per_inference"]
    assert runs["bs8"]["j_per_inference"] > runs["bs24"]["j_per_inference"]
