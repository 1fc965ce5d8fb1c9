"""Track a Hugging Face Trainer fine-tuning with carbon: a tiny GPT-2 on the CPU.

A two-layer GPT-2, randomly initialised from a config (nothing is downloaded), learns to
continue sequences of counting numbers (``7 8 9 10 ...``, modulo a small vocabulary) for 40
optimizer steps, with an evaluation every 20. Some sequences end in padding, which the
attention mask marks. carbon takes two lines: the import and the callback in the Trainer's
``callbacks``; each ``trainer.train()`` is then a run.

The run lands in carbon's SQLite store (``~/.carbon/carbon.db``, or ``$CARBON_HOME``) with
its ``train``/``eval`` phases, the tokens carbon counted from the batches, the Trainer's
FLOPs (``total_flos``), its losses and the model's precision. Run it with
``python examples/hf_trainer.py``; it takes a few seconds. Set ``CARBON_REGION=FR`` (or your
country) for CO2e; ``carbon runs show <id>`` shows the run.
"""

from __future__ import annotations

import tempfile

import torch
from torch.utils.data import Dataset
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

from carbon.integrations.huggingface import CarbonCallback

VOCAB, LENGTH = 64, 32


class CountingSequences(Dataset[dict[str, torch.Tensor]]):
    """Sequences ``s, s+1, s+2, ...`` modulo the vocabulary; some rows end in padding."""

    def __init__(self, rows: int, offset: int = 0) -> None:
        self.rows, self.offset = rows, offset

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ids = (torch.arange(LENGTH) + (index + self.offset) * 7) % VOCAB
        mask = torch.ones(LENGTH, dtype=torch.long)
        padding = index % 5
        if padding:
            mask[-padding:] = 0
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "labels": ids.masked_fill(mask == 0, -100),  # no loss on padding
        }


def main() -> None:
    """Fine-tune the tiny model and print what carbon stored."""
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=VOCAB,
        n_positions=LENGTH,
        n_embd=64,
        n_layer=2,
        n_head=4,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )
    model = GPT2LMHeadModel(config)
    with tempfile.TemporaryDirectory() as output_dir:
        args = TrainingArguments(
            output_dir=output_dir,
            max_steps=40,
            per_device_train_batch_size=16,
            per_device_eval_batch_size=16,
            learning_rate=3e-3,
            logging_steps=10,
            eval_strategy="steps",
            eval_steps=20,
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            disable_tqdm=True,
        )
        callback = CarbonCallback(project="examples", name="hf-tiny-gpt2")
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=CountingSequences(640),
            eval_dataset=CountingSequences(64, offset=1000),
            callbacks=[callback],
        )
        trainer.train()

    assert callback.run is not None
    s = callback.run.summary()
    print(f"run {s['id']} ({s['status']}), phases train/eval, {s['duration_s']:.1f} s")
    print(f"  tokens   {s['tokens']:,} ({s['tags']['tokens_method']})")
    print(f"  FLOPs    {s['flops']:.3e} ({s['flops_method']})")
    print(f"  energy   {s['energy_j']:.1f} J, {s['j_per_flop']:.3e} J/FLOP")
    metrics = s["metrics"]
    print(f"  loss     {metrics['train_loss']:.3f} train, {metrics['eval_loss']:.3f} eval")
    co2e = "unknown (no region)" if s["co2e_g"] is None else f"{s['co2e_g']:.3g} g"
    print(f"  precision {s['compression'].get('precision')}, CO2e {co2e}")


if __name__ == "__main__":
    main()
