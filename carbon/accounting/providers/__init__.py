"""Grid carbon-intensity providers: one protocol, one file per data source.

``base`` holds the :class:`IntensityProvider` protocol and the :class:`IntensityFactor`
every provider returns; ``static`` reads the yearly figures that codecarbon ships.
"""

from carbon.accounting.providers.base import FactorType, IntensityFactor, IntensityProvider
from carbon.accounting.providers.static import StaticProvider

__all__ = ["FactorType", "IntensityFactor", "IntensityProvider", "StaticProvider"]
