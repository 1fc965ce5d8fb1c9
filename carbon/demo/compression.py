"""Compression of a trained model: dynamic int8 quantization and magnitude pruning.

Both functions return a new model and leave the original untouched, so the demo can
derive every compressed variant from the same trained teacher and compare them fairly.
"""

from __future__ import annotations

import copy
import warnings

import torch
import torch.nn.utils.prune as prune
from torch import nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear


def quantize_dynamic_int8(model: nn.Module) -> nn.Module:
    """Return a copy of ``model`` whose ``Linear`` layers run with int8 weights.

    Dynamic quantization stores the weights as int8 and quantizes activations on the
    fly at each call, so it needs no calibration data; it is the usual first step for
    CPU inference of linear-heavy models.

    torch announces that ``torch.ao.quantization`` moves to torchao and that quantized
    tensor creation is deprecated; both warnings are silenced for this call only (the
    first is attributed to the caller, the second is a ``UserWarning``), since the API
    still works on the supported torch versions.

    Args:
        model: A trained float32 model; it is not modified.

    Returns:
        The quantized copy, in eval mode.
    """
    source = copy.deepcopy(model).eval()
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"torch\.ao\.quantization is deprecated", category=DeprecationWarning
        )
        warnings.filterwarnings(
            "ignore", message=r"torch\.quantize_per_tensor", category=UserWarning
        )
        quantized: nn.Module = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
            source, {nn.Linear}, dtype=torch.qint8
        )
    return quantized.eval()


def is_quantized_linear(module: nn.Module) -> bool:
    """Tell whether ``module`` is a dynamically quantized int8 linear layer."""
    return isinstance(module, DynamicQuantizedLinear)


def prune_global_l1(model: nn.Module, sparsity: float) -> nn.Module:
    """Return a copy of ``model`` with the smallest ``sparsity`` share of weights zeroed.

    Global L1 unstructured pruning ranks the weights of all ``Linear`` layers together
    by magnitude, so layers with many small weights lose more of them. The pruning is
    then made permanent (the mask is folded into the weight and the reparametrization
    removed), so the result is a plain model that saves and quantizes like any other.
    Biases are kept.

    Args:
        model: A trained model; it is not modified.
        sparsity: Share of the ``Linear`` weights to set to zero, in [0, 1).

    Returns:
        The pruned copy, in eval mode.

    Raises:
        ValueError: ``sparsity`` is outside [0, 1) or the model has no ``Linear`` layer.
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    pruned = copy.deepcopy(model)
    targets = [(module, "weight") for module in pruned.modules() if isinstance(module, nn.Linear)]
    if not targets:
        raise ValueError("the model has no Linear layer to prune")
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=sparsity)
    for module, name in targets:
        prune.remove(module, name)  # type: ignore[no-untyped-call]
    return pruned.eval()


def weight_sparsity(model: nn.Module) -> float:
    """Measure the share of exactly-zero weights over all ``Linear`` layers.

    This is the figure pruning promises, measured rather than assumed: biases are left
    out, as they are not pruned.

    Args:
        model: A float model.

    Returns:
        Zero weights divided by all weights of the ``Linear`` layers, in [0, 1].

    Raises:
        ValueError: The model has no ``Linear`` layer.
    """
    zeros, total = 0, 0
    for module in model.modules():
        if isinstance(module, nn.Linear):
            zeros += int((module.weight == 0).sum())
            total += module.weight.numel()
    if total == 0:
        raise ValueError("the model has no Linear layer to measure")
    return zeros / total
