"""Precision and quantization read from models, without the quantization libraries."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from carbon.accounting.compression import compression_kinds, compression_label, is_baseline
from carbon.integrations.model_facts import model_facts

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch import nn  # noqa: E402
from transformers import BitsAndBytesConfig, GPT2Config, GPT2LMHeadModel  # noqa: E402


def gpt2() -> GPT2LMHeadModel:
    config = GPT2Config(
        n_layer=2, n_embd=32, n_head=2, vocab_size=128, n_positions=16,
        bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    return GPT2LMHeadModel(config)


def test_float32_model_is_fp32_and_a_baseline() -> None:
    model = gpt2()
    facts = model_facts(model)
    assert (facts.dtype, facts.precision, facts.quantization, facts.bits) == (
        "float32", "fp32", None, None,
    )  # fmt: skip
    assert facts.parameters == model.num_parameters()
    assert facts.trainable_parameters == sum(p.numel() for p in model.parameters())
    assert facts.compression() == {"precision": "fp32"}
    assert is_baseline(facts.compression())


def test_half_weights_and_autocast() -> None:
    assert model_facts(gpt2().to(torch.bfloat16)).compression() == {"precision": "bf16"}
    assert model_facts(gpt2().half()).precision == "fp16"
    mixed = model_facts(gpt2(), autocast="torch.bfloat16")
    assert mixed.compression() == {"precision": "bf16", "weights_dtype": "fp32", "autocast": "bf16"}
    with pytest.raises(ValueError, match="not a precision carbon knows"):
        model_facts(gpt2(), autocast="bf17")


def test_tf32_matmuls_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        assert model_facts(nn.Linear(4, 4)).precision == "tf32"
    finally:
        torch.set_float32_matmul_precision(previous)
    assert model_facts(nn.Linear(4, 4)).precision == "fp32"


def test_bitsandbytes_4bit_from_the_config_computes_in_its_compute_dtype() -> None:
    model = gpt2()
    model.config.quantization_config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=torch.bfloat16,
        bnb_4bit_use_double_quant=True,
    )
    facts = model_facts(model)
    assert facts.found_in == "config"
    assert facts.compression() == {
        "precision": "bf16",
        "quantization": "bitsandbytes",
        "bits": 4,
        "bnb_4bit_quant_type": "nf4",
        "bnb_4bit_use_double_quant": True,
        "bnb_4bit_compute_dtype": "bfloat16",
        "weights_dtype": "fp32",
    }
    assert compression_label(facts.compression()) == "4-bit bitsandbytes"
    assert compression_kinds(facts.compression()) == {"quantization"}
    # Under a trainer's autocast the compute dtype is the autocast's.
    assert model_facts(model, autocast="fp16").precision == "fp16"


def test_bitsandbytes_8bit_from_a_config_dict_runs_int8() -> None:
    model = gpt2().half()
    model.config.quantization_config = BitsAndBytesConfig(load_in_8bit=True).to_dict()
    facts = model_facts(model)
    assert facts.compression() == {
        "precision": "int8",
        "quantization": "bitsandbytes",
        "bits": 8,
        "llm_int8_threshold": 6.0,
        "weights_dtype": "fp16",
    }


def test_gptq_config_keeps_bits_and_group_size_and_computes_in_the_weights_dtype() -> None:
    model = gpt2().half()
    model.config.quantization_config = {"quant_method": "gptq", "bits": 4, "group_size": 128}
    facts = model_facts(model)
    assert (facts.quantization, facts.bits, facts.precision) == ("gptq", 4, "fp16")
    assert facts.settings == {"group_size": 128}
    assert compression_label(facts.compression()) == "4-bit gptq"


class _Params4bit(nn.Parameter):
    """Stands in for bitsandbytes' packed 4-bit weights."""

    quant_type = "fp4"


_Params4bit.__module__ = "bitsandbytes.nn.modules"


class Linear4bit(nn.Linear):
    """A layer named and placed like bitsandbytes' 4-bit linear layer."""

    def __init__(self) -> None:
        super().__init__(8, 8)
        self.compute_dtype = torch.float16
        packed = torch.zeros(32, 1, dtype=torch.uint8)
        self.weight = _Params4bit(packed, requires_grad=False)


Linear4bit.__module__ = "bitsandbytes.nn.modules"


def test_bitsandbytes_layers_without_a_config() -> None:
    facts = model_facts(nn.Sequential(Linear4bit(), nn.ReLU()))
    assert facts.found_in == "modules"
    assert (facts.quantization, facts.bits, facts.precision) == ("bitsandbytes", 4, "fp16")
    assert facts.settings == {"bnb_4bit_quant_type": "fp4", "bnb_4bit_compute_dtype": "float16"}


def test_torch_dynamic_quantization_runs_int8() -> None:
    from carbon.demo.compression import quantize_dynamic_int8

    quantized = quantize_dynamic_int8(nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4)))
    facts = model_facts(quantized)
    assert facts.dtype == "qint8"
    assert facts.compression() == {"precision": "int8", "quantization": "dynamic", "bits": 8}
    assert compression_label(facts.compression()) == "8-bit dynamic"


def test_float8_weights_are_fp8() -> None:
    facts = model_facts(nn.Linear(8, 8, bias=False).to(torch.float8_e4m3fn))
    assert facts.dtype == "float8_e4m3fn"
    assert (facts.quantization, facts.bits, facts.precision, facts.found_in) == (
        "fp8", 8, "fp8", "weights",
    )  # fmt: skip


def test_torchao_weight_subclass() -> None:
    class AffineQuantizedTensor(torch.Tensor):
        pass

    AffineQuantizedTensor.__module__ = "torchao.dtypes.affine_quantized_tensor"
    layer = nn.Linear(8, 8).to(torch.bfloat16)
    weight = layer.weight.detach().as_subclass(AffineQuantizedTensor)
    layer.weight = nn.Parameter(weight, requires_grad=False)
    facts = model_facts(layer)
    assert (facts.quantization, facts.precision) == ("torchao", "bf16")
    assert facts.settings == {"weight_tensor": "AffineQuantizedTensor"}


def test_peft_adapter_and_trainable_parameters() -> None:
    model: Any = gpt2()
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name.startswith("transformer.h.0.")
    model.peft_config = {"default": SimpleNamespace(peft_type="LORA")}
    facts = model_facts(model)
    assert facts.adapter == "LORA"
    assert 0 < facts.trainable_parameters < facts.parameters
