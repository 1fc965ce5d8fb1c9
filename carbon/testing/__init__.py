"""Fakes for testing code that uses carbon, without the hardware.

:class:`ConstantPowerSource` draws a fixed power, so the energy of any window is exactly
``power_w x duration``; :class:`FailingPowerSource` stops working after a while, to test
what a run does when a device is lost.
"""

from carbon.testing.sources import ConstantPowerSource, FailingPowerSource

__all__ = ["ConstantPowerSource", "FailingPowerSource"]
