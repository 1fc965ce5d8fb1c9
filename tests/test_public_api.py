"""The public API is what ``__all__`` names, and importing it stays cheap."""

import inspect
import json
import subprocess
import sys

import carbon


def test_exported_members_are_the_public_api() -> None:
    public = {
        name
        for name in dir(carbon)
        if not name.startswith("_") and not inspect.ismodule(getattr(carbon, name))
    }
    assert public == set(carbon.__all__) - {"__version__"}
    for name in carbon.__all__:
        assert getattr(carbon, name) is not None


def test_import_does_not_pull_heavy_modules() -> None:
    code = (
        "import sys, json, carbon; "
        "print(json.dumps(sorted(m for m in ('pandas', 'codecarbon', 'torch', 'sqlalchemy', "
        "'alembic', 'pynvml', 'dash', 'fastapi', 'transformers', 'lightning', 'mlflow', "
        "'wandb') if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []
