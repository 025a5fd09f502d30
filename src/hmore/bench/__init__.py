"""Benchmark helpers: tables and measurements."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def json_clean(obj: Any) -> Any:
    """``obj`` with numpy scalars as Python numbers, non-finite floats as None and tuples as lists (for JSON)."""
    if isinstance(obj, dict):
        return {str(k): json_clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_clean(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj
