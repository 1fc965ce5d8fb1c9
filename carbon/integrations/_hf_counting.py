"""Samples and tokens of the training batches a model's forward pass completed.

A forward hook on the model (called after ``forward`` returns, so a batch whose forward
raised is not counted) reads the batch's main input (``input_ids`` for language models):

- samples: the main input's first dimension;
- tokens, when asked for: the sum of the ``attention_mask`` where the batch has one (the
  tokens that are not padding), else every element of ``input_ids``.

Only batches seen while the model is in training mode count, so evaluation in the middle of
training does not. The mask's sum stays a tensor on the model's device until
:meth:`BatchCounter.take` is asked to read it, so counting never waits for the GPU
between logging steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


class BatchCounter:
    """Counts the training batches of one model until :meth:`close`.

    Args:
        model: The model the trainer calls (its hooks fire through DDP and FSDP wrappers).
        count_tokens: Count tokens too (only for models whose main input is token ids).
    """

    def __init__(self, model: torch.nn.Module, *, count_tokens: bool) -> None:
        self.main_input = str(getattr(model, "main_input_name", "input_ids") or "input_ids")
        self.count_tokens = count_tokens and self.main_input == "input_ids"
        self.seen = False
        self._samples = 0
        self._tokens = 0
        self._mask_tokens: Any = None
        self._handle = model.register_forward_hook(self._hook, with_kwargs=True)

    def _hook(
        self, module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any
    ) -> None:
        if not module.training:
            return
        batch = kwargs.get(self.main_input)
        if batch is None and args:
            batch = args[0]
        shape = getattr(batch, "shape", None)
        if batch is None or shape is None:
            return
        self.seen = True
        self._samples += int(shape[0]) if len(shape) else 1
        if not self.count_tokens:
            return
        mask = kwargs.get("attention_mask")
        if mask is not None and getattr(mask, "shape", None) is not None:
            total = mask.detach().sum()
            self._mask_tokens = total if self._mask_tokens is None else self._mask_tokens + total
        else:
            self._tokens += int(batch.numel())

    def take(self, *, read_device: bool) -> tuple[int, int]:
        """Samples and tokens counted since the previous call.

        Args:
            read_device: Also read the attention masks' sum from the device (waits for the
                GPU); when false, those tokens are kept for a later call.
        """
        from_device = 0
        if read_device and self._mask_tokens is not None:
            from_device = int(self._mask_tokens.item())  # may raise: nothing taken yet
            self._mask_tokens = None
        samples, self._samples = self._samples, 0
        tokens, self._tokens = self._tokens, 0
        return samples, tokens + from_device

    def close(self) -> None:
        """Remove the hook."""
        self._handle.remove()
