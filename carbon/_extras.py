"""Check for the optional ``torch`` extra before a module that needs it imports it.

The demo and FLOP counting need torch (the demo also scikit-learn); they are an optional
extra so that the agent, the store and the server install without them. Checking with
:func:`importlib.util.find_spec` keeps the check itself free of the heavy imports.
"""

from __future__ import annotations

import importlib.util

from carbon.errors import CarbonError

INSTALL_HINT = "pip install 'carbon-ledger[torch]'"
_REQUIRED = ("torch", "sklearn")


class MissingExtraError(CarbonError, ImportError):
    """A feature needs packages of an optional extra that are not installed."""


def require_torch_extra(feature: str = "the demo", packages: tuple[str, ...] = _REQUIRED) -> None:
    """Fail with an install hint unless the packages can be imported.

    Args:
        feature: What needs them, for the message.
        packages: Import names to look for.

    Raises:
        MissingExtraError: One of the packages is missing; the message names it and
            says how to install the extra.
    """
    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(
            f"{feature} needs {', '.join(missing)}, which is not installed; "
            f"install the extra with: {INSTALL_HINT}"
        )
