"""Version of the carbon package."""

__version__ = "0.1.0"
