"""The Dash dashboard of carbon (runs, compare, hardware, compression, regions, reports).

Pages read the store only through :mod:`carbon.store.queries`.
"""
