"""Counted FLOPs under torch's FlopCounterMode, and the precision of a model's weights."""

from __future__ import annotations

import importlib.util
import warnings

import pytest

pytest.importorskip("torch")

import torch
from torch import nn

from carbon._extras import MissingExtraError
from carbon.accounting import flop_counter
from carbon.accounting.flop_counter import (
    CountedFlops,
    FlopCountError,
    count_flops,
    dtype_precision,
)

# Linear(in=64, out=32) on a batch of 16: the weight product is (16 x 64) @ (64 x 32),
# 2 x 16 x 64 x 32 = 65,536 FLOPs. The counter counts aten.addmm as that product only;
# the 16 x 32 bias additions count 0.
LINEAR_FORWARD = 2 * 16 * 64 * 32


def _linear() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(64, 32)


def test_linear_forward() -> None:
    layer = _linear()
    counted = count_flops(layer, torch.randn(16, 64))
    assert isinstance(counted, CountedFlops)
    assert counted.flops == 65_536 == LINEAR_FORWARD
    assert dict(counted.by_operator) == {"aten.addmm": 65_536}
    assert tuple(counted.result.shape) == (16, 32)


def test_bias_add_is_not_counted() -> None:
    without_bias = nn.Linear(64, 32, bias=False)
    counted = count_flops(without_bias, torch.randn(16, 64))
    assert counted.flops == 65_536
    assert dict(counted.by_operator) == {"aten.mm": 65_536}


def test_forward_and_backward_with_input_gradient_is_three_forwards() -> None:
    # Backward of y = x W^T + b: grad_W = grad_y^T x, (32 x 16) @ (16 x 64), 65,536; and
    # grad_x = grad_y W, (16 x 32) @ (32 x 64), 65,536; grad_b is a sum (0). With the
    # input requiring a gradient the total is 3 x 65,536 = 196,608.
    layer = _linear()
    x = torch.randn(16, 64, requires_grad=True)
    counted = count_flops(lambda: layer(x).sum().backward())
    assert counted.flops == 196_608 == 3 * LINEAR_FORWARD
    assert dict(counted.by_operator) == {"aten.addmm": 65_536, "aten.mm": 131_072}


def test_forward_and_backward_without_input_gradient_is_two_forwards() -> None:
    # A first layer's input (data) needs no gradient: only grad_W is computed, so the
    # total is 65,536 + 65,536 = 131,072; the "3 x forward" rule holds for inner layers.
    layer = _linear()
    x = torch.randn(16, 64)
    counted = count_flops(lambda: layer(x).sum().backward())
    assert counted.flops == 131_072 == 2 * LINEAR_FORWARD


def test_inference_mode_counts_like_no_grad() -> None:
    # torch 2.13 counts under inference_mode (older releases returned 0, pytorch #126268).
    layer = _linear()
    x = torch.randn(16, 64)
    with torch.no_grad():
        assert count_flops(layer, x).flops == 65_536
    with torch.inference_mode():
        assert count_flops(layer, x).flops == 65_536

    def inner() -> object:
        with torch.inference_mode():
            return layer(x)

    assert count_flops(inner).flops == 65_536


def test_old_torch_under_inference_mode_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flop_counter, "_counts_inside_inference_mode", lambda: False)
    layer = _linear()
    with torch.inference_mode(), pytest.raises(FlopCountError, match="no_grad"):
        count_flops(layer, torch.randn(16, 64))
    assert count_flops(layer, torch.randn(16, 64)).flops == 65_536


def test_cpu_attention_is_counted() -> None:
    # Batch 2, 4 heads, 16 positions, head size 8: one product over all heads is
    # 2 x 2 x 4 x 16 x 16 x 8 = 32,768. Forward: Q K^T and P V, 65,536. Backward: the
    # scores again plus the gradients of P, V, Q and K, five products, 163,840.
    q = torch.randn(2, 4, 16, 8, requires_grad=True)
    attention = torch.nn.functional.scaled_dot_product_attention
    with torch.no_grad():
        assert count_flops(attention, q, q, q).flops == 65_536
    with torch.inference_mode():
        detached = q.detach()
        assert count_flops(attention, detached, detached, detached).flops == 65_536
    counted = count_flops(lambda: attention(q, q, q).sum().backward())  # type: ignore[no-untyped-call]
    assert counted.flops == 65_536 + 163_840


def test_result_passes_through_and_elementwise_counts_zero() -> None:
    counted = count_flops(lambda a, b: a + b, torch.ones(3), b=torch.ones(3))
    assert counted.flops == 0
    assert dict(counted.by_operator) == {}
    assert counted.result.tolist() == [2.0, 2.0, 2.0]


def test_missing_torch_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> object:
        return None if name == "torch" else real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(MissingExtraError, match=r"carbon-ledger\[torch\]"):
        count_flops(lambda: None)
    with pytest.raises(MissingExtraError):
        dtype_precision(torch.ones(1))


@pytest.mark.parametrize(
    ("dtype", "key"),
    [
        (torch.float32, "fp32"),
        (torch.float16, "fp16"),
        (torch.bfloat16, "bf16"),
        (torch.float64, "fp64"),
        (torch.float8_e4m3fn, "fp8"),
        (torch.int8, "int8"),
        (torch.int64, None),
    ],
)
def test_tensor_precision(dtype: torch.dtype, key: str | None) -> None:
    assert dtype_precision(torch.zeros(2).to(dtype)) == key


def test_module_precision() -> None:
    assert dtype_precision(_linear()) == "fp32"
    assert dtype_precision(_linear().to(torch.bfloat16)) == "bf16"
    assert dtype_precision(nn.ReLU()) is None


def test_module_precision_is_the_majority_of_weights() -> None:
    # 64 x 64 + 64 = 4,160 bf16 elements against 2 x 64 = 128 fp32 LayerNorm elements.
    model = nn.Sequential(nn.Linear(64, 64).to(torch.bfloat16), nn.LayerNorm(64))
    assert dtype_precision(model) == "bf16"


def _quantize_dynamic(model: nn.Module) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch announces the move of this API to torchao
        quantized: nn.Module = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
            model, {nn.Linear}, dtype=torch.qint8
        )
    return quantized


def test_dynamically_quantized_model_is_int8() -> None:
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    quantized = _quantize_dynamic(model)
    assert list(quantized.parameters()) == []
    assert dtype_precision(quantized) == "int8"
