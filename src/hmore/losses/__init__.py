"""Losses, each in its own module."""
