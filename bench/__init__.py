"""Benchmarks of carbon: each prints its figures as ratios to a peer or a limit."""
