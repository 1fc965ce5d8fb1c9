"""Derived figures of a stored run: J/FLOP, MFU against the catalog, energy per unit of work."""

import time

import pytest
import torch

import carbon
from carbon.settings import Settings
from carbon.sources.base import Component
from carbon.testing import ConstantPowerSource

H100_BF16_DENSE_FLOPS = 989.4e12  # NVIDIA H100 whitepaper, SXM5 dense BF16 tensor rate


def test_mfu_uses_the_catalog_peak_for_the_gpus_and_precision(settings: Settings) -> None:
    gpus = ConstantPowerSource(
        500.0, component=Component.GPU, name="NVIDIA H100 80GB HBM3", count=2
    )
    with carbon.track(
        settings=settings, sources=[gpus], compression={"precision": "bfloat16"}
    ) as run:
        for _ in range(4):
            run.step(tokens=1000, flops=2.0e14)
        time.sleep(0.5)
    s = run.summary()
    assert s["precision"] == "bf16"
    assert s["peak_flops_per_s"] == pytest.approx(H100_BF16_DENSE_FLOPS)
    achieved = 8.0e14 / s["duration_s"]
    assert s["achieved_flops_per_s"] == pytest.approx(achieved)
    assert s["mfu"] == pytest.approx(achieved / (2 * H100_BF16_DENSE_FLOPS))
    assert s["j_per_flop"] == pytest.approx(1000.0 * s["duration_s"] / 8.0e14, rel=0.01)
    assert s["flop_per_j"] == pytest.approx(1 / s["j_per_flop"])
    assert s["j_per_flop_by_component"]["gpu"] == pytest.approx(s["j_per_flop"])
    assert s["j_per_flop_by_component"]["cpu"] is None
    assert s["j_per_token"] == pytest.approx(s["energy_j"] / 4000)
    assert s["j_per_inference"] is None  # a training run


def test_unknown_peak_or_precision_gives_null_mfu(settings: Settings) -> None:
    cpu = ConstantPowerSource(50.0, component=Component.CPU)
    odd_gpu = ConstantPowerSource(70.0, component=Component.GPU, name="NVIDIA GeForce RTX 4090")
    h200 = ConstantPowerSource(700.0, component=Component.GPU, name="NVIDIA H200")
    for sources, compression in (
        ([cpu], {"precision": "fp32"}),
        ([odd_gpu], {"precision": "fp16"}),
        ([h200], {}),
        ([h200], {"precision": "fp4x"}),
    ):
        with carbon.track(settings=settings, sources=sources, compression=compression) as run:
            run.step(flops=1e12)
            time.sleep(0.1)
        s = run.summary()
        assert s["mfu"] is None, (sources, compression)
        assert s["j_per_flop"] is not None
    assert any("'fp4x' is not one carbon knows" in w for w in s["warnings"])


def test_inference_figures_per_inference_and_request(settings: Settings) -> None:
    with carbon.track(
        settings=settings, sources=[ConstantPowerSource(30.0)], kind="inference"
    ) as run:
        for _ in range(5):
            run.step(samples=8, tokens=256)
        time.sleep(0.2)
    s = run.summary()
    assert s["j_per_inference"] == pytest.approx(s["energy_j"] / 40)
    assert s["j_per_request"] == pytest.approx(s["energy_j"] / 5)
    assert s["j_per_token"] == pytest.approx(s["energy_j"] / 1280)


def test_counted_flops_scale_by_the_steps_taken(settings: Settings) -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(64, 32)
    batch = torch.randn(16, 64)
    with carbon.track(settings=settings, sources=[ConstantPowerSource(30.0)]) as run:
        run.step(samples=16)  # a step before counting is counted too
        out = run.count_flops(model, batch)
        run.step(samples=16)
        for _ in range(8):
            model(batch)
            run.step(samples=16)
        time.sleep(0.1)
    assert out.shape == (16, 32)
    s = run.summary()
    # addmm of a (16x64) by (64x32): 2*16*64*32 FLOPs per forward; ten steps in all.
    assert s["flops"] == 10 * 2 * 16 * 64 * 32
    assert s["flops_method"] == "counted"
    assert s["precision"] == "fp32"


def test_embodied_is_amortised_apart_from_co2e(settings: Settings) -> None:
    a100s = ConstantPowerSource(
        300.0, component=Component.GPU, name="NVIDIA A100-SXM4-80GB", count=2
    )
    with carbon.track(settings=settings, sources=[a100s]) as run:
        time.sleep(0.2)
    s = run.summary()
    # 150 kgCO2e per A100 over a 6-year life (Luccioni et al. 2023), two GPUs.
    lifetime_s = 6 * 8760 * 3600
    assert s["embodied_g"] == pytest.approx(2 * 150_000.0 * s["duration_s"] / lifetime_s)
    assert "Luccioni" in s["embodied_source"]
    assert s["co2e_g"] == pytest.approx(s["energy_j"] / 3.6e6 * s["intensity_g_per_kwh"])

    h100 = ConstantPowerSource(700.0, component=Component.GPU, name="NVIDIA H100 80GB HBM3")
    with carbon.track(settings=settings, sources=[h100]) as run:
        time.sleep(0.1)
    s = run.summary()
    assert s["embodied_g"] is None
    assert "NVIDIA H100 80GB HBM3" in s["embodied_source"]
