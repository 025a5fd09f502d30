"""Reading a generated clip's ``meta`` (light: no generator imports, for the commands that only read clips)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any


def clip_fps(meta: str | bytes | Mapping[str, Any]) -> float | None:
    """A generated clip's frame rate from its ``meta`` (the JSON string of the npz or the dict): ``hmore.synth``
    keeps it in ``params.fps``; a top-level ``fps`` is read too. None when absent, not a number, or not > 0."""
    try:
        info = json.loads(meta) if isinstance(meta, str | bytes) else meta
        value = info.get("fps", (info.get("params") or {}).get("fps"))
    except (ValueError, AttributeError):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        return None
    return float(value)
