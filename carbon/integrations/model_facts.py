"""Precision and quantization read from a model, for a run's ``compression`` settings.

A callback knows the model it trains; :func:`model_facts` reads from it what decides the
energy of its arithmetic, so the user need not write ``compression={...}`` by hand:

- the **dtype** of the weights: the one that holds the most weight elements (packed
  weights of torch's quantized modules included);
- **quantization**, from the first of these that says something:

  1. a Hugging Face ``config.quantization_config`` (bitsandbytes, GPTQ, AWQ, torchao,
     fp8, HQQ, ...; a config object or its dict): its ``quant_method``, the width in bits
     and the settings that change the arithmetic (``bnb_4bit_quant_type``, the compute
     dtype, the group size);
  2. the modules: bitsandbytes ``Linear4bit`` / ``Linear8bitLt``, torch's
     ``torch.ao.nn.quantized`` modules (``dynamic`` or ``static``) and QAT modules
     (``qat``), GPTQ ``QuantLinear`` and AWQ ``WQLinear`` layers, torchao tensor
     subclasses as weights;
  3. weights stored as float8 (``fp8``);

- the **precision** the arithmetic runs at, a key of the hardware catalog (``fp32``,
  ``tf32``, ``bf16``, ``fp16``, ``fp8``, ``int8``) for MFU: int8 for int8 kernels
  (LLM.int8, torch's quantized modules), fp8 for float8 weights, else the compute dtype of
  a weight-only scheme (bnb 4-bit's ``bnb_4bit_compute_dtype``), else the autocast dtype the
  caller names (a trainer's ``bf16=True``), else the weights' dtype; float32 becomes
  ``tf32`` when torch lets CUDA matmuls use TF32 (``torch.set_float32_matmul_precision``).

Reading a model never imports transformers, bitsandbytes or torchao: classes are recognised
by their module's name. torch is imported, as the model is a torch module.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from carbon.accounting.catalog import normalize_precision

if TYPE_CHECKING:
    import torch

__all__ = ["ModelFacts", "model_facts"]

_INT8_KERNELS = frozenset({"dynamic", "static"})
"""torch.ao quantization methods whose matmuls run on int8."""
_WEIGHT_ONLY = frozenset({"bitsandbytes-4bit", "gptq", "awq", "hqq", "quanto", "aqlm", "eetq"})
"""Schemes that store narrow weights but multiply in a floating-point compute dtype."""
_CONFIG_SETTINGS = (
    "bnb_4bit_quant_type",
    "bnb_4bit_use_double_quant",
    "bnb_4bit_compute_dtype",
    "llm_int8_threshold",
    "group_size",
    "desc_act",
    "sym",
    "version",
    "quant_type",
    "weights",
    "activation_scheme",
    "weight_block_size",
)
"""Keys of a quantization config that change the arithmetic, kept in :attr:`ModelFacts.settings`."""


@dataclass(frozen=True)
class ModelFacts:
    """What a model's weights say about the arithmetic a run does.

    Attributes:
        dtype: The weights' dtype as torch names it (``"float32"``, ``"bfloat16"``,
            ``"qint8"``, ``"uint8"`` for packed 4-bit weights), or ``None`` without weights.
        precision: The catalog precision of the arithmetic (for MFU), or ``None`` when no
            catalog precision applies.
        quantization: The quantization method (``"bitsandbytes"``, ``"gptq"``, ``"awq"``,
            ``"torchao"``, ``"dynamic"``, ``"static"``, ``"qat"``, ``"fp8"``, ...), or
            ``None``.
        bits: Width of the quantized weights, where known.
        settings: The scheme's settings that change the arithmetic (``bnb_4bit_quant_type``,
            ``group_size``, ...), as JSON-ready values.
        found_in: Where the quantization was found: ``"config"`` (the model's
            ``quantization_config``), ``"modules"``, ``"weights"``, or ``None``.
        autocast: The autocast dtype the caller named (``"bf16"``), or ``None``.
        parameters: Number of parameters (4-bit packed ones counted unpacked, as
            transformers' ``num_parameters`` does, when the model has it).
        trainable_parameters: Parameters that require gradients.
        adapter: The PEFT adapter type (``"LORA"``) of a PEFT model, else ``None``.
    """

    dtype: str | None
    precision: str | None
    quantization: str | None = None
    bits: int | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    found_in: str | None = None
    autocast: str | None = None
    parameters: int = 0
    trainable_parameters: int = 0
    adapter: str | None = None

    def compression(self) -> dict[str, Any]:
        """The facts as a run's ``compression`` settings (``carbon.track(compression=...)``).

        ``precision`` (when known), ``quantization`` and ``bits`` (when quantized), the
        scheme's settings, ``weights_dtype`` when the weights are stored in another format
        than the arithmetic runs at, and ``autocast`` when the caller named one.
        """
        settings: dict[str, Any] = {}
        if self.precision is not None:
            settings["precision"] = self.precision
        if self.quantization is not None:
            settings["quantization"] = self.quantization
        if self.bits is not None:
            settings["bits"] = self.bits
        settings.update(self.settings)
        stored = None if self.dtype is None else normalize_precision(self.dtype) or self.dtype
        if stored is not None and stored != self.precision:
            settings["weights_dtype"] = stored
        if self.autocast is not None:
            settings["autocast"] = self.autocast
        return settings


def model_facts(model: torch.nn.Module, *, autocast: str | None = None) -> ModelFacts:
    """Read a model's precision and quantization.

    Args:
        model: A torch module (a Hugging Face model, a Lightning module, a PEFT model...).
        autocast: The dtype mixed precision computes in, when the caller knows it
            (``"bf16"`` for a trainer with ``bf16=True``); any name
            :func:`carbon.accounting.catalog.normalize_precision` knows.

    Raises:
        ValueError: ``autocast`` names no precision carbon knows.
    """
    autocast_key = None
    if autocast is not None:
        autocast_key = normalize_precision(autocast)
        if autocast_key is None:
            raise ValueError(f"autocast {autocast!r} is not a precision carbon knows")
    dtype, subclass = _weights_dtype(model)
    quantization, bits, settings, found_in = _from_config(model)
    if quantization is None:
        quantization, bits, settings = _from_modules(model, subclass)
        found_in = "modules" if quantization is not None else None
    if quantization is None and dtype is not None and dtype.startswith("float8"):
        quantization, bits, found_in = "fp8", 8, "weights"
    total, trainable = _parameters(model)
    return ModelFacts(
        dtype=dtype,
        precision=_precision(dtype, quantization, bits, settings, autocast_key),
        quantization=quantization,
        bits=bits,
        settings=settings,
        found_in=found_in,
        autocast=autocast_key,
        parameters=total,
        trainable_parameters=trainable,
        adapter=_adapter(model),
    )


def _module_path(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _weights_dtype(model: torch.nn.Module) -> tuple[str | None, str | None]:
    """The dtype holding most weight elements, and a weight tensor subclass's module if any."""
    import torch

    elements: dict[str, int] = {}
    subclass = None
    tensors: list[Any] = list(model.parameters())
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if callable(weight) and type(module).__module__.startswith("torch.ao.nn.quantized"):
            packed = weight()
            if isinstance(packed, torch.Tensor):
                tensors.append(packed)
    for tensor in tensors:
        name = str(tensor.dtype).removeprefix("torch.")
        elements[name] = elements.get(name, 0) + tensor.numel()
        if subclass is None:
            for candidate in (tensor, getattr(tensor, "data", tensor)):
                kind = type(candidate).__module__
                if kind != "torch" and not kind.startswith("torch."):
                    subclass = _module_path(candidate)
                    break
    if not elements:
        return None, subclass
    return max(elements, key=lambda name: elements[name]), subclass


def _jsonable(value: Any) -> Any:
    """A config value as JSON: dtypes and enums as their names, containers as lists/dicts."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    enum_value = getattr(value, "value", None)
    if isinstance(enum_value, str | int):
        return enum_value
    text = str(value)
    return text.removeprefix("torch.")


def _config_dict(model: torch.nn.Module) -> dict[str, Any] | None:
    config = getattr(model, "config", None)
    quant = getattr(config, "quantization_config", None)
    if quant is None and isinstance(config, Mapping):
        quant = config.get("quantization_config")
    if quant is None:
        return None
    if isinstance(quant, Mapping):
        return dict(quant)
    to_dict = getattr(quant, "to_dict", None)
    if callable(to_dict):
        result = to_dict()
        if isinstance(result, Mapping):
            return dict(result)
    return {k: v for k, v in vars(quant).items() if not k.startswith("_")}


def _from_config(
    model: torch.nn.Module,
) -> tuple[str | None, int | None, dict[str, Any], str | None]:
    """Quantization from a Hugging Face ``quantization_config``."""
    config = _config_dict(model)
    if not config:
        return None, None, {}, None
    method = _jsonable(config.get("quant_method"))
    if not isinstance(method, str) or not method:
        return None, None, {}, None
    method = method.lower()
    bits = config.get("bits")
    if method == "bitsandbytes":
        if config.get("load_in_4bit") or config.get("_load_in_4bit"):
            bits = 4
        elif config.get("load_in_8bit") or config.get("_load_in_8bit"):
            bits = 8
    elif method in ("fp8", "fbgemm_fp8") and bits is None:
        bits = 8
    keep = set(_CONFIG_SETTINGS)
    if method == "bitsandbytes" and bits == 8:
        keep -= {"bnb_4bit_quant_type", "bnb_4bit_use_double_quant", "bnb_4bit_compute_dtype"}
    if method == "bitsandbytes" and bits == 4:
        keep.discard("llm_int8_threshold")
    settings = {
        key: _jsonable(config[key])
        for key in _CONFIG_SETTINGS
        if key in keep and config.get(key) is not None
    }
    if isinstance(bits, bool) or not isinstance(bits, int):
        bits = None
    return method, bits, settings, "config"


def _from_modules(
    model: torch.nn.Module, weight_subclass: str | None
) -> tuple[str | None, int | None, dict[str, Any]]:
    """Quantization recognised from the model's layers (no quantization config)."""
    for module in model.modules():
        path = _module_path(module)
        name = type(module).__name__
        if path.startswith("bitsandbytes."):
            if "4bit" in name or name in ("LinearNF4", "LinearFP4"):
                settings: dict[str, Any] = {}
                quant_type = getattr(getattr(module, "weight", None), "quant_type", None)
                if quant_type is not None:
                    settings["bnb_4bit_quant_type"] = _jsonable(quant_type)
                compute = getattr(module, "compute_dtype", None)
                if compute is not None:
                    settings["bnb_4bit_compute_dtype"] = _jsonable(compute)
                return "bitsandbytes", 4, settings
            if "8bit" in name:
                return "bitsandbytes", 8, {}
        if path.startswith(("torch.ao.nn.quantized.dynamic.", "torch.nn.quantized.dynamic.")):
            return "dynamic", _ao_bits(module), {}
        if path.startswith(("torch.ao.nn.quantized.", "torch.nn.quantized.")) and name not in (
            "LinearPackedParams",
            "Quantize",
            "DeQuantize",
        ):
            return "static", _ao_bits(module), {}
        if path.startswith(("torch.ao.nn.qat.", "torch.ao.nn.intrinsic.qat.")):
            return "qat", 8, {}
        if name.startswith("QuantLinear") and ("gptq" in path.lower() or hasattr(module, "bits")):
            bits = getattr(module, "bits", None)
            return "gptq", bits if isinstance(bits, int) else None, {}
        if name.startswith("WQLinear"):
            bits = getattr(module, "w_bit", None)
            return "awq", bits if isinstance(bits, int) else None, {}
    if weight_subclass is not None and weight_subclass.startswith("torchao."):
        return "torchao", None, {"weight_tensor": weight_subclass.rsplit(".", 1)[-1]}
    return None, None, {}


def _ao_bits(module: torch.nn.Module) -> int | None:
    weight = getattr(module, "weight", None)
    if callable(weight):
        dtype = str(getattr(weight(), "dtype", ""))
        if "int8" in dtype:
            return 8
        if "int4" in dtype:
            return 4
    return 8


def _precision(
    dtype: str | None,
    quantization: str | None,
    bits: int | None,
    settings: Mapping[str, Any],
    autocast: str | None,
) -> str | None:
    """The catalog precision the arithmetic runs at (see the module's docstring)."""
    scheme = f"bitsandbytes-{bits}bit" if quantization == "bitsandbytes" else quantization
    if quantization in _INT8_KERNELS or scheme == "bitsandbytes-8bit":
        return "int8"
    if quantization in ("fp8", "fbgemm_fp8") or (dtype or "").startswith("float8"):
        return "fp8"
    if scheme in _WEIGHT_ONLY:
        compute = settings.get("bnb_4bit_compute_dtype")
        if isinstance(compute, str) and normalize_precision(compute) is not None:
            return autocast or normalize_precision(compute)
    if autocast is not None:
        return autocast
    stored = normalize_precision(dtype) if dtype is not None else None
    if stored == "fp32" and _tf32_matmuls():
        return "tf32"
    return stored


def _tf32_matmuls() -> bool:
    """Whether torch lets float32 CUDA matmuls run as TF32 (only where CUDA is in use)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return False
    return bool(torch.get_float32_matmul_precision() != "highest")


def _parameters(model: torch.nn.Module) -> tuple[int, int]:
    counter = getattr(model, "num_parameters", None)
    total = None
    if callable(counter):
        try:
            total = int(counter())
        except Exception:  # a model's own counter that fails must not stop tracking
            total = None
    params = list(model.parameters())
    if total is None:
        total = sum(p.numel() for p in params)
    return total, sum(p.numel() for p in params if p.requires_grad)


def _adapter(model: torch.nn.Module) -> str | None:
    configs = getattr(model, "peft_config", None)
    if not isinstance(configs, Mapping) or not configs:
        return None
    kinds = sorted({str(_jsonable(getattr(c, "peft_type", "adapter"))) for c in configs.values()})
    return "+".join(kinds)
