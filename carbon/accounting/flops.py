"""Analytic FLOP counts: the arithmetic a model needs, from its shape alone.

These are the numerators of model FLOPs utilisation. They count the multiply-adds of
matrix products (two FLOPs each) and ignore elementwise work (activations, norms, softmax,
bias adds), as the papers they follow do.

* Dense transformer training: ``6 N`` FLOPs per token (forward ``2 N``, backward ``4 N``),
  plus ``12 L H Q T`` per token for self-attention when the shape is known (PaLM,
  Chowdhery et al. 2022, appendix B).
* Inference (forward only): a third of that, ``2 N + 4 L H Q T`` per token.
* Single matrix products: ``2 m n k``.

Tools such as fvcore, ptflops and thop report multiply-accumulates (MACs), not FLOPs; one
MAC is two FLOPs (:func:`macs_to_flops`).
"""

from __future__ import annotations

import math

__all__ = [
    "linear_layer_flops",
    "macs_to_flops",
    "matmul_flops",
    "transformer_inference_flops",
    "transformer_inference_flops_per_token",
    "transformer_training_flops",
    "transformer_training_flops_per_token",
]


def _positive_number(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return float(value)


def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def _attention_term(
    n_layers: int | None, n_heads: int | None, head_dim: int | None, seq_len: int | None
) -> int:
    """Return ``L H Q T`` when the whole shape is given, 0 when none of it is."""
    shape = {"n_layers": n_layers, "n_heads": n_heads, "head_dim": head_dim, "seq_len": seq_len}
    missing = [name for name, value in shape.items() if value is None]
    if len(missing) == len(shape):
        return 0
    if missing:
        raise ValueError(
            "the attention term needs n_layers, n_heads, head_dim and seq_len together; "
            f"missing {', '.join(missing)}"
        )
    product = 1
    for name, value in shape.items():
        if value is not None:  # always, past the check above; narrows the type
            product *= _positive_int(name, value)
    return product


def transformer_training_flops_per_token(
    n_params: float,
    *,
    n_layers: int | None = None,
    n_heads: int | None = None,
    head_dim: int | None = None,
    seq_len: int | None = None,
) -> float:
    """Return the training FLOPs per token of a dense decoder transformer.

    ``6 N + 12 L H Q T`` (PaLM, Chowdhery et al. 2022, appendix B): each parameter costs
    two FLOPs forward and four backward; self-attention adds ``12 L H Q T`` (the score
    and value products, ``4 L H Q T`` forward, twice that backward). Without the shape the
    result is ``6 N`` (the rule of Kaplan et al. 2020 and GPT-3's compute table).
    Rematerialisation (recomputing activations in the backward pass) is not counted:
    this is model FLOPs, not hardware FLOPs. Causal masking is not discounted either,
    as in PaLM.

    Args:
        n_params: Parameter count N (non-embedding, or all, as the caller chooses).
        n_layers: L, the number of layers.
        n_heads: H, attention heads per layer.
        head_dim: Q, the size of one head.
        seq_len: T, the training sequence length.

    Raises:
        ValueError: A value is zero, negative or not finite, or the shape is only partly
            given.
    """
    n = _positive_number("n_params", n_params)
    return 6 * n + 12 * _attention_term(n_layers, n_heads, head_dim, seq_len)


def transformer_training_flops(
    n_params: float,
    n_tokens: float,
    *,
    n_layers: int | None = None,
    n_heads: int | None = None,
    head_dim: int | None = None,
    seq_len: int | None = None,
) -> float:
    """Return the FLOPs to train on ``n_tokens`` tokens: ``(6 N + 12 L H Q T) x tokens``.

    See :func:`transformer_training_flops_per_token` for the formula (PaLM, Chowdhery et
    al. 2022, appendix B) and what it leaves out.

    Raises:
        ValueError: A value is zero, negative or not finite, or the shape is only partly
            given.
    """
    tokens = _positive_number("n_tokens", n_tokens)
    per_token = transformer_training_flops_per_token(
        n_params, n_layers=n_layers, n_heads=n_heads, head_dim=head_dim, seq_len=seq_len
    )
    return per_token * tokens


def transformer_inference_flops_per_token(
    n_params: float,
    *,
    n_layers: int | None = None,
    n_heads: int | None = None,
    head_dim: int | None = None,
    seq_len: int | None = None,
) -> float:
    """Return the forward-pass FLOPs per token: ``2 N + 4 L H Q T``.

    The forward pass is one third of PaLM's training count ``6 N + 12 L H Q T``
    (backward costs twice the forward), which gives ``2 N`` for the weights and
    ``4 L H Q T`` for attention: per layer and head, the token's query against ``T`` keys
    (``2 Q T``) and the weighted sum of ``T`` values (``2 Q T``). When generating with a
    key/value cache, ``seq_len`` is the context the token attends to, not the training
    length.

    Raises:
        ValueError: A value is zero, negative or not finite, or the shape is only partly
            given.
    """
    n = _positive_number("n_params", n_params)
    return 2 * n + 4 * _attention_term(n_layers, n_heads, head_dim, seq_len)


def transformer_inference_flops(
    n_params: float,
    n_tokens: float,
    *,
    n_layers: int | None = None,
    n_heads: int | None = None,
    head_dim: int | None = None,
    seq_len: int | None = None,
) -> float:
    """Return the forward-pass FLOPs for ``n_tokens`` tokens: ``(2 N + 4 L H Q T) x tokens``.

    See :func:`transformer_inference_flops_per_token`.

    Raises:
        ValueError: A value is zero, negative or not finite, or the shape is only partly
            given.
    """
    tokens = _positive_number("n_tokens", n_tokens)
    per_token = transformer_inference_flops_per_token(
        n_params, n_layers=n_layers, n_heads=n_heads, head_dim=head_dim, seq_len=seq_len
    )
    return per_token * tokens


def matmul_flops(m: int, n: int, k: int, *, count: int = 1) -> int:
    """Return the FLOPs of ``count`` products of an (m x k) and a (k x n) matrix.

    Each of the ``m n`` outputs takes ``k`` multiplies and ``k`` adds: ``2 m n k``. This is
    the convention of ``torch.utils.flop_counter`` and of the papers (strictly it is
    ``m n (2k - 1)``; the difference is ignored everywhere).

    Raises:
        ValueError: A dimension or ``count`` is zero or negative.
    """
    return (
        2
        * _positive_int("m", m)
        * _positive_int("n", n)
        * _positive_int("k", k)
        * _positive_int("count", count)
    )


def linear_layer_flops(
    n_rows: int, in_features: int, out_features: int, *, count_bias: bool = False
) -> int:
    """Return the forward FLOPs of a linear layer applied to ``n_rows`` input rows.

    ``2 x n_rows x in_features x out_features`` for the weight product, the
    ``(n_rows, in) @ (in, out)`` matmul. With ``count_bias`` the ``n_rows x out_features``
    bias additions are added; they are off by default, as in the ``6 N`` rule and in
    ``torch.utils.flop_counter`` (which counts ``addmm`` as its matrix product only).

    Args:
        n_rows: Rows of the input (batch size times sequence length, for a transformer).
        in_features: Input width.
        out_features: Output width.
        count_bias: Also count the bias additions.

    Raises:
        ValueError: A size is zero or negative.
    """
    flops = matmul_flops(n_rows, out_features, in_features)
    return flops + n_rows * out_features if count_bias else flops


def macs_to_flops(macs: float) -> float:
    """Return the FLOPs of ``macs`` multiply-accumulates (two FLOPs each).

    fvcore, ptflops and thop report MACs under names such as "FLOPs" or "GMac"; double
    their figures before comparing them with FLOP counts or peak FLOP/s.

    Raises:
        ValueError: ``macs`` is negative or not finite (0 is allowed: a model can have
            no multiply-accumulates).
    """
    if isinstance(macs, bool) or not isinstance(macs, int | float):
        raise TypeError(f"macs must be a number, got {type(macs).__name__}")
    if not math.isfinite(macs) or macs < 0:
        raise ValueError(f"macs must be a non-negative finite number, got {macs}")
    return 2 * float(macs)
