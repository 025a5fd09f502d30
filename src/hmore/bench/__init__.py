"""Benchmark helpers: tables and measurements."""
