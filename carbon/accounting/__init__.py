"""Accounting: pure conversions from energy to emissions, and the factors they use.

``co2e`` turns joules into grams of CO2e (energy x PUE x grid intensity); ``intensity``
looks up a country's grid intensity in the data codecarbon ships. Neither samples
hardware; the functions in ``co2e`` do no I/O at all.
"""

from carbon.accounting.co2e import co2e_g
from carbon.accounting.intensity import IntensityFactor, lookup_country_intensity

__all__ = ["IntensityFactor", "co2e_g", "lookup_country_intensity"]
