"""Metrics, each in its own module."""
