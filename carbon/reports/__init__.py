"""Statements built from stored runs: exports a reviewer can load and check."""
