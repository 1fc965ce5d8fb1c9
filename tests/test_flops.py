"""Analytic FLOP counts against published figures and hand arithmetic."""

from __future__ import annotations

import math

import pytest

from carbon.accounting.flops import (
    linear_layer_flops,
    macs_to_flops,
    matmul_flops,
    transformer_inference_flops,
    transformer_inference_flops_per_token,
    transformer_training_flops,
    transformer_training_flops_per_token,
)

# PaLM 540B (Chowdhery et al. 2022, table 1 and section 4): 118 layers, 48 heads,
# head size 256, sequence length 2048, 540.35B parameters, 780B training tokens.
PALM = {"n_layers": 118, "n_heads": 48, "head_dim": 256, "seq_len": 2048}
PALM_PARAMS = 540.35e9


def test_gpt3_175b_training_compute() -> None:
    # Brown et al. 2020, table D.1: GPT-3 175B has 174,600M parameters, trained on 300B
    # tokens for 3.14E+23 FLOPs (6 N D; attention ignored there).
    # 6 x 174.6e9 x 300e9 = 3.1428e23.
    flops = transformer_training_flops(174.6e9, 300e9)
    assert flops == pytest.approx(3.1428e23, rel=1e-12)
    assert round(flops / 1e23, 2) == 3.14


def test_palm_540b_training_compute_without_attention() -> None:
    # 6 x 540e9 x 780e9 = 2.5272e24 (2527.2 ZFLOPs).
    assert transformer_training_flops(540e9, 780e9) == pytest.approx(2.5272e24, rel=1e-12)


def test_palm_540b_training_flops_per_token_with_attention() -> None:
    # 6 N        = 6 x 540.35e9                 = 3,242,100,000,000
    # 12 L H Q T = 12 x 118 x 48 x 256 x 2048   =    35,634,806,784
    # sum                                       = 3,277,734,806,784
    per_token = transformer_training_flops_per_token(PALM_PARAMS, **PALM)
    assert per_token == pytest.approx(3_277_734_806_784, rel=1e-12)


def test_palm_540b_training_compute_with_attention() -> None:
    # 3,277,734,806,784 FLOPs/token x 780e9 tokens = 2.55663314929152e24, about 2.56e24.
    flops = transformer_training_flops(PALM_PARAMS, 780e9, **PALM)
    assert flops == pytest.approx(2.55663314929152e24, rel=1e-12)
    assert round(flops / 1e24, 2) == 2.56


def test_inference_is_a_third_of_training() -> None:
    # 2 N       = 2 x 540.35e9               = 1,080,700,000,000
    # 4 L H Q T = 4 x 118 x 48 x 256 x 2048  =    11,878,268,928
    # sum                                    = 1,092,578,268,928 = 3,277,734,806,784 / 3
    per_token = transformer_inference_flops_per_token(PALM_PARAMS, **PALM)
    assert per_token == pytest.approx(1_092_578_268_928, rel=1e-12)
    assert transformer_inference_flops(PALM_PARAMS, 1000, **PALM) == pytest.approx(
        1_092_578_268_928_000, rel=1e-12
    )


def test_inference_without_shape_is_2n_per_token() -> None:
    # A 7B model generating 1,000 tokens: 2 x 7e9 x 1000 = 1.4e13.
    assert transformer_inference_flops(7e9, 1000) == pytest.approx(1.4e13, rel=1e-12)


def test_small_model_exact() -> None:
    # N = 1000, L=2, H=4, Q=8, T=16: 6 x 1000 + 12 x 2 x 4 x 8 x 16 = 6000 + 12288 = 18288.
    shape = {"n_layers": 2, "n_heads": 4, "head_dim": 8, "seq_len": 16}
    assert transformer_training_flops_per_token(1000, **shape) == 18288
    assert transformer_training_flops(1000, 10, **shape) == 182880
    # Forward: 2 x 1000 + 4 x 1024 = 6096 = 18288 / 3.
    assert transformer_inference_flops_per_token(1000, **shape) == 6096


def test_matmul_flops() -> None:
    # (16 x 64) @ (64 x 32): 2 x 16 x 32 x 64 = 65,536.
    assert matmul_flops(16, 32, 64) == 65_536
    assert matmul_flops(16, 32, 64, count=3) == 196_608


def test_linear_layer_flops() -> None:
    # Linear(64 -> 32) on 16 rows: 2 x 16 x 64 x 32 = 65,536; the bias adds 16 x 32 = 512.
    assert linear_layer_flops(16, 64, 32) == 65_536
    assert linear_layer_flops(16, 64, 32, count_bias=True) == 66_048


def test_macs_to_flops() -> None:
    # A tool reporting 4.1 GMac means 8.2 GFLOPs.
    assert macs_to_flops(4.1e9) == pytest.approx(8.2e9)
    assert macs_to_flops(0) == 0


@pytest.mark.parametrize("bad", [0, -1, -1e9, math.nan, math.inf])
def test_training_rejects_bad_params_and_tokens(bad: float) -> None:
    with pytest.raises(ValueError, match="n_params"):
        transformer_training_flops(bad, 1e9)
    with pytest.raises(ValueError, match="n_tokens"):
        transformer_training_flops(1e9, bad)
    with pytest.raises(ValueError, match="n_tokens"):
        transformer_inference_flops(1e9, bad)


@pytest.mark.parametrize("name", ["n_layers", "n_heads", "head_dim", "seq_len"])
@pytest.mark.parametrize("bad", [0, -2])
def test_shape_rejects_non_positive(name: str, bad: int) -> None:
    shape = {**PALM, name: bad}
    with pytest.raises(ValueError, match=name):
        transformer_training_flops_per_token(1e9, **shape)


def test_partial_shape_names_what_is_missing() -> None:
    with pytest.raises(ValueError, match="head_dim, seq_len"):
        transformer_training_flops(1e9, 1e9, n_layers=2, n_heads=4)


def test_non_numbers_are_type_errors() -> None:
    with pytest.raises(TypeError, match="n_params"):
        transformer_training_flops(True, 1e9)
    with pytest.raises(TypeError, match="n_layers"):
        transformer_training_flops_per_token(1e9, n_layers=2.0, n_heads=1, head_dim=1, seq_len=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(("m", "n", "k", "name"), [(0, 1, 1, "m"), (1, -1, 1, "n"), (1, 1, 0, "k")])
def test_matmul_rejects_non_positive(m: int, n: int, k: int, name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name} "):
        matmul_flops(m, n, k)
    with pytest.raises(ValueError, match="count"):
        matmul_flops(1, 1, 1, count=0)


def test_macs_rejects_negative() -> None:
    with pytest.raises(ValueError, match="macs"):
        macs_to_flops(-1)
