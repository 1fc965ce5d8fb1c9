"""Check for the optional ``torch`` extra before any demo module imports it.

The demo is the only part of carbon that needs torch and scikit-learn; they are an optional
extra so that the agent, the store and the server install without them. Checking with
:func:`importlib.util.find_spec` keeps the check itself free of the heavy imports.
"""

from __future__ import annotations

import importlib.util

from carbon.errors import CarbonError

INSTALL_HINT = "pip install 'carbon-ledger[torch]'"
_REQUIRED = ("torch", "sklearn")


class MissingExtraError(CarbonError, ImportError):
    """The demo needs packages of an optional extra that are not installed."""


def require_torch_extra() -> None:
    """Fail with an install hint unless torch and scikit-learn can be imported.

    Raises:
        MissingExtraError: One of the packages is missing; the message names it and
            says how to install the extra.
    """
    missing = [name for name in _REQUIRED if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(
            f"the demo needs {', '.join(missing)}, which is not installed; "
            f"install the extra with: {INSTALL_HINT}"
        )
