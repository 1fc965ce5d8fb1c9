"""Integrations with training frameworks and experiment trackers.

Each integration lives in its own module and imports its framework only there, so
``import carbon`` never pulls in transformers, lightning, mlflow or wandb:

- :mod:`carbon.integrations.huggingface`: a ``TrainerCallback`` for the Hugging Face Trainer.
- :mod:`carbon.integrations.lightning`: a PyTorch Lightning ``Callback``.
- :mod:`carbon.integrations.loggers`: carbon's figures as metrics of the active MLflow or
  Weights & Biases run.
- :mod:`carbon.integrations.model_facts`: precision and quantization read from a model.
"""
