"""Track a PyTorch Lightning training run with carbon: a tiny language model on the CPU.

A two-layer causal transformer, randomly initialised, learns to continue sequences of
counting numbers (``7 8 9 10 ...``, modulo a small vocabulary) for a few dozen steps.
Batches are Hugging Face-style dicts (``input_ids``, ``attention_mask``), so the callback
counts tokens without being told how; it counts the FLOPs of the first training step with
torch's FLOP counter and stores everything in carbon's SQLite store (``~/.carbon/carbon.db``
or ``$CARBON_HOME``). Nothing is downloaded.

Run it with ``python examples/lightning_module.py``; it takes a few seconds. Set
``CARBON_REGION=FR`` (or your country) for CO2e; ``carbon runs show <id>`` shows the run.
"""

from __future__ import annotations

import warnings
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from carbon.integrations.lightning import CarbonCallback

VOCAB, LENGTH, WIDTH, LAYERS, HEADS = 64, 32, 64, 2, 4


class CountingSequences(Dataset[dict[str, torch.Tensor]]):
    """Sequences ``s, s+1, s+2, ...`` modulo the vocabulary; the last rows end padded."""

    def __init__(self, rows: int) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ids = (torch.arange(LENGTH) + index * 7) % VOCAB
        mask = torch.ones(LENGTH, dtype=torch.long)
        padding = index % 5  # some rows end in padding, which is no work
        if padding:
            mask[-padding:] = 0
        return {"input_ids": ids, "attention_mask": mask}


class TinyLanguageModel(pl.LightningModule):
    """A causal transformer from a configuration: no pretrained weights."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, WIDTH)
        self.position = nn.Parameter(torch.zeros(LENGTH, WIDTH))
        layer = nn.TransformerEncoderLayer(
            WIDTH, HEADS, dim_feedforward=4 * WIDTH, dropout=0.0, batch_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        self.head = nn.Linear(WIDTH, VOCAB)
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(LENGTH))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits of the next token at each position."""
        hidden = self.embed(input_ids) + self.position
        logits: torch.Tensor = self.head(self.blocks(hidden, mask=self.causal, is_causal=True))
        return logits

    def _loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self(batch["input_ids"])[:, :-1]
        targets = batch["input_ids"][:, 1:].masked_fill(batch["attention_mask"][:, 1:] == 0, -100)
        return nn.functional.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Next-token loss on the batch's real (unpadded) tokens."""
        loss = self._loss(batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """The same loss on held-out sequences."""
        self.log("val_loss", self._loss(batch))

    def configure_optimizers(self) -> Any:
        """AdamW, as for a real language model."""
        return torch.optim.AdamW(self.parameters(), lr=3e-3)


def main() -> None:
    """Train for two short epochs and print what carbon stored."""
    # Lightning's advice for big datasets, and a deprecation between it and torch: noise here.
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*", FutureWarning)
    torch.manual_seed(0)
    model = TinyLanguageModel()
    train = DataLoader(CountingSequences(192), batch_size=16, shuffle=True)
    val = DataLoader(CountingSequences(32), batch_size=32)

    # The three lines: the callback, the Trainer that uses it, and fit.
    carbon_callback = CarbonCallback(project="examples", name="lightning-tiny-lm")
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        callbacks=[carbon_callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=4,
    )
    trainer.fit(model, train, val)

    assert carbon_callback.run is not None
    run = carbon_callback.run.summary()
    co2e = f"{run['co2e_g']:.3g} g" if run["co2e_g"] is not None else "unknown (no region set)"
    print(f"carbon run {run['id']} ({run['status']}), {run['duration_s']:.1f} s")
    print(f"  samples            {run['samples']:,}")
    print(f"  tokens             {run['tokens']:,}")
    print(f"  FLOPs ({run['flops_method']})    {run['flops']:.4g}")
    print(f"  energy             {run['energy_j']:.1f} J ({_methods(run)})")
    print(f"  J/FLOP             {run['j_per_flop']:.3g}")
    print(f"  J/token            {run['j_per_token']:.3g}")
    print(f"  CO2e               {co2e}")
    print(f"  final metrics      {run['metrics']}")


def _methods(run: dict[str, Any]) -> str:
    methods = [f"{part}: {how}" for part, how in run["energy_method"].items() if how is not None]
    return ", ".join(methods) or "no device measured"


if __name__ == "__main__":
    main()
