"""Joules per FLOP, achieved FLOP/s and MFU, against PaLM's published utilisation."""

from __future__ import annotations

import math

import pytest

from carbon.accounting.efficiency import (
    achieved_flops_per_s,
    flops_per_joule,
    joules_per_flop,
    mfu,
)

# PaLM (Chowdhery et al. 2022), appendix B: 238.3K tokens/s on 6144 TPU v4 chips of
# 275 TFLOP/s peak; "model FLOPs utilization is 45.7% without self-attention
# ((238.3x6x540)/(275x6144)) or 46.2% with it".
PALM_TOKENS_PER_S = 238.3e3
TPU_V4_PEAK_FLOPS_PER_S = 275e12
PALM_CHIPS = 6144
# 6 N + 12 L H Q T with N = 540.35e9, L = 118, H = 48, Q = 256, T = 2048 (hand sum).
PALM_FLOPS_PER_TOKEN = 3_277_734_806_784


def test_mfu_reproduces_palm_with_attention() -> None:
    flops = PALM_TOKENS_PER_S * PALM_FLOPS_PER_TOKEN * 10  # ten seconds of training
    utilisation = mfu(flops, 10.0, TPU_V4_PEAK_FLOPS_PER_S, PALM_CHIPS)
    assert utilisation is not None
    # 238.3e3 x 3,277,734,806,784 / (275e12 x 6144) = 0.46229 -> 46.2 %
    assert utilisation == pytest.approx(0.462289, abs=1e-6)
    assert round(utilisation * 100, 1) == 46.2


def test_mfu_reproduces_palm_without_attention() -> None:
    flops = PALM_TOKENS_PER_S * 6 * 540e9
    utilisation = mfu(flops, 1.0, TPU_V4_PEAK_FLOPS_PER_S, PALM_CHIPS)
    assert utilisation is not None
    # 238.3e3 x 3.24e12 / 1.6896e18 = 0.45697 -> 45.7 %
    assert round(utilisation * 100, 1) == 45.7


def test_mfu_on_one_h100() -> None:
    # Half the H100 SXM5 dense BF16 peak (989.4 TFLOP/s) for 2 s: 494.7e12 x 2 FLOPs.
    assert mfu(989.4e12, 2.0, 989.4e12, 1) == pytest.approx(0.5)


def test_mfu_above_one_is_returned_as_computed() -> None:
    # A sparse or wrong-precision peak can make it exceed 1; it is not clamped.
    assert mfu(4e12, 1.0, 1e12, 2) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("flops", "duration_s", "peak", "count"),
    [
        (None, 1.0, 1e12, 1),
        (1e12, None, 1e12, 1),
        (1e12, 1.0, None, 1),
        (1e12, 1.0, 1e12, None),
        (1e12, 1.0, 1e12, 0),
        (1e12, 0.0, 1e12, 1),
    ],
)
def test_mfu_unknown(
    flops: float | None, duration_s: float | None, peak: float | None, count: int | None
) -> None:
    assert mfu(flops, duration_s, peak, count) is None


def test_mfu_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="peak_flops_per_device"):
        mfu(1e12, 1.0, 0.0, 1)
    with pytest.raises(ValueError, match="device_count"):
        mfu(1e12, 1.0, 1e12, -1)
    with pytest.raises(ValueError, match="duration_s"):
        mfu(1e12, -1.0, 1e12, 1)
    with pytest.raises(ValueError, match="flops"):
        mfu(math.nan, 1.0, 1e12, 1)
    with pytest.raises(TypeError, match="device_count"):
        mfu(1e12, 1.0, 1e12, True)
    with pytest.raises(TypeError, match="device_count"):
        mfu(1e12, 1.0, 1e12, 1.5)  # type: ignore[arg-type]


def test_joules_per_flop() -> None:
    # 1 kJ for 1 PFLOP: 1e3 / 1e15 = 1e-12 J per FLOP (1 pJ).
    assert joules_per_flop(1_000.0, 1e15) == pytest.approx(1e-12)
    assert flops_per_joule(1_000.0, 1e15) == pytest.approx(1e12)


def test_joules_per_flop_unknown() -> None:
    assert joules_per_flop(None, 1e15) is None
    assert joules_per_flop(1_000.0, None) is None
    assert joules_per_flop(1_000.0, 0) is None
    assert joules_per_flop(0.0, 1e15) == 0.0


def test_flops_per_joule_unknown() -> None:
    assert flops_per_joule(None, 1e15) is None
    assert flops_per_joule(1_000.0, None) is None
    assert flops_per_joule(0.0, 1e15) is None
    assert flops_per_joule(1_000.0, 0) == 0.0


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_energy_and_flops_reject_bad_values(bad: float) -> None:
    with pytest.raises(ValueError, match="energy_j"):
        joules_per_flop(bad, 1e15)
    with pytest.raises(ValueError, match="flops"):
        flops_per_joule(1_000.0, bad)


def test_achieved_flops_per_s() -> None:
    # 3.6e15 FLOPs in 10 s: 3.6e14 FLOP/s.
    assert achieved_flops_per_s(3.6e15, 10.0) == pytest.approx(3.6e14)
    assert achieved_flops_per_s(3.6e15, 0.0) is None
    assert achieved_flops_per_s(None, 10.0) is None
    assert achieved_flops_per_s(3.6e15, None) is None
    with pytest.raises(ValueError, match="duration_s"):
        achieved_flops_per_s(1.0, -2.0)
