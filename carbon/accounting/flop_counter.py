"""Counted FLOPs: run a function once under torch's FLOP counter.

:func:`count_flops` wraps ``torch.utils.flop_counter.FlopCounterMode``, which sees every
aten operator the function dispatches and counts the matrix products (``mm``, ``addmm``,
``bmm``, convolutions, attention) as ``2 m n k``; elementwise operators (bias adds,
activations, norms) count 0. It covers the backward pass too when the function calls
``backward()``. The counter slows every operator down, so count one representative step
and multiply, rather than wrapping a whole run.

Measured on torch 2.13 (CPU): under ``torch.inference_mode()`` the counter gives the same
counts as under ``torch.no_grad()`` (a ``Linear(64, 32)`` on 16 rows: 65,536 FLOPs in both),
whether the mode is entered around the call or inside the function. Older torch
releases returned 0 there (pytorch issue #126268: inference mode skips the dispatch key
at which composite operators such as ``linear`` decompose into ``addmm``; fixed by pull
request #138508, which makes the counter decompose them itself). :func:`count_flops`
checks once, with a tiny probe, whether the installed torch has the fix; if not, and
inference mode is on when it is called, it raises :class:`FlopCountError` rather than
report 0. (An ``inference_mode`` entered *inside* the function cannot be seen from here;
on such an old torch, use ``no_grad`` there.)

torch 2.13's counter has no formula for the CPU flash-attention kernel that
``scaled_dot_product_attention`` runs on the CPU, so it would count CPU attention as 0;
:func:`count_flops` adds formulas for it (the same ``2 m n k`` products the counter uses
for the CUDA kernels).

torch is an optional extra and is imported only when these functions run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from carbon._extras import require_torch_extra
from carbon.accounting.catalog import normalize_precision
from carbon.errors import CarbonError

if TYPE_CHECKING:
    import torch

__all__ = ["CountedFlops", "FlopCountError", "count_flops", "dtype_precision"]

P = ParamSpec("P")
R = TypeVar("R")
Shape = tuple[int, ...]


class FlopCountError(CarbonError, RuntimeError):
    """The installed torch cannot count FLOPs in the current mode."""


@dataclass(frozen=True)
class CountedFlops(Generic[R]):
    """The FLOPs one call performed, and what it returned.

    Attributes:
        flops: Total FLOPs counted, forward and (if the call ran one) backward.
        result: The function's return value.
        by_operator: FLOPs per aten operator (``"aten.addmm"``, ``"aten.mm"``...).
    """

    flops: float
    result: R
    by_operator: Mapping[str, float] = field(default_factory=dict, hash=False)


def _require_torch() -> None:
    """Fail with the install hint for the optional extra unless torch can be imported."""
    require_torch_extra("counting FLOPs", ("torch",))


def _sdpa_forward_flops(
    query_shape: Shape, key_shape: Shape, value_shape: Shape, *args: object, **kwargs: object
) -> int:
    """Scores ``Q K^T`` then ``P V``: ``2 b h s_q s_k d_q + 2 b h s_q s_k d_v``."""
    batch, heads, s_q, d_q = query_shape
    s_k = key_shape[2]
    d_v = value_shape[3]
    return 2 * batch * heads * s_q * s_k * (d_q + d_v)


def _sdpa_backward_flops(
    grad_out_shape: Shape,
    query_shape: Shape,
    key_shape: Shape,
    value_shape: Shape,
    *args: object,
    **kwargs: object,
) -> int:
    """Recomputed scores, then the gradients of V, P, Q and K: five products in all."""
    batch, heads, s_q, d_q = query_shape
    s_k = key_shape[2]
    d_v = value_shape[3]
    return 2 * batch * heads * s_q * s_k * (3 * d_q + 2 * d_v)


def _extra_formulas() -> dict[Any, Callable[..., int]]:
    """Formulas for the CPU attention kernels, where this torch has them."""
    import torch

    formulas: dict[Any, Callable[..., int]] = {}
    for name, formula in (
        ("_scaled_dot_product_flash_attention_for_cpu", _sdpa_forward_flops),
        ("_scaled_dot_product_flash_attention_for_cpu_backward", _sdpa_backward_flops),
    ):
        op = getattr(torch.ops.aten, name, None)
        if op is not None:
            formulas[op] = formula
    return formulas


@functools.cache
def _counts_inside_inference_mode() -> bool:
    """Tell whether this torch's counter sees composite operators under inference mode."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode():
        counter = FlopCounterMode(display=False)
        with counter:
            torch.nn.functional.linear(torch.ones(1, 1), torch.ones(1, 1))
    return bool(counter.get_total_flops() > 0)


def count_flops(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> CountedFlops[R]:
    """Call ``fn(*args, **kwargs)`` once and count the FLOPs it performs.

    Args:
        fn: The work to count: a forward pass, or a whole training step with
            ``backward()`` (and the optimizer step, whose elementwise updates count 0).
        *args: Positional arguments for ``fn``.
        **kwargs: Keyword arguments for ``fn``.

    Returns:
        The FLOPs, their split by operator, and ``fn``'s return value.

    Raises:
        MissingExtraError: torch is not installed.
        FlopCountError: Inference mode is on and this torch would count 0 under it.
    """
    _require_torch()
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    if torch.is_inference_mode_enabled() and not _counts_inside_inference_mode():
        raise FlopCountError(
            f"torch {torch.__version__} counts 0 FLOPs under torch.inference_mode(); "
            "count under torch.no_grad() instead, or upgrade torch"
        )
    counter = FlopCounterMode(display=False, custom_mapping=_extra_formulas())
    with counter:
        result = fn(*args, **kwargs)
    by_operator = {
        str(op): float(count) for op, count in counter.get_flop_counts().get("Global", {}).items()
    }
    return CountedFlops(
        flops=float(counter.get_total_flops()),
        result=result,
        by_operator=MappingProxyType(by_operator),
    )


def dtype_precision(model_or_tensor: torch.nn.Module | torch.Tensor) -> str | None:
    """Return the catalog precision key of a tensor or of a module's weights.

    A tensor gives its dtype's key (``torch.bfloat16`` -> ``"bf16"``). A module gives the
    precision that holds the most weight elements: its parameters, plus the packed weights
    of quantized modules (``torch.ao.nn.quantized``), whose ``weight()`` is a method and
    which have no parameters, so a dynamically quantized model gives ``"int8"``.

    float32 weights give ``"fp32"`` even though GPUs may run their matmuls as TF32
    (``torch.backends.cuda.matmul.allow_tf32``, ``torch.set_float32_matmul_precision``);
    choosing the ``tf32`` peak for such a run is left to the caller, who knows the setting.

    Returns:
        A key of :data:`carbon.accounting.catalog.PRECISIONS`, or None when there are no
        weights or their dtype has no catalog key (int64, complex...).
    """
    _require_torch()
    import torch

    if isinstance(model_or_tensor, torch.Tensor):
        return normalize_precision(str(model_or_tensor.dtype))
    elements: dict[str, int] = {}
    for tensor in _weights(model_or_tensor):
        key = normalize_precision(str(tensor.dtype))
        if key is not None:
            elements[key] = elements.get(key, 0) + tensor.numel()
    if not elements:
        return None
    return max(elements, key=lambda key: elements[key])


def _weights(module: torch.nn.Module) -> list[torch.Tensor]:
    """Parameters of ``module``, plus the packed weights of its quantized submodules."""
    import torch

    tensors: list[torch.Tensor] = list(module.parameters())
    for submodule in module.modules():
        weight = getattr(submodule, "weight", None)
        if callable(weight) and type(submodule).__module__.startswith("torch.ao.nn.quantized"):
            packed = weight()
            if isinstance(packed, torch.Tensor):
                tensors.append(packed)
    return tensors
